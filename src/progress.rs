//! Progress of runs in progress: how much of its work each replication of a `run` has done
//! (the larger of its share of simulated time and, when every workload sends a known number
//! of requests, the share of them sent) and how many events they handled, shared between
//! the threads that run them and the one that draws the progress line. A run without an
//! observer never touches it: it goes through [`crate::results::run_once`]'s single call
//! to the engine's loop.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Work done and events handled so far, summed over the replications of a run.
#[derive(Debug, Default)]
pub struct RunProgress {
    done_ppm: AtomicU64,
    events: AtomicU64,
}

/// A whole run's work, in the unit of [`RunProgress::done_ppm`] (parts per million).
pub const RUN_PPM: u64 = 1_000_000;

/// Events a run handles between two reports of its progress.
pub const EVENTS_PER_STEP: u64 = 1 << 18;

impl RunProgress {
    /// Adds `done_ppm` millionths of one replication's work and `events` it handled.
    pub fn add(&self, done_ppm: u64, events: u64) {
        self.done_ppm.fetch_add(done_ppm, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
    }

    /// Work done so far, in millionths of a run, over every replication.
    pub fn done_ppm(&self) -> u64 {
        self.done_ppm.load(Ordering::Relaxed)
    }

    /// Events handled so far, over every replication.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }
}

/// Wall-clock time a run may take before its progress line appears: quick runs show none.
pub const SHOW_AFTER: Duration = Duration::from_secs(2);

/// Runs `work`, `runs` replications, while a progress line on stderr (once it has taken
/// [`SHOW_AFTER`]) shows the share of their work `progress` has seen done, the events
/// handled per second and the time left. The line is cleared when `work` returns.
pub fn shown_while<T: Send>(
    progress: &RunProgress,
    runs: u64,
    work: impl FnOnce() -> T + Send,
) -> T {
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| draw_until(&done, progress, runs));
        let out = work();
        done.store(true, Ordering::Relaxed);
        out
    })
}

fn draw_until(done: &AtomicBool, progress: &RunProgress, runs: u64) {
    let start = Instant::now();
    let mut bar: Option<ProgressBar> = None;
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        let elapsed = start.elapsed();
        if elapsed < SHOW_AFTER {
            continue;
        }
        let bar = bar.get_or_insert_with(|| new_bar(runs));
        let done = progress.done_ppm() as f64 / (runs.max(1) * RUN_PPM) as f64;
        let per_s = progress.events() as f64 / elapsed.as_secs_f64();
        bar.set_position(progress.done_ppm() / (RUN_PPM / 1000));
        bar.set_message(format!(
            "{:.1}M events/s  {}",
            per_s / 1e6,
            time_left(elapsed, done)
        ));
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}

/// The time left when `done` (a share) of the work took `elapsed`, at the same pace.
fn time_left(elapsed: Duration, done: f64) -> String {
    if done <= 0.0 {
        return "time left: unknown".to_string();
    }
    let left = elapsed.as_secs_f64() * (1.0 - done.min(1.0)) / done;
    match left {
        s if s < 60.0 => format!("{s:.0} s left"),
        s if s < 3600.0 => format!("{:.0} min {:.0} s left", (s / 60.0).floor(), s % 60.0),
        s => format!(
            "{:.0} h {:.0} min left",
            (s / 3600.0).floor(),
            (s % 3600.0) / 60.0
        ),
    }
}

/// A bar counting thousandths of a run.
fn new_bar(runs: u64) -> ProgressBar {
    let bar = ProgressBar::new(runs.max(1) * 1000);
    let noun = if runs == 1 { "run" } else { "runs" };
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{percent}}% of {runs} {noun}  {{msg}}"
        ))
        .expect("valid progress template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_what_replications_add() {
        let p = RunProgress::default();
        p.add(5, 10);
        p.add(7, 1);
        assert_eq!((p.done_ppm(), p.events()), (12, 11));
    }

    #[test]
    fn time_left_at_the_same_pace() {
        let ten = Duration::from_secs(10);
        assert_eq!(time_left(ten, 0.5), "10 s left");
        assert_eq!(time_left(ten, 0.1), "1 min 30 s left");
        assert_eq!(time_left(ten, 0.0), "time left: unknown");
        assert_eq!(time_left(ten, 1.0), "0 s left");
        assert_eq!(time_left(Duration::from_secs(3600), 0.5), "1 h 0 min left");
    }

    #[test]
    fn shown_while_returns_what_the_work_returns() {
        let p = RunProgress::default();
        let out = shown_while(&p, 1, || {
            p.add(10, 3);
            42
        });
        assert_eq!((out, p.events()), (42, 3));
    }
}
