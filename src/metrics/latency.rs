//! Latency distributions in high-dynamic-range histograms (3 significant digits), with an
//! exact mean kept beside them.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded exactly: one day. Longer values are clamped to it.
const HIGHEST_NS: u64 = 86_400_000_000_000;

/// A latency histogram in nanoseconds with an exact sum.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Number of values.
    pub count: u64,
    /// Exact mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest value.
    pub max_ms: f64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        LatencyHistogram {
            hist: Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds"),
            sum_ns: 0,
        }
    }
    /// Records one latency.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
        self.sum_ns += u128::from(ns);
    }
    /// Forgets every value.
    pub fn clear(&mut self) {
        self.hist.reset();
        self.sum_ns = 0;
    }
    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.hist
            .add(&other.hist)
            .expect("histograms with equal bounds merge");
        self.sum_ns += other.sum_ns;
    }
    /// Number of values.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }
    /// Exact mean in nanoseconds.
    pub fn mean_ns(&self) -> f64 {
        if self.count() == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count() as f64
        }
    }
    /// The value at quantile `q` in nanoseconds: the midpoint of its histogram bucket.
    pub fn quantile_ns(&self, q: f64) -> f64 {
        if self.count() == 0 {
            return 0.0;
        }
        self.hist.median_equivalent(self.hist.value_at_quantile(q)) as f64
    }
    /// Share of values above `ns`.
    pub fn share_above(&self, ns: u64) -> f64 {
        if self.count() == 0 {
            return 0.0;
        }
        let at_or_below = self.hist.count_between(0, ns);
        1.0 - at_or_below as f64 / self.count() as f64
    }
    /// The underlying histogram (for serialisation and CDF plots).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }
    /// The histogram as text: its exact sum, then the HDR V2+DEFLATE encoding in base64.
    pub fn to_text(&self) -> String {
        use base64::Engine;
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .expect("serializing a histogram to memory");
        format!(
            "{}:{}",
            self.sum_ns,
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )
    }
    /// Reads a histogram written by [`LatencyHistogram::to_text`].
    pub fn from_text(text: &str) -> Result<LatencyHistogram, String> {
        use base64::Engine;
        let (sum, b64) = text.split_once(':').ok_or("expected SUM:BASE64")?;
        let sum_ns: u128 = sum
            .parse()
            .map_err(|_| format!("bad histogram sum \"{sum}\""))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("bad histogram encoding: {e}"))?;
        let decoded: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("bad histogram: {e:?}"))?;
        let mut hist =
            Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds");
        hist.add(&decoded)
            .map_err(|e| format!("bad histogram range: {e:?}"))?;
        Ok(LatencyHistogram { hist, sum_ns })
    }
    /// (latency ms, share of values at or below it) at `points` quantiles, for CDF plots.
    pub fn cdf_ms(&self, points: usize) -> Vec<(f64, f64)> {
        if self.count() == 0 {
            return Vec::new();
        }
        (0..=points)
            .map(|i| {
                let q = i as f64 / points as f64;
                (self.quantile_ns(q.min(0.9999)) / 1e6, q)
            })
            .collect()
    }
    /// Percentiles in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |ns: f64| ns / 1e6;
        LatencySummary {
            count: self.count(),
            mean_ms: ms(self.mean_ns()),
            p50_ms: ms(self.quantile_ns(0.5)),
            p90_ms: ms(self.quantile_ns(0.9)),
            p95_ms: ms(self.quantile_ns(0.95)),
            p99_ms: ms(self.quantile_ns(0.99)),
            p999_ms: ms(self.quantile_ns(0.999)),
            max_ms: if self.count() == 0 {
                0.0
            } else {
                ms(self.hist.max() as f64)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_histogram_resolution() {
        let mut h = LatencyHistogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p99 = h.quantile_ns(0.99);
        assert!((p99 / 99_000_000.0 - 1.0).abs() < 1e-3, "p99 {p99}");
        assert_eq!(h.mean_ns(), 50_000_500.0);
    }

    #[test]
    fn text_round_trip_is_exact() {
        let mut h = LatencyHistogram::new();
        for v in [5u64, 700, 123_456, 9_999_999_999] {
            h.record(v);
        }
        let back = LatencyHistogram::from_text(&h.to_text()).unwrap();
        assert_eq!(back.count(), 4);
        assert_eq!(back.mean_ns(), h.mean_ns());
        assert_eq!(back.summary(), h.summary());
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(10);
        b.record(30);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.mean_ns(), 20.0);
    }
}
