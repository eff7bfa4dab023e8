//! Numbers across seeds: a mean with its 95% confidence interval (Student's t), or a median
//! with the 5th and 95th percentiles for what is skewed (counts of rare events, tails).

/// Student's t at 97.5% for 1..=30 degrees of freedom; 1.96 beyond.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// A mean and the half-width of its 95% interval (0 for a single sample).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanCi {
    /// The mean.
    pub mean: f64,
    /// Half the 95% interval's width.
    pub half: f64,
    /// Samples.
    pub n: usize,
}

/// The mean of `xs` with its 95% interval; `None` when empty.
pub fn mean_ci(xs: &[f64]) -> Option<MeanCi> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len();
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some(MeanCi { mean, half: 0.0, n });
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let t = T_975.get(n - 2).copied().unwrap_or(1.96);
    Some(MeanCi {
        mean,
        half: t * (var / n as f64).sqrt(),
        n,
    })
}

/// The median, 5th and 95th percentiles (nearest rank).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median.
    pub p50: f64,
    /// The 5th percentile.
    pub p5: f64,
    /// The 95th percentile.
    pub p95: f64,
}

/// The spread of `xs`; `None` when empty.
pub fn spread(xs: &[f64]) -> Option<Spread> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Some(Spread {
        p50: at(0.5),
        p5: at(0.05),
        p95: at(0.95),
    })
}

/// `mean ± half` with `decimals`, and a unit; `-` for no samples.
pub fn fmt_mean(m: Option<MeanCi>, decimals: usize, unit: &str) -> String {
    match m {
        None => "-".into(),
        Some(m) if m.n == 1 => format!("{:.*}{unit}", decimals, m.mean),
        Some(m) => format!("{:.*}{unit} ± {:.*}", decimals, m.mean, decimals, m.half),
    }
}

/// `median [p5–p95]` with `decimals` and a unit; just the value when they agree.
pub fn fmt_spread(s: Option<Spread>, decimals: usize, unit: &str) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.p5 == s.p95 => format!("{:.*}{unit}", decimals, s.p50),
        Some(s) => format!(
            "{:.*}{unit} [{:.*}–{:.*}]",
            decimals, s.p50, decimals, s.p5, decimals, s.p95
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_interval_uses_student_t() {
        let m = mean_ci(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m.mean, 2.0);
        // sd 1, n 3: 4.303 / sqrt(3)
        assert!((m.half - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(fmt_mean(Some(m), 1, "%"), "2.0% ± 2.5");
        assert_eq!(fmt_mean(mean_ci(&[5.0]), 1, ""), "5.0");
        assert_eq!(fmt_mean(None, 1, ""), "-");
    }

    #[test]
    fn spread_is_nearest_rank() {
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        let s = spread(&xs).unwrap();
        assert_eq!((s.p5, s.p50, s.p95), (1.0, 10.0, 19.0));
        assert_eq!(fmt_spread(Some(s), 0, ""), "10 [1–19]");
        assert_eq!(fmt_spread(spread(&[0.0, 0.0]), 0, ""), "0");
    }
}
