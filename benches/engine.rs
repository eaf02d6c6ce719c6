//! Engine throughput on the peers' queueing models (shared/peers): M/M/1, M/M/8 and a
//! tandem line of three M/M/2 stations, through the same path every model takes (model
//! file, validation, components, metrics), 100,000 customers per run.
//!
//! Throughput is in *logical* events, counted as the peers count them: 3 per customer per
//! station (arrival, service start, departure). `scripts/bench.sh` runs the same models
//! next to the peers' hand-written loop.
//!
//! Run with `cargo bench --bench engine`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scalesim::model::load_model_file;
use scalesim::results::run_once;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// Customers per run.
const CUSTOMERS: u64 = 100_000;

/// (model file in benches/models, stations a customer visits).
const MODELS: [(&str, u64); 3] = [("mm1", 1), ("mm8", 1), ("tandem", 3)];

fn engine(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/models");
    for (name, stations) in MODELS {
        let sets = [format!("workloads.customers.requests={CUSTOMERS}")];
        let model = load_model_file(&dir.join(format!("{name}.json")), &sets)
            .unwrap_or_else(|e| panic!("benches/models/{name}.json: {e}"));
        // Check once that every customer is served, so the event count holds.
        let completed = run_once(&model, 42)
            .expect("benchmark model runs")
            .workloads["customers"]
            .completed;
        assert_eq!(completed, CUSTOMERS, "{name}: not every customer finished");

        let mut group = c.benchmark_group(name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(3 * CUSTOMERS * stations));
        group.bench_function(BenchmarkId::new("run_once", CUSTOMERS), |b| {
            b.iter(|| {
                run_once(black_box(&model), black_box(42))
                    .expect("runs")
                    .events
            })
        });
        group.finish();
    }
}

criterion_group!(benches, engine);
criterion_main!(benches);
