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
use crate::file_error::FileError;
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
fn check(mut record: ImageRecord, p: &LoadParams) -> Result<ImageRecord, FileError> {
    let bytes = record.source.bytes().map_err(FileError::UnreadableFile)?;
    let img = image::load_from_memory(&bytes).map_err(FileError::UndecodableImage)?;
    record.width = img.width();
    record.height = img.height();
    for o in &mut record.objects {
        let ours = p
            .class_map
            .get(&o.class)
            .cloned()
            .unwrap_or_else(|| o.class.clone());
        if !p.classes.contains(&ours) {
            return Err(FileError::UnknownClass {
                class: o.class.clone(),
            });
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
            return Err(FileError::BoxOutside {
                class: o.class.clone(),
                xmin: b.xmin,
                ymin: b.ymin,
                xmax: b.xmax,
                ymax: b.ymax,
                width: record.width,
                height: record.height,
            });
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
            check(r, &p).map_err(|error| Problem {
                file,
                reason: error.to_string(),
            })
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
    /// Every image to this split (`test`: a held-out set generated apart);
    /// the fractions are then not used.
    #[serde(default)]
    pub assign: Option<Split>,
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
    if let Some(split) = p.assign {
        for r in &mut data.records {
            r.split = Some(split);
        }
        return Ok(data);
    }
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

/// Two annotated sets as one: the records of both, each in the split it
/// had (the synthetic scenes and the real photos train one model). Both must
/// name the same classes in the same order, since ids are positions, and no
/// image id may be in both, since ids name the files written.
pub fn merge_sign_sets(first: SignDataset, second: SignDataset) -> Result<SignDataset, NodesError> {
    if first.classes != second.classes {
        return Err(NodesError::ClassesDiffer {
            first: first.classes,
            second: second.classes,
        });
    }
    let ids: std::collections::BTreeSet<&str> =
        first.records.iter().map(|r| r.id.as_str()).collect();
    if let Some(r) = second.records.iter().find(|r| ids.contains(r.id.as_str())) {
        return Err(NodesError::DuplicateImage(r.id.clone()));
    }
    let mut merged = first;
    merged.records.extend(second.records);
    merged.problems.extend(second.problems);
    merged.records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(merged)
}

/// A stable string hash (std's is randomised per process).
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::ImageSource;

    fn set(classes: &[&str], ids: &[&str], split: Option<Split>) -> SignDataset {
        SignDataset {
            classes: classes.iter().map(|c| c.to_string()).collect(),
            records: ids
                .iter()
                .map(|id| ImageRecord {
                    id: id.to_string(),
                    source: ImageSource::File(format!("{id}.png").into()),
                    width: 10,
                    height: 10,
                    objects: Vec::new(),
                    split,
                })
                .collect(),
            problems: Vec::new(),
        }
    }

    fn ids_and_splits(data: &SignDataset) -> Vec<(&str, Option<Split>)> {
        data.records
            .iter()
            .map(|r| (r.id.as_str(), r.split))
            .collect()
    }

    #[test]
    fn merging_keeps_every_record_in_its_split() {
        let synthetic = set(
            &["stop", "yield"],
            &["scene_1", "scene_0"],
            Some(Split::Train),
        );
        let real = set(&["stop", "yield"], &["road7"], Some(Split::Test));
        let merged = merge_sign_sets(synthetic, real).unwrap();
        assert_eq!(merged.classes, ["stop", "yield"]);
        assert_eq!(
            ids_and_splits(&merged),
            [
                ("road7", Some(Split::Test)),
                ("scene_0", Some(Split::Train)),
                ("scene_1", Some(Split::Train)),
            ]
        );
    }

    #[test]
    fn merging_refuses_other_classes_and_shared_ids() {
        let err = merge_sign_sets(set(&["stop"], &["a"], None), set(&["yield"], &["b"], None));
        assert!(
            matches!(err, Err(NodesError::ClassesDiffer { .. })),
            "{err:?}"
        );
        let err = merge_sign_sets(
            set(&["stop"], &["a", "b"], None),
            set(&["stop"], &["b"], None),
        );
        assert!(
            matches!(err, Err(NodesError::DuplicateImage(ref id)) if id == "b"),
            "{err:?}"
        );
    }

    #[test]
    fn assign_puts_every_image_in_one_split() {
        let params = SplitParams {
            seed: 0,
            val_fraction: 0.2,
            test_fraction: 0.0,
            keep_existing: true,
            assign: Some(Split::Test),
        };
        let data = set(&["stop"], &["a", "b", "c"], None);
        let out = preprocess_data(data, Params(params.clone())).unwrap();
        assert!(out.records.iter().all(|r| r.split == Some(Split::Test)));
        let split = preprocess_data(
            set(&["stop"], &["a", "b", "c", "d", "e"], None),
            Params(SplitParams {
                assign: None,
                ..params
            }),
        )
        .unwrap();
        let val = split
            .records
            .iter()
            .filter(|r| r.split == Some(Split::Val))
            .count();
        assert_eq!(val, 1, "{:?}", ids_and_splits(&split));
    }
}
