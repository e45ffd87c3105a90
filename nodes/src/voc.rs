//! Pascal VOC: one XML per image, `<text>` per object that carries
//! text and, for generated scenes, `<legibility>` (how readable that text is).

use serde::Deserialize;

use crate::annotations::{BoundingBox, ImageRecord, Legibility, SignObject};
use crate::file_error::FileError;

#[derive(Debug, Deserialize)]
struct VocAnnotation {
    filename: Option<String>,
    size: Option<VocSize>,
    #[serde(rename = "object", default)]
    objects: Vec<VocObject>,
}

#[derive(Debug, Deserialize)]
struct VocSize {
    width: u32,
    height: u32,
}

#[derive(Debug, Deserialize)]
struct VocObject {
    name: String,
    text: Option<String>,
    legibility: Option<String>,
    bndbox: VocBox,
}

#[derive(Debug, Deserialize)]
struct VocBox {
    xmin: f64,
    ymin: f64,
    xmax: f64,
    ymax: f64,
}

/// What one VOC XML says.
#[derive(Debug, PartialEq)]
pub struct ParsedVoc {
    pub filename: Option<String>,
    pub size: Option<(u32, u32)>,
    pub objects: Vec<SignObject>,
}

pub fn parse(xml: &str) -> Result<ParsedVoc, FileError> {
    let doc: VocAnnotation = quick_xml::de::from_str(xml)?;
    let objects = doc
        .objects
        .into_iter()
        .map(|o| {
            let legibility = match o.legibility.as_deref() {
                None => None,
                Some(name) => {
                    Some(
                        Legibility::parse(name).ok_or_else(|| FileError::Legibility {
                            grade: name.to_string(),
                        })?,
                    )
                }
            };
            Ok(SignObject {
                class: o.name.trim().to_string(),
                text: o
                    .text
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
                legibility,
                bbox: BoundingBox {
                    xmin: o.bndbox.xmin,
                    ymin: o.bndbox.ymin,
                    xmax: o.bndbox.xmax,
                    ymax: o.bndbox.ymax,
                },
            })
        })
        .collect::<Result<_, FileError>>()?;
    Ok(ParsedVoc {
        filename: doc.filename,
        size: doc.size.map(|s| (s.width, s.height)),
        objects,
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The XML of one record, in the layout of the public road-sign sets.
pub fn write(record: &ImageRecord, filename: &str) -> String {
    let mut xml = format!(
        "<annotation>\n    <folder>images</folder>\n    <filename>{}</filename>\n    <size>\n        <width>{}</width>\n        <height>{}</height>\n        <depth>3</depth>\n    </size>\n    <segmented>0</segmented>\n",
        escape(filename),
        record.width,
        record.height
    );
    for o in &record.objects {
        xml.push_str(&format!(
            "    <object>\n        <name>{}</name>\n",
            escape(&o.class)
        ));
        if let Some(text) = &o.text {
            xml.push_str(&format!("        <text>{}</text>\n", escape(text)));
        }
        if let Some(legibility) = o.legibility {
            xml.push_str(&format!(
                "        <legibility>{}</legibility>\n",
                legibility.name()
            ));
        }
        xml.push_str(&format!(
            "        <pose>Unspecified</pose>\n        <truncated>0</truncated>\n        <occluded>0</occluded>\n        <difficult>0</difficult>\n        <bndbox>\n            <xmin>{}</xmin>\n            <ymin>{}</ymin>\n            <xmax>{}</xmax>\n            <ymax>{}</ymax>\n        </bndbox>\n    </object>\n",
            o.bbox.xmin.round() as i64,
            o.bbox.ymin.round() as i64,
            o.bbox.xmax.round() as i64,
            o.bbox.ymax.round() as i64
        ));
    }
    xml.push_str("</annotation>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::ImageSource;
    use std::path::PathBuf;

    #[test]
    fn writes_and_parses_back() {
        let record = ImageRecord {
            id: "s".into(),
            source: ImageSource::File(PathBuf::from("s.jpg")),
            width: 640,
            height: 480,
            split: None,
            objects: vec![SignObject {
                class: "direction".into(),
                bbox: BoundingBox {
                    xmin: 10.0,
                    ymin: 20.0,
                    xmax: 110.0,
                    ymax: 60.0,
                },
                text: Some("SAINT-ÉTIENNE 12 km\nLYON & CO 3".into()),
                legibility: Some(Legibility::Low),
            }],
        };
        let parsed = parse(&write(&record, "s.jpg")).unwrap();
        assert_eq!(parsed.filename.as_deref(), Some("s.jpg"));
        assert_eq!(parsed.size, Some((640, 480)));
        assert_eq!(parsed.objects, record.objects);
    }

    #[test]
    fn reads_the_public_layout_and_rejects_garbage() {
        let xml = "<annotation><filename>road1.png</filename><size><width>400</width><height>300</height><depth>3</depth></size>\
            <object><name>speedlimit</name><pose>Unspecified</pose><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>\
            <object><name>stop</name><text> STOP </text><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object></annotation>";
        let parsed = parse(xml).unwrap();
        assert_eq!(parsed.objects.len(), 2);
        assert_eq!(parsed.objects[0].class, "speedlimit");
        assert_eq!(parsed.objects[1].text.as_deref(), Some("STOP"));
        assert!(parse("<annotation><object><name>x</name></object>").is_err());
        let graded = "<annotation><object><name>stop</name><text>STOP</text><legibility>medium</legibility>\
            <bndbox><xmin>5</xmin><ymin>6</ymin><xmax>7</xmax><ymax>8</ymax></bndbox></object></annotation>";
        assert!(parse(graded)
            .unwrap_err()
            .to_string()
            .contains("\"medium\""));
        assert!(parse("not xml at all").is_err());
    }
}
