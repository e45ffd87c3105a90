//! The first nodes of the `detection` pipeline: `load_data` (validate and
//! map classes) and `preprocess_data` (a deterministic, class-stratified split).

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use runner::Params;
use serde::Deserialize;

use crate::annotations::{ImageRecord, Problem, SignDataset, Split};
use crate::NodesError;

/// `params:load`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadParams {
    /// Our class names, in id order.
    pub classes: Vec<String>,
    /// Source class name → ours (`speedlimit: speed_limit`); names already ours pass.
    #[serde(default)]
    pub class_map: BTreeMap<String, String>,
    /// Stop at the first unusable file instead of skipping it.
    #[serde(default)]
    pub strict: bool,
    /// Boxes may stick out of the image by this many pixels (then clipped).
    #[serde(default = "one")]
    pub box_tolerance_px: f64,
}

fn one() -> f64 {
    1.0
}

/// Checks one record: readable image (its true size), known classes, boxes inside.
fn check(mut record: ImageRecord, p: &LoadParams) -> Result<ImageRecord, String> {
    let bytes = record
        .source
        .bytes()
        .map_err(|e| format!("unreadable image: {e}"))?;
    let img = image::load_from_memory(&bytes).map_err(|e| format!("unreadable image: {e}"))?;
    record.width = img.width();
    record.height = img.height();
    for o in &mut record.objects {
        let ours = p
            .class_map
            .get(&o.class)
            .cloned()
            .unwrap_or_else(|| o.class.clone());
        if !p.classes.contains(&ours) {
            return Err(format!(
                "unknown class '{}' (add it to class_map or classes)",
                o.class
            ));
        }
        o.class = ours;
        let (w, h, t) = (
            record.width as f64,
            record.height as f64,
            p.box_tolerance_px,
        );
        let b = &mut o.bbox;
        if b.xmin < -t
            || b.ymin < -t
            || b.xmax > w + t
            || b.ymax > h + t
            || b.width() <= 0.0
            || b.height() <= 0.0
        {
            return Err(format!(
                "box [{}, {}, {}, {}] of '{}' is outside the {}x{} image",
                b.xmin, b.ymin, b.xmax, b.ymax, o.class, record.width, record.height
            ));
        }
        b.xmin = b.xmin.max(0.0);
        b.ymin = b.ymin.max(0.0);
        b.xmax = b.xmax.min(w);
        b.ymax = b.ymax.min(h);
    }
    Ok(record)
}

/// Validates a raw annotated set and maps its classes to ours. Unusable
/// files are reported by name and skipped (or fatal with `strict: true`).
pub fn load_data(raw: SignDataset, params: Params<LoadParams>) -> Result<SignDataset, NodesError> {
    let p = params.0;
    if p.classes.is_empty() {
        return Err(NodesError::NoClasses);
    }
    let total = raw.records.len() + raw.problems.len();
    let mut problems = raw.problems;
    let checked: Vec<Result<ImageRecord, Problem>> = raw
        .records
        .into_par_iter()
        .map(|r| {
            let file = match &r.source {
                crate::annotations::ImageSource::File(path) => path.display().to_string(),
                _ => r.id.clone(),
            };
            check(r, &p).map_err(|reason| Problem { file, reason })
        })
        .collect();
    let mut records = Vec::new();
    for r in checked {
        match r {
            Ok(r) => records.push(r),
            Err(problem) => problems.push(problem),
        }
    }
    for problem in &problems {
        tracing::warn!("skipped {}: {}", problem.file, problem.reason);
    }
    if !problems.is_empty() {
        tracing::warn!("load_data: skipped {} of {} entries", problems.len(), total);
        if p.strict {
            let first = &problems[0];
            return Err(NodesError::Data(format!(
                "{} of {total} entries are unusable (strict mode); first: {}: {}",
                problems.len(),
                first.file,
                first.reason
            )));
        }
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(SignDataset {
        classes: p.classes,
        records,
        problems,
    })
}

/// `params:split`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    pub seed: u64,
    pub val_fraction: f64,
    #[serde(default)]
    pub test_fraction: f64,
    /// Keep the splits the source already has (folders `train/`, `dev/`...).
    #[serde(default = "yes")]
    pub keep_existing: bool,
}

fn yes() -> bool {
    true
}

/// The class that decides an image's stratum: its rarest class overall.
fn stratum(record: &ImageRecord, counts: &BTreeMap<&str, usize>) -> String {
    record
        .objects
        .iter()
        .map(|o| o.class.as_str())
        .min_by_key(|c| (counts.get(c).copied().unwrap_or(0), *c))
        .unwrap_or("_background")
        .to_string()
}

/// Assigns train/val/test: within each stratum (an image's rarest class),
/// a seeded shuffle of the ids, then the first part to val, the next to
/// test, the rest to train. The same input and seed give the same split.
pub fn preprocess_data(
    data: SignDataset,
    params: Params<SplitParams>,
) -> Result<SignDataset, NodesError> {
    let p = params.0;
    if !(0.0..1.0).contains(&p.val_fraction)
        || !(0.0..1.0).contains(&p.test_fraction)
        || p.val_fraction + p.test_fraction >= 1.0
    {
        return Err(NodesError::Params(
            "val_fraction and test_fraction must be in [0, 1) and sum below 1".into(),
        ));
    }
    let mut data = data;
    if p.keep_existing && data.records.iter().all(|r| r.split.is_some()) && !data.records.is_empty()
    {
        return Ok(data);
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in data.records.iter().flat_map(|r| &r.objects) {
        *counts.entry(o.class.as_str()).or_default() += 1;
    }
    let mut strata: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in data.records.iter().enumerate() {
        strata.entry(stratum(r, &counts)).or_default().push(i);
    }
    let mut assignment = vec![Split::Train; data.records.len()];
    for (name, mut members) in strata {
        members.sort_by(|&a, &b| data.records[a].id.cmp(&data.records[b].id));
        let mut rng = ChaCha8Rng::seed_from_u64(crate::synth::scene_seed(
            p.seed,
            name.len() as u64 ^ fxhash(&name),
        ));
        members.shuffle(&mut rng);
        let n = members.len() as f64;
        let n_val = (n * p.val_fraction).round() as usize;
        let n_test = (n * p.test_fraction).round() as usize;
        for (k, &i) in members.iter().enumerate() {
            assignment[i] = if k < n_val {
                Split::Val
            } else if k < n_val + n_test {
                Split::Test
            } else {
                Split::Train
            };
        }
    }
    for (r, split) in data.records.iter_mut().zip(assignment) {
        r.split = Some(split);
    }
    Ok(data)
}

/// A stable string hash (std's is randomised per process).
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
