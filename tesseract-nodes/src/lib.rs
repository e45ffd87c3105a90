//! # tesseract-nodes — the road-sign nodes that run Tesseract
//!
//! The bodies of the functions `nodes` declares on the `tesseract` engine
//! (`nodes::signatures`): `run_ocr` and `read_sign_texts`, and
//! [`ReadSigns`], which reads a sign with a [`SignReader`]. Tesseract (with
//! Leptonica and their 50-odd libraries) adds 13 MiB to every process that
//! links it, so only the executables that run these nodes do
//! (`roadsign-ocr`, `roadsign-torch`).
//!
//! One engine per worker thread: Tesseract handles are not shareable.

pub mod ocr;
pub mod openmp;

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use image::{GrayImage, RgbImage};
use leptess::{LepTess, Variable};
use nodes::ocr::engine::{Reading, TesseractConfig};
use nodes::predict::{Prediction, SignDetection, SignReader, SignRegions, Timings};
use nodes::signatures::{ReadSignTextsFn, RunOcrFn};
use nodes::NodesError;
use runner::FunctionRegistry;

/// Gives every function `nodes` declares on the `tesseract` engine its body.
pub fn implement(registry: &mut FunctionRegistry) {
    registry.implement("run_ocr", ocr::run_ocr as RunOcrFn);
    registry.implement("read_sign_texts", read_sign_texts as ReadSignTextsFn);
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
            crate::openmp::single_threaded(|| engine.tess.get_utf8_text()).unwrap_or_default();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let confidence = if text.is_empty() {
            0.0
        } else {
            engine.tess.mean_text_conf().max(0) as f32
        };
        Ok(Reading { text, confidence })
    })
}

/// Reading signs with a [`SignReader`] (its Tesseract settings and vocabularies).
pub trait ReadSigns {
    /// Tesseract on a prepared region, corrected against the class's
    /// vocabulary; `None` when nothing legible came out.
    fn read_region(
        &self,
        class: &str,
        region: &GrayImage,
    ) -> Result<Option<(String, f32)>, NodesError>;

    /// The text of one sign: both steps at once (the video tracker's way).
    fn read(
        &self,
        image: &RgbImage,
        sign: &SignDetection,
    ) -> Result<Option<(String, f32)>, NodesError>;

    /// Starts this thread's Tesseract engine with one read of real text, so
    /// that a server's first request does not pay for it.
    fn warm_up(&self) -> Result<(), NodesError>;
}

impl ReadSigns for SignReader {
    fn read_region(
        &self,
        class: &str,
        region: &GrayImage,
    ) -> Result<Option<(String, f32)>, NodesError> {
        let reading = read(&self.tesseract, class, region)?;
        let text = self.vocabulary.correct(class, &reading.text);
        if text.trim().is_empty() {
            return Ok(None); // nothing legible: null, not ""
        }
        Ok(Some((
            text,
            (reading.confidence / 100.0 * 1000.0).round() / 1000.0,
        )))
    }

    fn read(
        &self,
        image: &RgbImage,
        sign: &SignDetection,
    ) -> Result<Option<(String, f32)>, NodesError> {
        match self.prepare_region(image, sign) {
            Some(region) => self.read_region(&sign.class, &region),
            None => Ok(None),
        }
    }

    fn warm_up(&self) -> Result<(), NodesError> {
        // Real text: a blank crop makes Tesseract print debug tables.
        let mut canvas = image::RgbaImage::from_pixel(128, 64, image::Rgba([255, 255, 255, 255]));
        let scale = nodes::synth::text::fit_scale("50", 100.0, 44.0);
        let ink = image::Rgba([0, 0, 0, 255]);
        nodes::synth::text::draw_centered(&mut canvas, "50", 64.0, 32.0, scale, ink);
        let crop = image::DynamicImage::ImageRgba8(canvas).to_luma8();
        read(&self.tesseract, "speed_limit", &crop).map(|_| ())
    }
}

/// Reads the prepared regions: the answer of `POST /predict`.
pub fn read_sign_texts(
    reader: Arc<SignReader>,
    regions: SignRegions,
) -> Result<Prediction, NodesError> {
    let started = Instant::now();
    let SignRegions {
        detections,
        regions,
        prepare_ms,
    } = regions;
    let mut signs = detections.signs;
    for (sign, region) in signs.iter_mut().zip(&regions) {
        let Some(region) = region else { continue };
        if let Some((text, confidence)) = reader.read_region(&sign.class, region)? {
            sign.text = Some(text);
            sign.text_confidence = Some(confidence);
        }
    }
    Ok(Prediction {
        detections: signs,
        image: detections.image,
        timings_ms: Timings {
            detect: detections.detect_ms,
            ocr: prepare_ms + started.elapsed().as_secs_f64() * 1000.0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Luma;
    use nodes::ocr::engine::{configure_tesseract, ClassReading, TesseractParams};

    #[test]
    fn every_declared_tesseract_function_gets_its_body() {
        let mut registry = FunctionRegistry::new();
        nodes::register(&mut registry);
        let engine = nodes::signatures::TESSERACT;
        let declared: Vec<String> = registry
            .names()
            .filter(|name| registry.get(name).unwrap().missing_engines() == [engine])
            .map(str::to_string)
            .collect();
        assert_eq!(declared, ["read_sign_texts", "run_ocr"]);
        implement(&mut registry);
        for name in &declared {
            assert!(
                registry.get(name).unwrap().missing_engines().is_empty(),
                "{name}"
            );
        }
    }

    #[test]
    fn each_language_set_is_read_with_an_engine_of_its_own() {
        let digits = ClassReading {
            languages: Some("eng".into()),
            whitelist: "0123456789".into(),
            ..ClassReading::default()
        };
        let params = runner::Params(TesseractParams {
            classes: [("speed_limit".to_string(), digits)].into_iter().collect(),
            invert_pass: false,
            ..TesseractParams::default()
        });
        let config = configure_tesseract(params).unwrap();
        assert!(!config.invert_pass);
        // "50" drawn in the bundled font, read by an eng-only engine and by
        // the eng+fra one: two engines on this thread.
        let mut canvas = image::RgbaImage::from_pixel(160, 64, image::Rgba([255, 255, 255, 255]));
        let scale = nodes::synth::text::fit_scale("50", 120.0, 48.0);
        nodes::synth::text::draw_centered(
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
