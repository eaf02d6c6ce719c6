//! Statistics across replications: mean, standard deviation and a Student-t 95%
//! confidence interval, and the headline metrics of a run they are computed on
//! ([`headline_metrics`]). Computed here once; the exporters in `report` only write them.

mod headline;

pub use headline::{headline_metrics, metric_keys, summarize};

use serde::{Deserialize, Serialize};

/// Mean and 95% confidence interval of one metric over independent replications.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Number of replications.
    pub n: usize,
    /// Sample mean.
    #[serde(deserialize_with = "null_as_nan")]
    pub mean: f64,
    /// Sample standard deviation.
    #[serde(deserialize_with = "null_as_nan")]
    pub sd: f64,
    /// Half-width of the 95% confidence interval of the mean (Student t, n-1 d.f.);
    /// infinite (JSON null) with a single replication.
    #[serde(deserialize_with = "null_as_infinity")]
    pub ci95: f64,
}

/// Reads a number written by serde_json, where NaN was written as null.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads a number written by serde_json, where infinity was written as null.
pub fn null_as_infinity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
}

impl Estimate {
    /// The estimate of `values` (NaN-free).
    pub fn of(values: &[f64]) -> Estimate {
        let n = values.len();
        if n == 0 {
            return Estimate {
                n,
                mean: f64::NAN,
                sd: f64::NAN,
                ci95: f64::NAN,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n == 1 {
            return Estimate {
                n,
                mean,
                sd: 0.0,
                ci95: f64::INFINITY,
            };
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let se = sd / (n as f64).sqrt();
        Estimate {
            n,
            mean,
            sd,
            ci95: t_quantile_975(n - 1) * se,
        }
    }
    /// Standard error of the mean.
    pub fn se(&self) -> f64 {
        self.sd / (self.n as f64).sqrt()
    }
}

/// Running mean and variance (Welford), for summaries that stream over many runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Welford {
    n: usize,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds one value.
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    /// Mean, standard deviation and 95% CI so far.
    pub fn estimate(&self) -> Estimate {
        if self.n == 0 {
            return Estimate {
                n: 0,
                mean: f64::NAN,
                sd: f64::NAN,
                ci95: f64::NAN,
            };
        }
        if self.n == 1 {
            return Estimate {
                n: 1,
                mean: self.mean,
                sd: 0.0,
                ci95: f64::INFINITY,
            };
        }
        let sd = (self.m2 / (self.n - 1) as f64).max(0.0).sqrt();
        Estimate {
            n: self.n,
            mean: self.mean,
            sd,
            ci95: t_quantile_975(self.n - 1) * sd / (self.n as f64).sqrt(),
        }
    }
}

/// MSER-5 warm-up detection (White 1997; White, Cobb & Spratt 2000): batch the series into
/// means of 5, and delete the d batches that minimise the squared standard error of the
/// remaining mean, Σ(x − x̄_d)² / (n − d)², searching d over the first half. Returns the
/// number of leading observations (not batches) to delete.
pub fn mser5(series: &[f64]) -> usize {
    let batches: Vec<f64> = series
        .chunks_exact(5)
        .map(|c| c.iter().sum::<f64>() / 5.0)
        .collect();
    let n = batches.len();
    if n < 4 {
        return 0;
    }
    let mut best = (f64::INFINITY, 0);
    for d in 0..=n / 2 {
        let rest = &batches[d..];
        let m = rest.iter().sum::<f64>() / rest.len() as f64;
        let ss: f64 = rest.iter().map(|x| (x - m).powi(2)).sum();
        let stat = ss / (rest.len() as f64).powi(2);
        if stat < best.0 {
            best = (stat, d);
        }
    }
    best.1 * 5
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom: exact table values up
/// to 30, then the Cornish-Fisher expansion around the normal quantile (error < 1e-4).
pub fn t_quantile_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df == 0 {
        return f64::INFINITY;
    }
    if df <= 30 {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_963_984_540_054;
    let d = df as f64;
    z + (z.powi(3) + z) / (4.0 * d)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_and_interval() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(e.mean, 2.5);
        assert!((e.sd - 1.290_994).abs() < 1e-6);
        assert!((e.ci95 - 3.182 * 1.290_994 / 2.0).abs() < 1e-5);
    }

    #[test]
    fn welford_matches_the_two_pass_estimate() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let mut w = Welford::default();
        xs.iter().for_each(|x| w.add(*x));
        let a = w.estimate();
        let b = Estimate::of(&xs);
        assert!((a.mean - b.mean).abs() < 1e-12 && (a.sd - b.sd).abs() < 1e-12);
    }

    #[test]
    fn mser5_cuts_an_initial_transient() {
        // 100 observations at 10 (a cold start), then 400 around 1.
        let mut xs: Vec<f64> = (0..100).map(|i| 10.0 - i as f64 * 0.05).collect();
        xs.extend((0..400).map(|i| 1.0 + ((i * 7919) % 13) as f64 / 100.0));
        let d = mser5(&xs);
        assert!((95..=130).contains(&d), "deleted {d}");
        // A stationary series keeps (almost) everything.
        let flat: Vec<f64> = (0..500)
            .map(|i| 1.0 + ((i * 7919) % 13) as f64 / 100.0)
            .collect();
        assert!(mser5(&flat) <= 50);
    }

    #[test]
    fn t_quantile_is_continuous_past_the_table() {
        assert!((t_quantile_975(31) - 2.0395).abs() < 2e-3);
        assert!((t_quantile_975(1000) - 1.9623).abs() < 1e-3);
    }
}
