//! Tesseract through leptess: the configuration per class (languages, page
//! segmentation mode, character whitelist), the check that the language data
//! is installed, and one engine per worker thread (handles are not shareable).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::GrayImage;
use leptess::{LepTess, Variable};
use serde::{Deserialize, Serialize};

use crate::NodesError;

/// How Tesseract reads one class.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClassReading {
    /// Tesseract page segmentation mode: 7 one line, 6 a block, 8 one word.
    pub psm: u32,
    /// Characters allowed (empty: all).
    pub whitelist: String,
    /// Languages for this class (`eng`), instead of the common ones: each
    /// language is one more recognition pass, so digits and English words
    /// need not pay for French.
    pub languages: Option<String>,
}

impl Default for ClassReading {
    fn default() -> Self {
        ClassReading {
            psm: 7,
            whitelist: String::new(),
            languages: None,
        }
    }
}

/// Parameters of `configure_tesseract`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TesseractParams {
    pub languages: String,
    /// Where `*.traineddata` are; by default TESSDATA_PREFIX, then Debian's.
    pub tessdata: Option<PathBuf>,
    pub classes: BTreeMap<String, ClassReading>,
    /// Tesseract's second pass on the inverted image when a line reads
    /// poorly. Crops arrive binarised dark-on-light, yet the pass still
    /// rescues a few reads (BENCHMARKS.md): on by default, off for speed.
    pub invert_pass: bool,
}

impl Default for TesseractParams {
    fn default() -> Self {
        TesseractParams {
            languages: "eng+fra".into(),
            tessdata: None,
            classes: BTreeMap::new(),
            invert_pass: true,
        }
    }
}

/// A checked Tesseract configuration: what `run_ocr` uses.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TesseractConfig {
    pub languages: String,
    pub tessdata: PathBuf,
    pub classes: BTreeMap<String, ClassReading>,
    pub invert_pass: bool,
}

runner::data_value!(TesseractConfig);

/// Folders searched for language data, in order.
fn tessdata_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = explicit {
        dirs.push(dir.to_path_buf());
    }
    if let Some(prefix) = std::env::var_os("TESSDATA_PREFIX") {
        let prefix = PathBuf::from(prefix);
        dirs.push(prefix.join("tessdata"));
        dirs.push(prefix);
    }
    for version in ["5", "4.00"] {
        dirs.push(PathBuf::from(format!(
            "/usr/share/tesseract-ocr/{version}/tessdata"
        )));
    }
    dirs
}

/// Debian's package for a language's data.
fn package_of(language: &str) -> String {
    format!("tesseract-ocr-{language}")
}

/// Checks that every language's `.traineddata` exists before any work, and
/// returns the configuration with the folder found.
pub fn configure_tesseract(
    params: runner::Params<TesseractParams>,
) -> Result<TesseractConfig, NodesError> {
    let params = params.0;
    let languages: Vec<&str> = std::iter::once(params.languages.as_str())
        .chain(
            params
                .classes
                .values()
                .filter_map(|c| c.languages.as_deref()),
        )
        .flat_map(|l| l.split('+'))
        .filter(|l| !l.is_empty())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if languages.is_empty() {
        return Err(NodesError::Params(
            "ocr languages are empty (e.g. eng+fra)".into(),
        ));
    }
    let candidates = tessdata_candidates(params.tessdata.as_deref());
    let found = candidates.iter().find(|dir| {
        languages
            .iter()
            .all(|l| dir.join(format!("{l}.traineddata")).is_file())
    });
    let Some(dir) = found else {
        let missing: Vec<String> = languages
            .iter()
            .filter(|l| {
                !candidates
                    .iter()
                    .any(|d| d.join(format!("{l}.traineddata")).is_file())
            })
            .map(|l| format!("{l}.traineddata (Debian package {})", package_of(l)))
            .collect();
        return Err(NodesError::Ocr(format!(
            "Tesseract language data missing: {} — looked in {}; install the package(s) or set TESSDATA_PREFIX",
            if missing.is_empty() { "not all in one folder".to_string() } else { missing.join(", ") },
            candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
        )));
    };
    for (class, reading) in &params.classes {
        if !(0..=13).contains(&reading.psm) {
            return Err(NodesError::Params(format!(
                "ocr class {class}: psm {} is not a Tesseract mode (0-13)",
                reading.psm
            )));
        }
    }
    Ok(TesseractConfig {
        languages: params.languages,
        tessdata: dir.clone(),
        classes: params.classes,
        invert_pass: params.invert_pass,
    })
}

/// A text read, with Tesseract's mean confidence (0–100).
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub text: String,
    pub confidence: f32,
}

/// One Tesseract handle, set up once per thread for one configuration.
struct Engine {
    tess: LepTess,
    key: (PathBuf, String, bool),
    psm: u32,
    whitelist: String,
}

thread_local! {
    /// This thread's engines, one per language set in use.
    static ENGINES: RefCell<Vec<Engine>> = const { RefCell::new(Vec::new()) };
}

fn set(tess: &mut LepTess, variable: Variable, value: &str) -> Result<(), NodesError> {
    tess.set_variable(variable, value)
        .map_err(|_| NodesError::Ocr(format!("Tesseract refused {variable:?} = {value:?}")))
}

/// Closes this thread's Tesseract engines.
pub fn close() {
    ENGINES.with(|cell| cell.borrow_mut().clear());
}

/// Reads a prepared crop with this thread's engine (created on first use).
pub fn read(
    config: &TesseractConfig,
    class: &str,
    image: &GrayImage,
) -> Result<Reading, NodesError> {
    if image.width() < 2 || image.height() < 2 {
        return Ok(Reading {
            text: String::new(),
            confidence: 0.0,
        });
    }
    let reading = config.classes.get(class).cloned().unwrap_or_default();
    let mut png = Vec::new();
    image::DynamicImage::ImageLuma8(image.clone())
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| NodesError::Image(e.to_string()))?;
    ENGINES.with(|cell| {
        let mut engines = cell.borrow_mut();
        let languages = reading.languages.as_deref().unwrap_or(&config.languages);
        let key = (
            config.tessdata.clone(),
            languages.to_string(),
            config.invert_pass,
        );
        let index = match engines.iter().position(|e| e.key == key) {
            Some(i) => i,
            None => {
                let tessdata = config.tessdata.to_string_lossy().to_string();
                let mut tess = LepTess::new(Some(&tessdata), languages).map_err(|e| {
                    NodesError::Ocr(format!("Tesseract would not start with {languages}: {e}"))
                })?;
                // Tesseract prints its debug tables (empty pages) to stderr otherwise.
                set(&mut tess, Variable::DebugFile, "/dev/null")?;
                let invert = if config.invert_pass { "1" } else { "0" };
                set(&mut tess, Variable::TesseditDoInvert, invert)?;
                engines.push(Engine {
                    tess,
                    key,
                    psm: u32::MAX,
                    whitelist: String::from("\u{0}"),
                });
                engines.len() - 1
            }
        };
        let engine = &mut engines[index];
        if engine.psm != reading.psm {
            set(
                &mut engine.tess,
                Variable::TesseditPagesegMode,
                &reading.psm.to_string(),
            )?;
            engine.psm = reading.psm;
        }
        if engine.whitelist != reading.whitelist {
            set(
                &mut engine.tess,
                Variable::TesseditCharWhitelist,
                &reading.whitelist,
            )?;
            engine.whitelist = reading.whitelist.clone();
        }
        engine
            .tess
            .set_image_from_mem(&png)
            .map_err(|e| NodesError::Ocr(format!("Tesseract could not take the crop: {e}")))?;
        engine.tess.set_source_resolution(300);
        let text =
            super::openmp::single_threaded(|| engine.tess.get_utf8_text()).unwrap_or_default();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let confidence = if text.is_empty() {
            0.0
        } else {
            engine.tess.mean_text_conf().max(0) as f32
        };
        Ok(Reading { text, confidence })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;

    fn params(
        classes: &[(&str, ClassReading)],
        invert_pass: bool,
    ) -> runner::Params<TesseractParams> {
        runner::Params(TesseractParams {
            classes: classes
                .iter()
                .map(|(c, r)| (c.to_string(), r.clone()))
                .collect(),
            invert_pass,
            ..TesseractParams::default()
        })
    }

    #[test]
    fn class_languages_are_checked_and_read_with_an_engine_of_their_own() {
        let missing = ClassReading {
            languages: Some("zzz".into()),
            ..ClassReading::default()
        };
        let err = configure_tesseract(params(&[("odd", missing)], true)).unwrap_err();
        assert!(err.to_string().contains("zzz.traineddata"), "{err}");
        assert!(err.to_string().contains("tesseract-ocr-zzz"), "{err}");

        let digits = ClassReading {
            languages: Some("eng".into()),
            whitelist: "0123456789".into(),
            ..ClassReading::default()
        };
        let config = configure_tesseract(params(&[("speed_limit", digits)], false)).unwrap();
        assert!(!config.invert_pass);
        // "50" drawn in the bundled font, read by an eng-only engine and by
        // the eng+fra one: two engines on this thread.
        let mut canvas = image::RgbaImage::from_pixel(160, 64, image::Rgba([255, 255, 255, 255]));
        let scale = crate::synth::text::fit_scale("50", 120.0, 48.0);
        crate::synth::text::draw_centered(
            &mut canvas,
            "50",
            80.0,
            32.0,
            scale,
            image::Rgba([0, 0, 0, 255]),
        );
        let crop = image::DynamicImage::ImageRgba8(canvas).to_luma8();
        assert_eq!(read(&config, "speed_limit", &crop).unwrap().text, "50");
        assert_eq!(read(&config, "other", &crop).unwrap().text, "50");
        assert_eq!(ENGINES.with(|e| e.borrow().len()), 2);
        close();
        assert_eq!(ENGINES.with(|e| e.borrow().len()), 0);
        let tiny = GrayImage::from_pixel(1, 1, Luma([0]));
        assert_eq!(read(&config, "speed_limit", &tiny).unwrap().text, "");
    }
}
