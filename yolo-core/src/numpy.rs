//! numpy's and Ultralytics' numerics as they compute them, to the
//! floating-point operation order where that is knowable: float ordering
//! and sorts, `unique`, `linspace`, `interp`, pairwise summation, `mean`,
//! `trapezoid`, `smooth` (`np.convolve`) and `argmax`. [`crate::metrics`]
//! builds Ultralytics' AP and confusion matrix on them; kept apart so that
//! what is parity arithmetic and what is the metric stay readable.

use std::cmp::Ordering;

/// Ascending order as numpy sorts floats: NaN last, and `-0.0 == 0.0`.
pub(crate) fn np_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) if a == b => Ordering::Equal,
        (false, false) => a.total_cmp(&b),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// `rows[key.argsort()[::-1]]`: descending by key. numpy's argsort is an
/// (unstable) introsort that behaves as a stable insertion sort on the small
/// arrays seen per image, so a stable ascending sort then reversal reproduces
/// it, including the order of tied keys (later rows first).
pub(crate) fn sort_desc_numpy<T>(rows: &mut [T], key: impl Fn(&T) -> f32) {
    rows.sort_by(|a, b| np_cmp(key(a) as f64, key(b) as f64));
    rows.reverse();
}

/// `rows[np.unique(key(rows), return_index=True)[1]]`: the first row of each
/// distinct key, in ascending key order (numpy uses a stable mergesort here,
/// so "first" is exact).
pub(crate) fn unique_first<T: Copy>(rows: &[T], key: impl Fn(&T) -> usize) -> Vec<T> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    idx.sort_by_key(|&i| key(&rows[i])); // stable
    let mut out: Vec<T> = Vec::with_capacity(rows.len());
    let mut last = None;
    for i in idx {
        let k = key(&rows[i]);
        if last != Some(k) {
            out.push(rows[i]);
            last = Some(k);
        }
    }
    out
}

/// `np.linspace(0, 1, n)`: `i * (1 / (n - 1))`, last point exactly 1.
pub(crate) fn linspace01(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![0.0];
    }
    let step = 1.0 / (n - 1) as f64;
    let mut x: Vec<f64> = (0..n).map(|i| i as f64 * step).collect();
    if let Some(last) = x.last_mut() {
        *last = 1.0;
    }
    x
}

/// `np.interp(x, xp, fp, left, right)` for one point, as numpy's C code does
/// it: `j` = last index with `xp[j] <= x` (so among duplicate `xp` the last
/// one wins), an exact hit returns `fp[j]`, otherwise
/// `slope * (x - xp[j]) + fp[j]`. `xp` must be non-decreasing and non-empty.
pub(crate) fn np_interp(x: f64, xp: &[f64], fp: &[f64], left: f64, right: f64) -> f64 {
    let n = xp.len();
    if x.is_nan() {
        return x;
    }
    if n == 1 {
        return match np_cmp(x, xp[0]) {
            Ordering::Less => left,
            Ordering::Greater => right,
            Ordering::Equal => fp[0],
        };
    }
    if x > xp[n - 1] {
        return right;
    }
    if x < xp[0] {
        return left;
    }
    let j = xp.partition_point(|&v| v <= x) - 1;
    if j == n - 1 || xp[j] == x {
        return fp[j];
    }
    let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    let y = slope * (x - xp[j]) + fp[j];
    if !y.is_nan() {
        return y;
    }
    // numpy's fallback for non-finite slopes.
    let y = slope * (x - xp[j + 1]) + fp[j + 1];
    if y.is_nan() && fp[j] == fp[j + 1] {
        fp[j]
    } else {
        y
    }
}

/// numpy's pairwise summation (`np.add.reduce` on a 1-D float64 array): below
/// 8 elements a plain loop, up to 128 eight interleaved accumulators, above
/// that split in two at a multiple of 8. Reproduced so that means match
/// Ultralytics' bit for bit.
pub(crate) fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - n % 8 {
            for (k, rk) in r.iter_mut().enumerate() {
                *rk += a[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[i..] {
            res += v;
        }
        res
    } else {
        let n2 = n / 2;
        let n2 = n2 - n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// `arr.mean()` of a 1-D array (0 for empty, as Ultralytics' `Metric` guards).
pub(crate) fn np_mean(a: &[f64]) -> f64 {
    if a.is_empty() {
        0.0
    } else {
        (0.0 + pairwise_sum(a)) / a.len() as f64
    }
}

/// `np.trapezoid(y, x)`: `sum(diff(x) * (y[1:] + y[:-1]) / 2)`.
pub(crate) fn trapezoid(y: &[f64], x: &[f64]) -> f64 {
    let terms: Vec<f64> = (1..y.len())
        .map(|i| (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2.0)
        .collect();
    0.0 + pairwise_sum(&terms)
}

/// Ultralytics' `smooth(y, f)`: box filter of `round(len * f * 2) // 2 + 1`
/// taps over `y` padded with copies of its end values (`np.convolve`, mode
/// "valid"). The taps are summed in order; numpy's BLAS dot may round
/// differently, which can only matter between near-equal values.
pub(crate) fn smooth(y: &[f64], f: f64) -> Vec<f64> {
    if y.is_empty() {
        return Vec::new();
    }
    // Python's round() is half-to-even.
    let nf = (y.len() as f64 * f * 2.0).round_ties_even() as usize / 2 + 1;
    let pad = nf / 2;
    let (first, last) = (y[0], y[y.len() - 1]);
    let mut yp = vec![first; pad];
    yp.extend_from_slice(y);
    yp.extend(std::iter::repeat_n(last, pad));
    let tap = 1.0 / nf as f64;
    yp.windows(nf)
        .map(|w| w.iter().fold(0.0, |s, &v| s + v * tap))
        .collect()
}

/// `np.argmax`: first maximum, or the first NaN if there is one.
pub(crate) fn np_argmax(y: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in y.iter().enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > y[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy() {
        // np.sum([0.1] * 10) == 1.0, while a plain loop gives 0.9999999999999999.
        assert_eq!(pairwise_sum(&[0.1; 10]), 1.0);
        assert_eq!([0.1f64; 10].iter().sum::<f64>(), 0.9999999999999999);
    }

    #[test]
    fn np_interp_rules() {
        let xp = [0.0, 0.5, 0.5, 1.0];
        let fp = [1.0, 1.0, 0.5, 0.0];
        assert_eq!(np_interp(0.5, &xp, &fp, 9.0, 9.0), 0.5); // last duplicate wins
        assert_eq!(np_interp(0.75, &xp, &fp, 9.0, 9.0), 0.25);
        assert_eq!(np_interp(-1.0, &xp, &fp, 7.0, 9.0), 7.0);
        assert_eq!(np_interp(2.0, &xp, &fp, 7.0, 9.0), 9.0);
        assert_eq!(np_interp(1.0, &xp, &fp, 7.0, 9.0), 0.0);
    }

    #[test]
    fn smooth_and_argmax() {
        assert_eq!(smooth(&[0.0; 1000], 0.1).len(), 1000);
        // A spike is spread over 101 taps; the first maximum is where the
        // window first covers it.
        let mut y = vec![0.0; 1000];
        y[500] = 1.0;
        let s = smooth(&y, 0.1);
        assert_eq!(np_argmax(&s), 450);
        assert!((s[450] - 1.0 / 101.0).abs() < 1e-18);
        assert_eq!(np_argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }
}
