//! `evaluate_ocr`: CER and WER over the text-bearing signs, exact-match rate,
//! per class, before and after correction; the end-to-end rate (signs found by
//! the detector and read exactly); a table of every region; the worst reads.

use std::collections::{BTreeMap, BTreeSet};

use image::{imageops, Rgb, RgbImage};
use polars::prelude::*;
use serde_json::{json, Value};

use super::text::{char_errors, normalize, word_errors};
use super::{grade_name, legible_text, OcrReadings, Read, RoiSource, TextSignCounts};
use crate::detection::dataset::Picture;
use crate::NodesError;

#[derive(Default, Clone, Copy)]
struct Tally {
    regions: usize,
    char_errors: usize,
    chars: usize,
    word_errors: usize,
    words: usize,
    exact: usize,
}

impl Tally {
    fn add(&mut self, read: &str, truth: &str) {
        let (ce, c) = char_errors(read, truth);
        let (we, w) = word_errors(read, truth);
        self.regions += 1;
        self.char_errors += ce;
        self.chars += c;
        self.word_errors += we;
        self.words += w;
        self.exact += usize::from(normalize(read) == normalize(truth));
    }

    fn json(&self) -> Value {
        json!({
            "regions": self.regions,
            "cer": ratio(self.char_errors, self.chars),
            "wer": ratio(self.word_errors, self.words),
            "exact_match": ratio(self.exact, self.regions),
        })
    }
}

/// Size groups: the box's height per line of its text, in image pixels.
/// How small a sign can be and still be read is what a user sizes cameras
/// and crops by.
const LINE_HEIGHT_GROUPS: [(&str, f32); 3] = [
    ("under_32px", 32.0),
    ("32_to_64px", 64.0),
    ("64px_and_more", f32::INFINITY),
];

fn line_height_group(read: &Read, truth: &str) -> &'static str {
    let lines = truth
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
        .max(1);
    let height = (read.roi.bbox[3] - read.roi.bbox[1]) / lines as f32;
    LINE_HEIGHT_GROUPS
        .iter()
        .find(|(_, below)| height < *below)
        .map_or("64px_and_more", |(name, _)| name)
}

/// The truth a read is scored against: none for signs without text, and
/// none for text graded illegible (reported apart, in `per_legibility`).
fn scored_truth(read: &Read) -> Option<&str> {
    legible_text(read.roi.truth.as_deref(), read.roi.legibility)
}

/// Metrics of one source: overall, per class, per line height and per
/// legibility grade, raw and corrected.
fn metrics_of(reads: &[&Read]) -> Value {
    let mut raw = Tally::default();
    let mut corrected = Tally::default();
    let mut per_class: BTreeMap<&str, (Tally, Tally)> = BTreeMap::new();
    let mut per_height: BTreeMap<&str, (Tally, Tally)> = BTreeMap::new();
    let mut per_legibility: BTreeMap<&str, (Tally, Tally)> = BTreeMap::new();
    for r in reads {
        if let Some(truth) = &r.roi.truth {
            let entry = per_legibility
                .entry(grade_name(r.roi.legibility))
                .or_default();
            entry.0.add(&r.raw, truth);
            entry.1.add(&r.corrected, truth);
        }
        let Some(truth) = scored_truth(r) else {
            continue;
        };
        raw.add(&r.raw, truth);
        corrected.add(&r.corrected, truth);
        for entry in [
            per_class.entry(r.roi.class.as_str()).or_default(),
            per_height.entry(line_height_group(r, truth)).or_default(),
        ] {
            entry.0.add(&r.raw, truth);
            entry.1.add(&r.corrected, truth);
        }
    }
    let groups = |tallies: BTreeMap<&str, (Tally, Tally)>| -> serde_json::Map<String, Value> {
        tallies
            .into_iter()
            .map(|(name, (raw, corrected))| {
                (
                    name.to_string(),
                    json!({"raw": raw.json(), "corrected": corrected.json()}),
                )
            })
            .collect()
    };
    json!({
        "raw": raw.json(),
        "corrected": corrected.json(),
        "per_class": groups(per_class),
        "per_line_height": groups(per_height),
        "per_legibility": groups(per_legibility),
    })
}

/// The metrics JSON, the per-region table, the worst reads sheet.
pub fn evaluate_ocr(readings: OcrReadings) -> Result<(Value, DataFrame, Picture), NodesError> {
    let by_source = |source: RoiSource| -> Vec<&Read> {
        readings
            .reads
            .iter()
            .filter(|r| r.roi.source == source)
            .collect()
    };
    let ground_truth = by_source(RoiSource::GroundTruth);
    let detected = by_source(RoiSource::Detector);
    let signs = readings
        .text_signs
        .get(RoiSource::Detector.name())
        .cloned()
        .unwrap_or_default();
    let summary = json!({
        "ground_truth_regions": metrics_of(&ground_truth),
        "detector_regions": metrics_of(&detected),
        "end_to_end": end_to_end(&detected, &signs),
    });
    Ok((
        summary,
        table(&readings.reads)?,
        Picture(worst_sheet(&ground_truth, 24)),
    ))
}

/// `part` of `whole`, 0 when there is no whole.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Text signs of the split whose detected region reads exactly, overall and
/// per legibility grade, raw and corrected.
fn end_to_end(detected: &[&Read], signs: &TextSignCounts) -> Value {
    // Signs (grade, image, text) read exactly: a sign found twice counts once.
    let mut read_raw: BTreeSet<(&str, &str, String)> = BTreeSet::new();
    let mut read_corrected = BTreeSet::new();
    for r in detected {
        let Some(truth) = scored_truth(r) else {
            continue;
        };
        let sign = (
            grade_name(r.roi.legibility),
            r.roi.image_id.as_str(),
            normalize(truth),
        );
        if normalize(&r.raw) == sign.2 {
            read_raw.insert(sign.clone());
        }
        if normalize(&r.corrected) == sign.2 {
            read_corrected.insert(sign);
        }
    }
    let of_grade = |read: &BTreeSet<(&str, &str, String)>, grade: &str| {
        read.iter().filter(|(g, _, _)| *g == grade).count()
    };
    let per_legibility: serde_json::Map<String, Value> = signs
        .iter()
        .map(|(grade, &n)| {
            (
                grade.to_string(),
                json!({
                    "text_signs": n,
                    "read_exactly_raw": ratio(of_grade(&read_raw, grade), n),
                    "read_exactly_corrected": ratio(of_grade(&read_corrected, grade), n),
                }),
            )
        })
        .collect();
    let total = signs.values().sum::<usize>();
    json!({
        "text_signs": total,
        "read_exactly_raw": ratio(read_raw.len(), total),
        "read_exactly_corrected": ratio(read_corrected.len(), total),
        "per_legibility": per_legibility,
    })
}

fn table(reads: &[Read]) -> Result<DataFrame, NodesError> {
    let cer = |r: &Read, text: &str| {
        r.roi.truth.as_ref().map(|t| {
            let (e, n) = char_errors(text, t);
            if n == 0 {
                e as f64
            } else {
                e as f64 / n as f64
            }
        })
    };
    let strings = |f: &dyn Fn(&Read) -> String| reads.iter().map(f).collect::<Vec<String>>();
    let corner = |i: usize| reads.iter().map(|r| r.roi.bbox[i]).collect::<Vec<f32>>();
    Ok(DataFrame::new(
        reads.len(),
        vec![
            Column::new("image".into(), strings(&|r| r.roi.image_id.clone())),
            Column::new("class".into(), strings(&|r| r.roi.class.clone())),
            Column::new("xmin".into(), corner(0)),
            Column::new("ymin".into(), corner(1)),
            Column::new("xmax".into(), corner(2)),
            Column::new("ymax".into(), corner(3)),
            Column::new(
                "source".into(),
                strings(&|r| r.roi.source.name().to_string()),
            ),
            Column::new(
                "truth".into(),
                reads
                    .iter()
                    .map(|r| r.roi.truth.clone())
                    .collect::<Vec<Option<String>>>(),
            ),
            Column::new(
                "legibility".into(),
                reads
                    .iter()
                    .map(|r| r.roi.legibility.map(|l| l.name().to_string()))
                    .collect::<Vec<Option<String>>>(),
            ),
            Column::new("read".into(), strings(&|r| r.raw.clone())),
            Column::new("corrected".into(), strings(&|r| r.corrected.clone())),
            Column::new(
                "confidence".into(),
                reads.iter().map(|r| r.confidence).collect::<Vec<f32>>(),
            ),
            Column::new(
                "cer".into(),
                reads
                    .iter()
                    .map(|r| cer(r, &r.raw))
                    .collect::<Vec<Option<f64>>>(),
            ),
            Column::new(
                "cer_corrected".into(),
                reads
                    .iter()
                    .map(|r| cer(r, &r.corrected))
                    .collect::<Vec<Option<f64>>>(),
            ),
        ],
    )?)
}

/// The `n` worst-read crops (highest CER after correction), each beside its
/// prepared image, with the truth and the read written under them.
fn worst_sheet(reads: &[&Read], n: usize) -> RgbImage {
    let mut scored: Vec<(f64, &&Read)> = reads
        .iter()
        .filter_map(|r| {
            let truth = scored_truth(r)?;
            let (e, len) = char_errors(&r.corrected, truth);
            Some((e as f64 / len.max(1) as f64, r))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.truncate(n);
    let (cell_w, cell_h, text_h) = (420u32, 90u32, 34u32);
    let rows = scored.len().max(1) as u32;
    let mut sheet = RgbImage::from_pixel(cell_w, rows * (cell_h + text_h), Rgb([255, 255, 255]));
    for (i, (cer, r)) in scored.iter().enumerate() {
        let top = i as u32 * (cell_h + text_h);
        let fit = |img: &RgbImage, max_w: u32| {
            let scale =
                (cell_h as f32 / img.height() as f32).min(max_w as f32 / img.width() as f32);
            let w = ((img.width() as f32 * scale) as u32).max(1);
            let h = ((img.height() as f32 * scale) as u32).max(1);
            imageops::resize(img, w, h, imageops::FilterType::Triangle)
        };
        let crop = fit(&r.roi.crop, cell_w / 2 - 4);
        imageops::overlay(&mut sheet, &crop, 0, top as i64);
        let prepared = image::DynamicImage::ImageLuma8(r.roi.prepared.clone()).to_rgb8();
        let prepared = fit(&prepared, cell_w / 2 - 4);
        imageops::overlay(&mut sheet, &prepared, (cell_w / 2) as i64, top as i64);
        let truth = r.roi.truth.clone().unwrap_or_default().replace('\n', " ");
        let label = format!("{} · CER {:.2} · truth: {truth}", r.roi.class, cer);
        let scale = ab_glyph::PxScale::from(14.0);
        let font = crate::style::font();
        let y = (top + cell_h) as i32;
        imageproc::drawing::draw_text_mut(&mut sheet, Rgb([0, 0, 0]), 2, y, scale, font, &label);
        let read = format!("read: {}", r.corrected);
        imageproc::drawing::draw_text_mut(
            &mut sheet,
            Rgb([180, 0, 0]),
            2,
            y + 16,
            scale,
            font,
            &read,
        );
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::Legibility;
    use crate::ocr::Roi;
    use image::GrayImage;

    fn read(source: RoiSource, truth: &str, raw: &str, corrected: &str, height: f32) -> Read {
        Read {
            roi: Roi {
                image_id: format!("scene_{truth}"),
                class: if truth.starts_with('S') {
                    "stop"
                } else {
                    "direction"
                }
                .into(),
                source,
                truth: Some(truth.into()),
                legibility: None,
                bbox: [0.0, 10.0, 50.0, 10.0 + height],
                crop: RgbImage::new(8, 8),
                prepared: GrayImage::new(8, 8),
            },
            raw: raw.into(),
            corrected: corrected.into(),
            confidence: 50.0,
        }
    }

    #[test]
    fn rates_groups_and_the_end_to_end_rate_are_counted_by_hand() {
        use RoiSource::*;
        let readings = OcrReadings {
            reads: vec![
                // 4 characters, 1 wrong raw, fixed by correction; 20 px tall.
                read(GroundTruth, "STOP", "ST0P", "STOP", 20.0),
                // Two lines of 50 px each: the 32-64 px group; 1 of 8 wrong.
                read(
                    GroundTruth,
                    "LYON 18\nREIMS 3",
                    "LYON 18 REIMS 8",
                    "LYON 18 REIMS 8",
                    100.0,
                ),
                read(Detector, "STOP", "STOP", "STOP", 20.0),
                read(Detector, "LYON 18\nREIMS 3", "LYON", "LYON", 100.0),
                // Too small to read: reported apart, not scored.
                Read {
                    roi: Roi {
                        legibility: Some(Legibility::Illegible),
                        ..read(GroundTruth, "SMALL", "", "", 10.0).roi
                    },
                    ..read(GroundTruth, "SMALL", "", "", 10.0)
                },
                Read {
                    roi: Roi {
                        legibility: Some(Legibility::Illegible),
                        ..read(Detector, "SMALL", "SMALL", "SMALL", 10.0).roi
                    },
                    ..read(Detector, "SMALL", "SMALL", "SMALL", 10.0)
                },
            ],
            text_signs: [
                (GroundTruth.name(), [("ungraded", 2)].into()),
                (Detector.name(), [("ungraded", 4)].into()),
            ]
            .into_iter()
            .collect(),
        };
        let (metrics, table, _) = evaluate_ocr(readings).unwrap();
        let gt = &metrics["ground_truth_regions"];
        // Raw: 1 + 1 edits over 4 + 15 characters; corrected: 1 over 19.
        assert!(
            (gt["raw"]["cer"].as_f64().unwrap() - 2.0 / 19.0).abs() < 1e-9,
            "{gt}"
        );
        assert!((gt["corrected"]["cer"].as_f64().unwrap() - 1.0 / 19.0).abs() < 1e-9);
        assert_eq!(gt["raw"]["exact_match"], 0.0);
        assert_eq!(gt["corrected"]["exact_match"], 0.5);
        assert_eq!(gt["per_class"]["stop"]["corrected"]["exact_match"], 1.0);
        let heights = &gt["per_line_height"];
        assert_eq!(heights["under_32px"]["corrected"]["regions"], 1);
        assert_eq!(heights["32_to_64px"]["corrected"]["regions"], 1);
        assert!(heights.get("64px_and_more").is_none());
        assert_eq!(gt["corrected"]["regions"], 2);
        let grades = &gt["per_legibility"];
        assert_eq!(grades["ungraded"]["corrected"]["regions"], 2);
        assert_eq!(grades["illegible"]["corrected"]["regions"], 1);
        assert_eq!(grades["illegible"]["corrected"]["cer"], 1.0);
        // One of the four text signs was detected and read exactly; the
        // illegible one read right does not count.
        assert_eq!(metrics["end_to_end"]["read_exactly_corrected"], 0.25);
        assert_eq!(
            metrics["end_to_end"]["per_legibility"]["ungraded"]["read_exactly_corrected"],
            0.25
        );
        assert_eq!(table.height(), 6);
        for column in [
            "image",
            "class",
            "xmin",
            "ymax",
            "truth",
            "read",
            "corrected",
            "cer",
            "legibility",
        ] {
            assert!(table.column(column).is_ok(), "{column}");
        }
    }
}
