#!/usr/bin/env bash
# Runs scalesim's benchmark models (benches/models/) next to the peers in ../shared/peers
# (the same M/M/1, M/M/8 and 3-station tandem models, same parameters) and prints events
# per second and the ratio to rust-raw, the hand-written event loop.
#
# Usage: scripts/bench.sh [--quick] [--with-python] [--no-build]
#   --quick        1/10 of the customers (a smoke test)
#   --with-python  create a venv with the Python peers (pip install -r requirements.txt)
#                  and run SimPy too; without it SimPy runs only if that venv already exists
#   --no-build     use the binaries already built
# Environment:
#   PEERS        peers folder (default ../shared/peers, relative to the repo root); skipped if missing
#   PEERS_BUILD  where the peers are copied and built, since PEERS may be read-only
#                (default target/peers)
#   REPS         runs per point, the median is reported (default 3); the tools take turns,
#                one run each per round, so a slow spell of a shared machine hits all alike
#   SEED         seed of every run (default 42)
#   MODELS       models to run (default "mm1 mm8 tandem inflight cache"); cache is
#                benches/models/cache-aside-10m.json and its variant with 5% writes and a
#                database, cache-aside-10m-writes.json (a 1,000,000-entry LRU cache over a
#                10,000,000-key Zipf catalog), reported in requests per CPU-second
#   BASELINE     another scalesim binary (e.g. a build of the previous commit) run in the
#                same rounds as this one, reported as tool "baseline": a before/after
#                comparison measured side by side in one sitting
#
# Events are counted as the peers count them: 3 per customer per station (arrival, service
# start, departure), whatever a tool schedules internally. scalesim's events are
# 3 x completed customers x stations, and its CPU time is that of the whole `scalesim run`
# process (model loading, validation and result collection included). The peers' CPU time
# is the simulation section each measures itself (as in the peers' bench.py), which
# excludes their start-up: if anything, that flatters the peers.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0 WITH_PYTHON=0 BUILD=1
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --with-python) WITH_PYTHON=1 ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
    esac
done

PEERS=${PEERS:-../shared/peers}
PEERS_BUILD=${PEERS_BUILD:-$ROOT/target/peers}
REPS=${REPS:-3}
SEED=${SEED:-42}
MODELS=${MODELS:-mm1 mm8 tandem inflight cache}
DIV=$((QUICK ? 10 : 1))

command -v python3 >/dev/null || { echo "python3 is needed to read JSON output" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------------- build
SCALESIM=$ROOT/target/release/scalesim
if ((BUILD)); then
    echo "== building scalesim (release)" >&2
    cargo build --release -q --bin scalesim
fi
[[ -x $SCALESIM ]] || { echo "no $SCALESIM: run without --no-build" >&2; exit 1; }
BASELINE=${BASELINE:-}
[[ -z $BASELINE || -x $BASELINE ]] || { echo "BASELINE=$BASELINE is not an executable" >&2; exit 1; }

RAW="" HEAP_HOLD="" PY=""
if [[ -d $PEERS/rust/raw ]]; then
    PEERS=$(cd "$PEERS" && pwd)
    if [[ -x $PEERS/rust/target/release/raw ]]; then
        bin=$PEERS/rust/target/release # built in place already
    else
        bin=$PEERS_BUILD/src/target/release
        if ((BUILD)); then
            echo "== building rust-raw (peers' workspace, copied to $PEERS_BUILD/src)" >&2
            mkdir -p "$PEERS_BUILD/src"
            # tar keeps modification times, so an unchanged copy does not rebuild.
            tar -C "$PEERS/rust" --exclude=./target --exclude=./desim_bench/target -cf - . |
                tar -C "$PEERS_BUILD/src" -xpf -
            chmod -R u+w "$PEERS_BUILD/src"
            (cd "$PEERS_BUILD/src" && cargo build --release -q -p raw) ||
                echo "   rust-raw failed to build: skipped" >&2
        fi
    fi
    [[ -x $bin/raw ]] && RAW=$bin/raw
    [[ -x $bin/heap_hold ]] && HEAP_HOLD=$bin/heap_hold
    if ((WITH_PYTHON)) && [[ ! -x $PEERS_BUILD/venv/bin/python ]]; then
        echo "== creating the Python peers' venv in $PEERS_BUILD/venv" >&2
        python3 -m venv "$PEERS_BUILD/venv"
        "$PEERS_BUILD/venv/bin/pip" install -q --disable-pip-version-check -r "$PEERS/requirements.txt"
    fi
    for p in "$PEERS_BUILD/venv/bin/python" "$PEERS/.venv/bin/python"; do
        if [[ -x $p ]] && "$p" -c 'import simpy' 2>/dev/null; then PY=$p; break; fi
    done
else
    echo "== no peers at $PEERS (set PEERS): scalesim only" >&2
fi

# -------------------------------------------------------------------------------- helpers
# cpu_of CMD...: runs CMD once (stdout to $TMP/out) and prints its process CPU (user+sys) s.
cpu_of() {
    local TIMEFORMAT='%3U %3S'
    if ! { time "$@" >"$TMP/out" 2>"$TMP/err"; } 2>"$TMP/time"; then
        echo "failed: $*" >&2
        tail -20 "$TMP/err" >&2
        return 1
    fi
    awk '{ printf "%.3f", $1 + $2 }' "$TMP/time"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Reads a scalesim JSON document on stdin; prints "completed engine_events wq_ms".
scalesim_fields() {
    python3 -c '
import json, sys
r = json.load(sys.stdin)["runs"][0]
done = sum(w["completed"] for w in r["workloads"].values())
wq = sum(c["total"].get("wait_mean_ms", 0.0) for c in r["components"].values())
print(done, r["events"], f"{wq:.6f}")'
}

# Prints one JSON field of a peer's one-line report on stdin.
peer_field() { python3 -c 'import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }

declare -A STATIONS=([mm1]=1 [mm8]=1 [tandem]=3 [inflight]=1 [cache]=1)
declare -A ANALYTIC=([mm1]=9.0000 [mm8]=0.8769 [tandem]=12.7895 [inflight]=- [cache]=-)
# Customers per run, chosen so that one run lasts about 2 s of CPU on a 2-core machine
# (the peers' own counts for rust-raw and SimPy). scalesim's are in its model files.
declare -A RAW_N=([mm1]=32000000 [mm8]=24000000 [tandem]=10000000)
declare -A SIMPY_N=([mm1]=80000 [mm8]=60000 [tandem]=40000)
declare -A RAW_EPS=() SIMPY_EPS=()

ROWS=$TMP/rows
: >"$ROWS"
# row TOOL MODEL CUSTOMERS EVENTS CPU WQ ENGINE_EVENTS SETUP_CPU
row() { echo "$*" >>"$ROWS"; echo "   $*" >&2; }

# scalesim_once MODEL_FILE [--set ...]: one run; prints its CPU and leaves its JSON in $TMP/out.
scalesim_once() {
    local file=$1
    shift
    cpu_of "$SCALESIM" run "$file" --format json --seed "$SEED" "$@"
}

# scalesim_setup MODEL_FILE [--set ...]: the fixed set-up cost (loading, validation,
# estimates, output): the same command with duration SETUP_DURATION (1ms, which runs next to
# no event; a shorter one is refused for an open workload, which would practically never
# send a request; a closed loop takes 1ns, before any user's first think time ends).
scalesim_setup() {
    local file=$1
    shift
    cpu_of "$SCALESIM" run "$file" --format json --seed "$SEED" "$@" --set "duration=${SETUP_DURATION:-1ms}"
}

# scalesim_row LABEL KIND CPUS SETUPS [TOOL]: the row of the runs whose JSON is in $TMP/out.
scalesim_row() {
    local label=$1 kind=$2 cpus=$3 setups=$4 tool=${5:-scalesim} fields done engine wq
    fields=$(scalesim_fields <"$TMP/out")
    read -r done engine wq <<<"$fields"
    [[ $kind == inflight ]] && wq=-
    row "$tool" "$label" "$done" $((3 * done * STATIONS[$kind])) "$(median <<<"$cpus")" "$wq" "$engine" \
        "$(median <<<"$setups")"
}

# scalesim_round: one set-up run and one run of scalesim, and of the BASELINE build when
# given, with the arguments of the model's `run` (MODEL_FILE [--set ...]). Their CPU times
# are appended to $TMP/TOOL.cpus and $TMP/TOOL.setups, their last JSON kept in $TMP/TOOL.json.
scalesim_round() {
    local tool bin
    for tool in scalesim baseline; do
        bin=$SCALESIM
        if [[ $tool == baseline ]]; then
            [[ -n $BASELINE ]] || continue
            bin=$BASELINE
        fi
        echo -n "$(SCALESIM=$bin scalesim_setup "$@") " >>"$TMP/$tool.setups"
        echo -n "$(SCALESIM=$bin scalesim_once "$@") " >>"$TMP/$tool.cpus"
        cp "$TMP/out" "$TMP/$tool.json"
    done
}

# scalesim_rows LABEL KIND: the rows of the rounds since the last call (scalesim, then the
# baseline build), and a fresh start for the next model.
scalesim_rows() {
    local tool
    for tool in scalesim baseline; do
        [[ -f $TMP/$tool.json ]] || continue
        cp "$TMP/$tool.json" "$TMP/out"
        scalesim_row "$1" "$2" "$(cat "$TMP/$tool.cpus")" "$(cat "$TMP/$tool.setups")" "$tool"
        rm -f "$TMP/$tool.json" "$TMP/$tool.cpus" "$TMP/$tool.setups"
    done
}

# run_scalesim LABEL MODEL_FILE MODEL_KIND [--set ...]: REPS runs and their rows.
run_scalesim() {
    local label=$1 file=$2 kind=$3
    shift 3
    for _ in $(seq "$REPS"); do
        scalesim_round "$file" "$@"
    done
    scalesim_rows "$label" "$kind"
}

# peer_once REPORT MODEL N CMD...: one run of a peer; prints its simulation CPU and keeps
# its one-line report in the file REPORT.
peer_once() {
    local report=$1 model=$2 n=$3
    shift 3
    cpu_of "$@" "$model" "$n" "$SEED" >/dev/null
    cp "$TMP/out" "$report"
    peer_field cpu_seconds <"$report"
}

# peer_row TOOL MODEL N CPUS REPORT: the row of a peer's runs (Wq from its last report).
peer_row() {
    local tool=$1 model=$2 n=$3 cpus=$4 report=$5
    row "$tool" "$model" "$n" "$(peer_field events <"$report")" "$(median <<<"$cpus")" \
        "$(peer_field wq <"$report")" - -
}

# side_by_side MODEL FILE [--set ...]: scalesim, rust-raw and SimPy take turns, one run each
# per round, so a slow spell of a shared machine falls on all of them alike.
side_by_side() {
    local model=$1 file=$2
    shift 2
    local r_cpus="" p_cpus=""
    local raw_n=$((RAW_N[$model] / DIV)) simpy_n=$((SIMPY_N[$model] / DIV))
    for _ in $(seq "$REPS"); do
        scalesim_round "$file" "$@"
        [[ -n $RAW ]] && r_cpus+="$(peer_once "$TMP/raw.json" "$model" "$raw_n" "$RAW") "
        [[ -n $PY ]] && p_cpus+="$(peer_once "$TMP/simpy.json" "$model" "$simpy_n" "$PY" "$PEERS/python/simpy_bench.py") "
    done
    scalesim_rows "$model" "$model"
    [[ -n $RAW ]] && peer_row rust-raw "$model" "$raw_n" "$r_cpus" "$TMP/raw.json"
    [[ -n $PY ]] && peer_row simpy "$model" "$simpy_n" "$p_cpus" "$TMP/simpy.json"
    return 0
}

# ---------------------------------------------------------------------------------- runs
echo "== running (REPS=$REPS, seed $SEED$( ((QUICK)) && echo ', quick: 1/10 of the customers'))" >&2
for model in $MODELS; do
    case "$model" in
        mm1|mm8|tandem)
            file=benches/models/$model.json
            sets=()
            if ((QUICK)); then
                n=$(python3 -c 'import json, sys; print(next(iter(json.load(open(sys.argv[1]))["workloads"].values()))["requests"])' "$file")
                sets=(--set "workloads.customers.requests=$((n / DIV))")
            fi
            side_by_side "$model" "$file" "${sets[@]}"
            ;;
        inflight)
            file=benches/models/inflight-100k.json
            if ((QUICK)); then d=(0.3s 300s); else d=(3s 3000s); fi
            export SETUP_DURATION=1ns
            run_scalesim inflight-100k "$file" inflight --set "duration=${d[0]}"
            # Control: the same model with 100 users (about 100 requests in flight, a small
            # calendar) run 1000 times longer, so it serves as many customers.
            run_scalesim inflight-100 "$file" inflight --set "duration=${d[1]}" \
                --set workloads.users.arrivals.closed.users=100
            unset SETUP_DURATION
            ;;
        cache)
            file=benches/models/cache-aside-10m.json
            sets=()
            ((QUICK)) && sets=(--set workloads.readers.requests=600000)
            run_scalesim cache-aside-10m "$file" cache "${sets[@]}"
            run_scalesim cache-writes-10m benches/models/cache-aside-10m-writes.json cache "${sets[@]}"
            ;;
        *) echo "unknown model $model" >&2; exit 2 ;;
    esac
done

# --------------------------------------------------------------------------------- report
echo
echo "scalesim vs peers: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), REPS=$REPS (median), seed $SEED"
echo "events = 3 per customer per station; scalesim CPU = whole process, peers' CPU = their simulation section"
echo
printf '%-9s %-14s %11s %11s %7s %7s %10s %8s %8s %9s %9s %10s\n' \
    tool model customers events "CPU s" "setup" events/s "vs raw" "vs SimPy" Wq analytic "engine ev"
eps_of() { awk -v e="$1" -v c="$2" 'BEGIN { printf "%.0f", (c > 0) ? e / c : 0 }'; }
rate() { awk -v x="$1" 'BEGIN { if (x >= 1e6) printf "%.2f M", x / 1e6; else printf "%.1f k", x / 1e3 }'; }
while read -r tool model n events cpu wq engine setup; do
    [[ $tool == rust-raw ]] && RAW_EPS[$model]=$(eps_of "$events" "$cpu")
    [[ $tool == simpy ]] && SIMPY_EPS[$model]=$(eps_of "$events" "$cpu")
done <"$ROWS"
# "vs raw": events/s divided by rust-raw's on the same model; 1.00x is the hand-written loop.
# "vs SimPy": events/s divided by SimPy's on the same model.
while read -r tool model n events cpu wq engine setup; do
    eps=$(eps_of "$events" "$cpu")
    base=${model%%-*}
    ratio=-
    [[ -n ${RAW_EPS[$base]:-} ]] && ratio=$(awk -v a="$eps" -v b="${RAW_EPS[$base]}" 'BEGIN { r = a / b; printf (r < 0.1) ? "%.4fx" : "%.2fx", r }')
    vs_simpy=-
    [[ -n ${SIMPY_EPS[$base]:-} ]] && vs_simpy=$(awk -v a="$eps" -v b="${SIMPY_EPS[$base]}" 'BEGIN { printf "%.0fx", a / b }')
    [[ $wq != - ]] && wq=$(printf '%.4f' "$wq")
    printf '%-9s %-14s %11s %11s %7.2f %7s %10s %8s %8s %9s %9s %10s\n' "$tool" "$model" "$n" "$events" "$cpu" \
        "$setup" "$(rate "$eps")" "$ratio" "$vs_simpy" "$wq" "${ANALYTIC[$base]}" "$engine"
    # events/s without the fixed set-up cost, for the calendar-at-size comparison
    [[ $setup != - ]] && echo "$tool $model $eps $(eps_of "$events" "$(awk -v a="$cpu" -v b="$setup" 'BEGIN { print a - b }')")" >>"$TMP/eps"
done <"$ROWS"
echo
echo "CPU s: median CPU of the run; setup: scalesim's fixed cost in it (same command, duration 1ms: next to no events)."
echo "Wq: mean wait in queues (time unit: mean service time; ms for scalesim). engine ev: events scalesim's engine handled."

if grep -q ' inflight-100k ' "$TMP/eps" 2>/dev/null; then
    echo
    awk '
        $1 == "scalesim" { eps[$2] = $3; net[$2] = $4 }
        END {
            printf "calendar at size: 100,000 requests in flight: %.2f M events/s (%.2f M without set-up)", eps["inflight-100k"] / 1e6, net["inflight-100k"] / 1e6
            if (net["inflight-100"] > 0) printf ";\n  without set-up that is %.2fx the same model with 100 in flight (%.2f M)", net["inflight-100k"] / net["inflight-100"], net["inflight-100"] / 1e6
            if (net["mm1"] > 0) printf " and %.2fx mm1 (%.2f M)", net["inflight-100k"] / net["mm1"], net["mm1"] / 1e6
            printf "\n"
        }' "$TMP/eps"
    if [[ -n $HEAP_HOLD ]]; then
        "$HEAP_HOLD" $((2000000 / DIV)) >"$TMP/heap" 2>/dev/null &&
            python3 - "$TMP/heap" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for size in (1000, 100000):
    parts = [f"{r['queue']} {r['ns_per_pair']:.0f} ns" for r in rows if r.get("size") == size]
    print(f"reference (rust-raw heap_hold, pop+push at {size:,} pending): " + ", ".join(parts))
EOF
    fi
fi

# The cache-aside model's figure is requests (not events) per CPU-second of the whole process.
if grep -q ' cache-aside-10m ' "$ROWS" 2>/dev/null; then
    echo
    awk '
        $2 == "cache-aside-10m" || $2 == "cache-writes-10m" {
            what = ($2 == "cache-aside-10m") ? "cache-aside" : "cache-aside with 5% writes and a database"
            printf "%s, 1,000,000-entry LRU over 10,000,000 Zipf keys (%s): %.2f M requests per CPU-second (%.2f M without the %.2f s set-up of a warm million entries)\n", what, $1, $3 / $5 / 1e6, $3 / ($5 - $8) / 1e6, $8
        }' "$ROWS"
fi
