//! Tesseract's configuration per class (languages, page segmentation mode,
//! character whitelist) and the check that the language data is installed.
//! Reading runs Tesseract (through leptess): the `tesseract-nodes` crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn class_languages_are_checked() {
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
        assert_eq!(config.classes["speed_limit"].whitelist, "0123456789");
    }
}
