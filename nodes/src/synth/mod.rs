//! The `generate_synthetic_data` node: deterministic synthetic road scenes
//! with French road signs, in parallel, ready to be saved as Pascal VOC.

pub mod clip;
pub mod scene;
pub mod signs;
pub mod text;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::Arc;

use image::codecs::jpeg::JpegEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use runner::Params;
use serde::Deserialize;

use crate::annotations::{ImageRecord, ImageSource, SignDataset};
use crate::NodesError;
use scene::{make_scene, SceneSpec};
use signs::Vocabulary;
pub use signs::CLASSES;

pub fn default_towns() -> Vec<String> {
    [
        "PARIS",
        "LYON",
        "MARSEILLE",
        "TOULOUSE",
        "NICE",
        "NANTES",
        "STRASBOURG",
        "MONTPELLIER",
        "BORDEAUX",
        "LILLE",
        "RENNES",
        "REIMS",
        "SAINT-ÉTIENNE",
        "TOULON",
        "GRENOBLE",
        "DIJON",
        "ANGERS",
        "NÎMES",
        "CLERMONT-FERRAND",
        "LE MANS",
        "AIX-EN-PROVENCE",
        "BREST",
        "TOURS",
        "AMIENS",
        "LIMOGES",
        "BESANÇON",
        "ORLÉANS",
        "ROUEN",
        "MULHOUSE",
        "CAEN",
        "NANCY",
        "ÉVREUX",
        "ANNECY",
        "CHAMBÉRY",
        "BÉZIERS",
        "VALENCE",
        "MÂCON",
        "SÈTE",
    ]
    .map(String::from)
    .to_vec()
}

/// One scene of `width` x `height` with exactly `signs` signs of the given
/// classes (every class when empty): the first seed from `seed` on that gives
/// that many. For demos, load tests and end-to-end tests.
pub fn sample_scene(
    width: u32,
    height: u32,
    signs: usize,
    classes: &[&str],
    seed: u64,
) -> (image::RgbImage, Vec<crate::annotations::SignObject>) {
    let classes: Vec<(String, f64)> = if classes.is_empty() {
        CLASSES.iter().map(|c| (c.to_string(), 1.0)).collect()
    } else {
        classes.iter().map(|c| (c.to_string(), 1.0)).collect()
    };
    let (towns, streets) = (default_towns(), default_streets());
    let spec = SceneSpec {
        width,
        height,
        classes: &classes,
        max_signs: signs.max(1),
        empty_fraction: 0.0,
        min_sign_px: (height / 8).max(16),
        max_sign_fraction: 0.3,
        vocabulary: Vocabulary {
            towns: &towns,
            streets: &streets,
        },
    };
    let mut best = None;
    for attempt in 0..200 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed + attempt);
        let (image, objects) = make_scene(&spec, &mut rng);
        if objects.len() == signs {
            return (image, objects);
        }
        if best
            .as_ref()
            .is_none_or(|(_, o): &(_, Vec<_>)| o.len() < objects.len())
        {
            best = Some((image, objects));
        }
    }
    best.expect("at least one scene was drawn")
}

pub fn default_streets() -> Vec<String> {
    [
        "RUE DE LA RÉPUBLIQUE",
        "RUE VICTOR HUGO",
        "AVENUE JEAN JAURÈS",
        "BOULEVARD GAMBETTA",
        "RUE PASTEUR",
        "RUE DE LA GARE",
        "AVENUE DE LA LIBÉRATION",
        "RUE DU GÉNÉRAL DE GAULLE",
        "BOULEVARD VOLTAIRE",
        "RUE DES ÉCOLES",
        "AVENUE FOCH",
        "RUE JULES FERRY",
        "RUE DE L'ÉGLISE",
        "BOULEVARD DE STRASBOURG",
        "RUE ÉMILE ZOLA",
        "AVENUE DU MARÉCHAL LECLERC",
        "RUE DES LILAS",
        "RUE DU MOULIN",
        "AVENUE DES CHAMPS",
        "RUE SAINT-MICHEL",
        "BOULEVARD CARNOT",
        "RUE NATIONALE",
    ]
    .map(String::from)
    .to_vec()
}

fn default_mix() -> BTreeMap<String, f64> {
    CLASSES.iter().map(|c| (c.to_string(), 1.0)).collect()
}

/// `params:data_generation`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthParams {
    pub seed: u64,
    pub scenes: usize,
    pub width: u32,
    pub height: u32,
    #[serde(default = "default_max_signs")]
    pub max_signs: usize,
    /// Share of scenes with no sign at all.
    #[serde(default = "default_empty_fraction")]
    pub empty_fraction: f64,
    #[serde(default = "default_min_sign_px")]
    pub min_sign_px: u32,
    /// Largest sign, as a fraction of the image height.
    #[serde(default = "default_max_sign_fraction")]
    pub max_sign_fraction: f64,
    /// Relative weight of each class.
    #[serde(default = "default_mix")]
    pub class_mix: BTreeMap<String, f64>,
    #[serde(default = "default_towns")]
    pub towns: Vec<String>,
    #[serde(default = "default_streets")]
    pub streets: Vec<String>,
    /// JPEG quality range `[low, high]`: compression artefacts vary per scene.
    #[serde(default = "default_quality")]
    pub jpeg_quality: [u8; 2],
}

fn default_max_signs() -> usize {
    5
}
fn default_empty_fraction() -> f64 {
    0.08
}
fn default_min_sign_px() -> u32 {
    16
}
fn default_max_sign_fraction() -> f64 {
    0.5
}
fn default_quality() -> [u8; 2] {
    [55, 95]
}

impl SynthParams {
    fn check(&self) -> Result<Vec<(String, f64)>, NodesError> {
        let bad = |m: String| Err(NodesError::Params(m));
        if self.width < 64 || self.height < 64 {
            return bad(format!(
                "image size {}x{} is below 64x64",
                self.width, self.height
            ));
        }
        if self.min_sign_px < 8
            || self.min_sign_px as f64 >= self.height as f64 * self.max_sign_fraction
        {
            return bad(
                "min_sign_px must be at least 8 and below max_sign_fraction × height".into(),
            );
        }
        if self.towns.is_empty() || self.streets.is_empty() {
            return bad("towns and streets must not be empty".into());
        }
        if self.jpeg_quality[0] == 0
            || self.jpeg_quality[0] > self.jpeg_quality[1]
            || self.jpeg_quality[1] > 100
        {
            return bad("jpeg_quality must be [low, high] within 1..=100".into());
        }
        let mut mix = Vec::new();
        for (class, weight) in &self.class_mix {
            if !CLASSES.contains(&class.as_str()) {
                return bad(format!(
                    "unknown class '{class}' in class_mix (known: {})",
                    CLASSES.join(", ")
                ));
            }
            if !(*weight >= 0.0 && weight.is_finite()) {
                return bad(format!("class_mix weight of '{class}' must be ≥ 0"));
            }
            if *weight > 0.0 {
                mix.push((class.clone(), *weight));
            }
        }
        if mix.is_empty() {
            return bad("class_mix gives no class a positive weight".into());
        }
        Ok(mix)
    }
}

/// A per-scene seed, so that scenes are independent of thread scheduling.
pub(crate) fn scene_seed(seed: u64, index: u64) -> u64 {
    // SplitMix64 of the pair: nearby indices give unrelated streams.
    let mut z = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Generates `scenes` annotated road scenes; the same parameters give
/// byte-identical images.
pub fn generate_synthetic_data(params: Params<SynthParams>) -> Result<SignDataset, NodesError> {
    let p = params.0;
    let mix = p.check()?;
    let records = (0..p.scenes)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(scene_seed(p.seed, i as u64));
            let spec = SceneSpec {
                width: p.width,
                height: p.height,
                classes: &mix,
                max_signs: p.max_signs,
                empty_fraction: p.empty_fraction,
                min_sign_px: p.min_sign_px,
                max_sign_fraction: p.max_sign_fraction,
                vocabulary: Vocabulary {
                    towns: &p.towns,
                    streets: &p.streets,
                },
            };
            let (img, objects) = make_scene(&spec, &mut rng);
            let quality = rng.gen_range(p.jpeg_quality[0]..=p.jpeg_quality[1]);
            let mut bytes = Vec::new();
            JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), quality)
                .encode_image(&img)
                .map_err(|e| NodesError::Image(e.to_string()))?;
            Ok(ImageRecord {
                id: format!("scene_{i:05}"),
                source: ImageSource::Encoded {
                    bytes: Arc::new(bytes),
                    extension: "jpg",
                },
                width: p.width,
                height: p.height,
                objects,
                split: None,
            })
        })
        .collect::<Result<Vec<_>, NodesError>>()?;
    Ok(SignDataset {
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        records,
        problems: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn params(seed: u64, scenes: usize) -> SynthParams {
        let yaml = format!("{{seed: {seed}, scenes: {scenes}, width: 256, height: 192}}");
        serde_yaml::from_str(&yaml).unwrap()
    }

    fn bytes(d: &SignDataset) -> Vec<Vec<u8>> {
        d.records
            .iter()
            .map(|r| r.source.bytes().unwrap().into_owned())
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_and_different_seeds_differ() {
        let a = generate_synthetic_data(Params(params(7, 6))).unwrap();
        let b = generate_synthetic_data(Params(params(7, 6))).unwrap();
        let c = generate_synthetic_data(Params(params(8, 6))).unwrap();
        assert_eq!(bytes(&a), bytes(&b));
        assert_eq!(a.records, b.records);
        assert_ne!(bytes(&a), bytes(&c));
        assert_eq!(a.records[5].id, "scene_00005");
    }

    #[test]
    fn boxes_are_inside_and_texts_follow_classes() {
        let d = generate_synthetic_data(Params(params(1, 30))).unwrap();
        assert!(d.object_count() > 30, "about 3 signs a scene");
        for r in &d.records {
            let img = image::load_from_memory(&r.source.bytes().unwrap()).unwrap();
            assert_eq!((img.width(), img.height()), (256, 192));
            for o in &r.objects {
                assert!(o.bbox.is_inside(r.width, r.height), "{o:?}");
                assert!(o.bbox.width().min(o.bbox.height()) >= 16.0, "{o:?}");
                let wants_text = ["speed_limit", "stop", "direction", "street_name", "zone_30"]
                    .contains(&o.class.as_str());
                assert_eq!(o.text.is_some(), wants_text, "{o:?}");
                assert_eq!(o.legibility.is_some(), wants_text, "{o:?}");
            }
        }
    }

    #[test]
    fn class_mix_is_followed() {
        let mut p = params(3, 40);
        p.class_mix = [("stop".to_string(), 3.0), ("yield".to_string(), 1.0)]
            .into_iter()
            .collect();
        let d = generate_synthetic_data(Params(p)).unwrap();
        let stops = d
            .records
            .iter()
            .flat_map(|r| &r.objects)
            .filter(|o| o.class == "stop")
            .count();
        let yields = d
            .records
            .iter()
            .flat_map(|r| &r.objects)
            .filter(|o| o.class == "yield")
            .count();
        assert_eq!(
            stops + yields,
            d.object_count(),
            "only the classes of the mix"
        );
        assert!(stops > yields * 2, "stop {stops} vs yield {yields}");
    }

    #[test]
    fn bad_parameters_are_errors() {
        let mut p = params(1, 1);
        p.class_mix.insert("unicorn".into(), 1.0);
        assert!(generate_synthetic_data(Params(p))
            .unwrap_err()
            .to_string()
            .contains("unknown class 'unicorn'"));
        let mut p = params(1, 1);
        p.width = 10;
        assert!(generate_synthetic_data(Params(p)).is_err());
        let mut p = params(1, 1);
        p.class_mix = [("stop".to_string(), 0.0)].into_iter().collect();
        assert!(generate_synthetic_data(Params(p)).is_err());
        let mut p = params(1, 1);
        p.jpeg_quality = [90, 10];
        assert!(generate_synthetic_data(Params(p)).is_err());
    }
}
