//! The one in-memory form of an annotated image set, whatever layout it was
//! read from (Pascal VOC, YOLO txt, COCO JSON) or generated in.

use std::path::PathBuf;

/// A box in pixel coordinates of its image (x to the right, y down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundingBox {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
}

impl BoundingBox {
    pub fn width(&self) -> f64 {
        self.xmax - self.xmin
    }
    pub fn height(&self) -> f64 {
        self.ymax - self.ymin
    }
    pub fn area(&self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// Whether the box is non-empty and lies inside a `width` × `height` image.
    pub fn is_inside(&self, width: u32, height: u32) -> bool {
        self.xmin >= 0.0
            && self.ymin >= 0.0
            && self.xmax <= width as f64
            && self.ymax <= height as f64
            && self.width() > 0.0
            && self.height() > 0.0
    }
}

/// One annotated sign.
#[derive(Clone, Debug, PartialEq)]
pub struct SignObject {
    pub class: String,
    pub bbox: BoundingBox,
    /// The text written on the sign, when it carries some.
    pub text: Option<String>,
    /// How readable that text is in the image, when the source says.
    pub legibility: Option<Legibility>,
}

/// How readable a sign's text is, in the three grades of the public set's
/// transcriptions (`text_transcriptions.csv`): its annotators transcribed
/// `high` and `low` signs and left `illegible` ones without text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Legibility {
    Illegible,
    Low,
    High,
}

impl Legibility {
    /// Letters under this many pixels tall cannot be read: the public set's
    /// illegible signs are 9 to 12 px boxes, letters of about 3 to 4 px.
    pub const LEGIBLE_LETTER_PX: f32 = 4.0;
    /// From this letter height on, text reads at a glance: the public set's
    /// smallest `high` signs are 23 to 25 px boxes, letters of about 8 px.
    pub const HIGH_LETTER_PX: f32 = 8.0;

    /// The grade of text whose smallest capital letters are `px` pixels tall.
    pub fn of_letter_height(px: f32) -> Legibility {
        if px < Self::LEGIBLE_LETTER_PX {
            Legibility::Illegible
        } else if px < Self::HIGH_LETTER_PX {
            Legibility::Low
        } else {
            Legibility::High
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Legibility::Illegible => "illegible",
            Legibility::Low => "low",
            Legibility::High => "high",
        }
    }

    pub fn parse(name: &str) -> Option<Legibility> {
        match name.trim() {
            "illegible" => Some(Legibility::Illegible),
            "low" => Some(Legibility::Low),
            "high" => Some(Legibility::High),
            _ => None,
        }
    }
}

/// Where an image's pixels are.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageSource {
    /// Encoded bytes in memory (generated images), with their file extension.
    Encoded {
        bytes: std::sync::Arc<Vec<u8>>,
        extension: &'static str,
    },
    /// A file on disk, read when needed.
    File(PathBuf),
}

impl ImageSource {
    pub fn bytes(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        match self {
            ImageSource::Encoded { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes.as_slice())),
            ImageSource::File(path) => std::fs::read(path).map(std::borrow::Cow::Owned),
        }
    }

    pub fn extension(&self) -> String {
        match self {
            ImageSource::Encoded { extension, .. } => extension.to_string(),
            ImageSource::File(path) => path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("jpg")
                .to_ascii_lowercase(),
        }
    }
}

/// Which part of a split an image belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// One image and its signs.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// File stem, unique in the set (`scene_00042`, `road115`).
    pub id: String,
    pub source: ImageSource,
    pub width: u32,
    pub height: u32,
    pub objects: Vec<SignObject>,
    pub split: Option<Split>,
}

/// A file that could not be used, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub file: String,
    pub reason: String,
}

/// An annotated image set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignDataset {
    /// Class names, in id order where the layout defines ids.
    pub classes: Vec<String>,
    pub records: Vec<ImageRecord>,
    /// Entries skipped while reading, reported by `load_data`.
    pub problems: Vec<Problem>,
}

runner::data_value!(SignDataset);

impl SignDataset {
    pub fn object_count(&self) -> usize {
        self.records.iter().map(|r| r.objects.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::Legibility;

    #[test]
    fn legibility_grades_letter_heights_and_round_trips_its_name() {
        assert_eq!(Legibility::of_letter_height(3.0), Legibility::Illegible);
        assert_eq!(Legibility::of_letter_height(4.0), Legibility::Low);
        assert_eq!(Legibility::of_letter_height(7.9), Legibility::Low);
        assert_eq!(Legibility::of_letter_height(8.0), Legibility::High);
        for grade in [Legibility::Illegible, Legibility::Low, Legibility::High] {
            assert_eq!(Legibility::parse(grade.name()), Some(grade));
        }
        assert_eq!(Legibility::parse("medium"), None);
    }
}
