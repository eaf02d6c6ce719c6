//! The HTML report (`scalesim report DIR`, `run --report`, `sweep --report`): the
//! sections of a run's and a sweep's page, bad input, and the pages opened in a real
//! browser (headless Chromium, which `.ci/run` installs) without console errors.

use crate::support::{scalesim, stdout_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUN_SECTIONS: [&str; 6] = [
    "model",
    "headline",
    "topology",
    "components",
    "latency",
    "warnings",
];
const SWEEP_SECTIONS: [&str; 6] = [
    "model",
    "headline",
    "latency",
    "sweep",
    "comparisons",
    "warnings",
];

/// `run --out` of a shipped model, then `report` on its folder; returns the page.
fn run_report(dir: &Path) -> String {
    let out = dir.join("run");
    stdout_ok(
        scalesim()
            .args([
                "run",
                "models/cache-aside.json",
                "--replications",
                "2",
                "--out",
            ])
            .arg(&out),
    );
    stdout_ok(scalesim().arg("report").arg(&out));
    std::fs::read_to_string(out.join("report.html")).unwrap()
}

/// A two-replication sweep of a shipped experiment with `--report`; returns the page's path.
fn sweep_report(dir: &Path) -> PathBuf {
    let page = dir.join("sweep.html");
    stdout_ok(
        scalesim()
            .args([
                "sweep",
                "experiments/load-vs-latency.json",
                "--replications",
                "2",
                "-q",
                "--out",
            ])
            .arg(dir.join("sweep"))
            .arg("--report")
            .arg(&page),
    );
    page
}

/// The number of charts with at least one drawn line or area.
fn drawn_charts(html: &str) -> usize {
    html.split("<figure class=\"chart\">")
        .skip(1)
        .filter(|c| {
            let svg = &c[..c.find("</figure>").unwrap_or(c.len())];
            svg.contains("<polyline") || svg.contains("<path") || svg.contains("<polygon")
        })
        .count()
}

fn assert_sections(html: &str, ids: &[&str]) {
    for id in ids {
        let tag = format!("<section id=\"{id}\"");
        let start = html.find(&tag).unwrap_or_else(|| panic!("no section {id}"));
        let body = &html[start..start + html[start..].find("</section>").unwrap()];
        assert!(
            body.contains("<table") || body.contains("<svg") || body.contains("<p"),
            "{id} is empty"
        );
    }
}

/// Nothing is loaded from elsewhere: no script, stylesheet or image by address.
fn assert_self_contained(html: &str) {
    for bad in ["<script src", "<link", "<img", "@import", "url(http"] {
        assert!(!html.contains(bad), "{bad}");
    }
}

#[test]
fn the_report_of_a_run_has_its_sections_and_the_run_flag_writes_the_same_page() {
    let dir = tempfile::tempdir().unwrap();
    let html = run_report(dir.path());
    assert_sections(&html, &RUN_SECTIONS);
    assert_self_contained(&html);
    assert!(
        html.contains("<td>shoppers</td>"),
        "the headline names the workload"
    );
    assert!(
        html.contains(" ± "),
        "two replications give confidence intervals"
    );
    assert!(html.contains("est. mean ms"));
    assert_eq!(
        html.matches("class=\"node\"").count(),
        4,
        "shoppers, app, cache, db"
    );
    assert!(
        html.contains("hit_ratio") && html.contains("utilization"),
        "declared metrics"
    );
    assert!(drawn_charts(&html) >= 1);
    let direct = dir.path().join("direct.html");
    stdout_ok(
        scalesim()
            .args([
                "run",
                "models/cache-aside.json",
                "--replications",
                "2",
                "--report",
            ])
            .arg(&direct),
    );
    assert_eq!(std::fs::read_to_string(&direct).unwrap(), html);
}

#[test]
fn the_report_of_a_run_with_faults_shades_them_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("r.html");
    stdout_ok(
        scalesim()
            .args(["run", "models/zone-outage.json", "--report"])
            .arg(&page),
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_sections(&html, &["series", "faults"]);
    assert!(html.contains("fault windows"));
    assert!(drawn_charts(&html) >= 3, "a CDF and two time series");
}

#[test]
fn the_report_of_a_sweep_has_bands_and_paired_comparisons() {
    let dir = tempfile::tempdir().unwrap();
    let html = std::fs::read_to_string(sweep_report(dir.path())).unwrap();
    assert_sections(&html, &SWEEP_SECTIONS);
    assert_self_contained(&html);
    assert!(
        html.contains(
            "workloads.users.latency.p99_ms against workloads.users.arrivals.poisson.rate"
        )
    );
    assert!(html.contains("random vs least-connections"));
    assert!(drawn_charts(&html) >= 10);
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    // `report` on the folder gives the same page.
    stdout_ok(
        scalesim()
            .arg("report")
            .arg(dir.path().join("sweep"))
            .arg("--out")
            .arg(dir.path().join("again.html")),
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.html")).unwrap(),
        html
    );
}

#[test]
fn bad_folders_are_refused_with_their_path_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let out = scalesim().arg("report").arg(&missing).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("no such folder"),
        "{err}"
    );

    let out = scalesim().arg("report").arg(dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not an output folder"), "{err}");
    assert!(!dir.path().join("report.html").exists());

    // A folder where the file should go: an I/O failure, exit 1, nothing half-written.
    let run = dir.path().join("run");
    stdout_ok(
        scalesim()
            .args(["run", "models/single-server.json", "--out"])
            .arg(&run),
    );
    std::fs::create_dir(run.join("report.html")).unwrap();
    let out = scalesim().arg("report").arg(&run).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write") && err.contains("report.html"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
        "{left:?}"
    );
}

// --- In a real browser -------------------------------------------------------------

/// The headless Chromium to use: $SCALESIM_BROWSER, else the first of the Debian
/// packages' binaries found on PATH.
fn browser() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("SCALESIM_BROWSER") {
        return Some(PathBuf::from(b));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium-headless-shell", "chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Runs the browser on `page` with `args`, at most a minute; returns stdout and stderr.
fn open(browser: &Path, page: &Path, args: &[&str], profile: &Path) -> (String, String) {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", browser.display()));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().ok();
            panic!("{} did not finish within a minute", browser.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (reader.join().unwrap(), err_reader.join().unwrap())
}

/// The lines of the browser's log that report a console error or an uncaught exception.
fn console_errors(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("Uncaught")
                || (l.contains("CONSOLE") && l.contains("rror"))
                || l.contains("console error")
        })
        .collect()
}

/// Opens `page`: no console error, every section present and not empty, a chart drawn,
/// and a screenshot saved as `shot`.
fn check_in_browser(browser: &Path, page: &Path, sections: &[&str], shot: &Path, profile: &Path) {
    let (dom, log) = open(browser, page, &["--dump-dom"], profile);
    assert!(
        console_errors(&log).is_empty(),
        "{}: {:?}",
        page.display(),
        console_errors(&log)
    );
    assert_sections(&dom, sections);
    assert!(
        drawn_charts(&dom) >= 1,
        "{}: no chart drawn",
        page.display()
    );
    let _ = std::fs::remove_file(shot);
    let (_, log) = open(
        browser,
        page,
        &[
            "--window-size=1200,2000",
            &format!("--screenshot={}", shot.display()),
        ],
        profile,
    );
    assert!(
        console_errors(&log).is_empty(),
        "{:?}",
        console_errors(&log)
    );
    let png = std::fs::read(shot)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{log}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn the_reports_open_in_headless_chromium_without_errors() {
    let Some(browser) = browser() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no headless Chromium was found (.ci/run installs chromium-headless-shell)"
        );
        eprintln!(
            "skipped: no chromium-headless-shell or chromium on PATH (install the Debian package chromium-headless-shell, or set SCALESIM_BROWSER)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // The check fails on a page with an error in its script.
    let broken = dir.path().join("broken.html");
    std::fs::write(
        &broken,
        "<html><body><script>undefinedFunction();</script></body></html>",
    )
    .unwrap();
    let (_, log) = open(&browser, &broken, &["--dump-dom"], &profile);
    assert!(
        !console_errors(&log).is_empty(),
        "a script error goes unnoticed:\n{log}"
    );

    run_report(dir.path());
    let run_page = dir.path().join("run/report.html");
    check_in_browser(
        &browser,
        &run_page,
        &RUN_SECTIONS,
        &shots.join("run.png"),
        &profile,
    );
    let sweep_page = sweep_report(dir.path());
    check_in_browser(
        &browser,
        &sweep_page,
        &SWEEP_SECTIONS,
        &shots.join("sweep.png"),
        &profile,
    );
    eprintln!("screenshots in {}", shots.display());
}

#[test]
fn the_report_of_an_experiment_with_faults_draws_a_line_per_variant_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("gray.html");
    stdout_ok(
        scalesim()
            .args([
                "sweep",
                "experiments/gray-failure-policies.json",
                "--replications",
                "1",
                "-q",
                "--out",
            ])
            .arg(dir.path().join("gray"))
            .arg("--report")
            .arg(&page),
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert_sections(&html, &["latency", "series"]);
    let start = html.find("<section id=\"series\"").unwrap();
    let series = &html[start..start + html[start..].find("</section>").unwrap()];
    for variant in ["least-connections", "round-robin"] {
        assert!(series.contains(variant), "no line for {variant}");
    }
    assert!(series.contains("goodput over time") && series.contains("mean latency over time"));
    assert!(drawn_charts(series) >= 2, "{series}");
    assert!(series.contains("Shaded: fault windows"));
    // The latency CDFs have a line per variant too.
    let start = html.find("<section id=\"latency\"").unwrap();
    let cdfs = &html[start..start + html[start..].find("</section>").unwrap()];
    assert!(cdfs.contains("least-connections") && cdfs.contains("round-robin"));
}
