//! Catalog dataset types of the road-sign project: folders of annotated
//! images (`voc.VOCDataset`, `yolo.YOLODataset`, `coco.COCODataset`) and
//! videos (`video.MP4Dataset`). Registered into the runner by
//! [`crate::register_datasets`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{CsvReadOptions, SerReader};
use rayon::prelude::*;
use runner::catalog::storage::FileLocation;
use runner::catalog::{Dataset, DatasetTypes, Description, EntryOptions};
use runner::{Data, Error, TypeDesc};
use serde_json::Value;

use crate::annotations::{
    BoundingBox, ImageRecord, ImageSource, Legibility, Problem, SignDataset, SignObject, Split,
};
use crate::file_error::{FileError, RowProblem};
use crate::synth::clip::{decode, encode_mp4, VideoClip};
use crate::voc;

const IMAGE_EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "webp"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn sorted_files(dir: &Path, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && keep(p))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}

/// Writes an image in a form every trainer reads: JPEG/PNG bytes are copied;
/// anything else (16-bit, alpha, other formats) becomes 8-bit RGB PNG.
fn write_image(source: &ImageSource, dir: &Path, id: &str) -> Result<String, FileError> {
    let image_error = |source| FileError::Image {
        id: id.to_string(),
        source,
    };
    let bytes = source
        .bytes()
        .map_err(|e| image_error(image::ImageError::IoError(e)))?;
    let format = image::guess_format(&bytes).map_err(image_error)?;
    let simple = |img: &image::DynamicImage| {
        matches!(img.color(), image::ColorType::Rgb8 | image::ColorType::L8)
    };
    let (name, data) = match format {
        image::ImageFormat::Jpeg => (format!("{id}.jpg"), bytes.into_owned()),
        _ => {
            let img = image::load_from_memory(&bytes).map_err(image_error)?;
            if format == image::ImageFormat::Png && simple(&img) {
                (format!("{id}.png"), bytes.into_owned())
            } else {
                let rgb = crate::images::into_rgb8(img);
                let mut out = Vec::new();
                rgb.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
                    .map_err(image_error)?;
                (format!("{id}.png"), out)
            }
        }
    };
    std::fs::write(dir.join(&name), data).map_err(|source| FileError::Write {
        file: name.clone(),
        source,
    })?;
    Ok(name)
}

fn signs_of(data: &Data, dataset: &str) -> Result<Arc<SignDataset>, Error> {
    data.downcast_arc::<SignDataset>().ok_or_else(|| {
        Error::dataset(
            dataset,
            format!("saves a SignDataset, got {}", data.type_desc()),
        )
    })
}

/// Pascal VOC: `images/` + `annotations/` (one XML per image), optionally
/// split into sub-folders (`splits: {train: train, val: dev}`). The
/// annotation folder's name can be chosen, or several tried in order
/// (`annotations: [annotations_with_text, annotations]`: the first a split
/// has is read). `transcriptions: text_transcriptions.csv` names a CSV in a
/// split's folder whose `legibility` column grades the text of the object
/// `object_index` of `image`, as the public set's transcriptions do.
/// `split_ids: conf/real_dev_split.csv` (relative to the project) moves the
/// images it lists (`image,split` columns) to the split it names: a test
/// half fixed in the repository, whatever folder the images come from.
pub struct VocDataset {
    name: String,
    location: FileLocation,
    splits: Vec<(Split, String)>,
    annotation_folders: Vec<String>,
    transcriptions: Option<String>,
    split_ids: Option<PathBuf>,
}

impl VocDataset {
    fn from_options(mut o: EntryOptions<'_>) -> Result<Self, Error> {
        let location = o.unversioned_location()?;
        let mut splits_arg = o.map("splits")?;
        let mut splits = Vec::new();
        for split in Split::ALL {
            if let Some(folder) = splits_arg.string(split.name())? {
                splits.push((split, folder));
            }
        }
        splits_arg.finish()?;
        let annotation_folders = match o.take("annotations") {
            None => vec!["annotations".to_string()],
            Some(Value::String(folder)) => vec![folder],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(String::from))
                .collect::<Option<Vec<_>>>()
                .filter(|folders| !folders.is_empty())
                .ok_or_else(|| o.error("annotations", "`annotations` must list folder names"))?,
            Some(_) => {
                return Err(o.error(
                    "annotations",
                    "`annotations` must be a folder name or a list of them",
                ))
            }
        };
        let transcriptions = o.optional_str("transcriptions")?;
        let split_ids = o.optional_str("split_ids")?.map(|path| o.root.join(path));
        let name = o.entry.name.clone();
        o.finish(&[
            "filepath",
            "splits",
            "credentials",
            "annotations",
            "transcriptions",
            "split_ids",
        ])?;
        Ok(VocDataset {
            name,
            location,
            splits,
            annotation_folders,
            transcriptions,
            split_ids,
        })
    }

    /// Moves the records listed in `split_ids` to the split each row names.
    /// A row naming an image the set does not have is an error: a fixed test
    /// half that silently lost images would report on fewer than it says.
    fn apply_split_ids(&self, records: &mut [ImageRecord]) -> Result<(), Error> {
        let Some(path) = &self.split_ids else {
            return Ok(());
        };
        let fail = |reason: FileError| {
            Error::dataset(
                &self.name,
                format!("split_ids {}: {reason}", path.display()),
            )
        };
        let rows = split_rows(path).map_err(fail)?;
        let by_id: BTreeMap<&str, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let mut moves = Vec::with_capacity(rows.len());
        for (line, id, split) in rows {
            let index = by_id.get(id.as_str()).copied().ok_or_else(|| {
                fail(FileError::Row {
                    line,
                    problem: RowProblem::NoImage { id: id.clone() },
                })
            })?;
            moves.push((index, split));
        }
        for (index, split) in moves {
            records[index].split = Some(split);
        }
        Ok(())
    }

    /// Grades the text of the records read from `root` with the legibility
    /// column of its transcriptions CSV, when it has one.
    fn read_legibility(&self, root: &Path, records: &mut [ImageRecord], out: &mut Vec<Problem>) {
        let Some(name) = &self.transcriptions else {
            return;
        };
        let path = root.join(name);
        if !path.is_file() {
            return;
        }
        let file = path.display().to_string();
        let rows = match transcription_grades(&path) {
            Ok(rows) => rows,
            Err(error) => {
                out.push(Problem {
                    file,
                    reason: error.to_string(),
                });
                return;
            }
        };
        let by_id: BTreeMap<String, usize> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for row in rows {
            let graded = row.and_then(|(line, id, index, legibility)| {
                let object = by_id
                    .get(id.as_str())
                    .and_then(|&i| records[i].objects.get_mut(index))
                    .ok_or(FileError::Row {
                        line,
                        problem: RowProblem::NoObject { index, id },
                    })?;
                object.legibility = Some(legibility);
                Ok(())
            });
            if let Err(error) = graded {
                out.push(Problem {
                    file: file.clone(),
                    reason: error.to_string(),
                });
            }
        }
    }

    fn read_folder(&self, root: &Path, split: Option<Split>, out: &mut SignDataset) {
        let annotations = self
            .annotation_folders
            .iter()
            .map(|folder| root.join(folder))
            .find(|folder| folder.is_dir())
            .unwrap_or_else(|| root.join(&self.annotation_folders[0]));
        let images = root.join("images");
        let xmls = sorted_files(&annotations, |p| p.extension().is_some_and(|e| e == "xml"));
        if xmls.is_empty() {
            out.problems.push(Problem {
                file: annotations.display().to_string(),
                reason: "no annotation XML found".into(),
            });
        }
        let image_files = sorted_files(&images, is_image);
        let by_stem: BTreeMap<String, &PathBuf> =
            image_files.iter().map(|p| (stem(p), p)).collect();
        let mut read = Vec::new();
        let parsed: Vec<_> = xmls
            .par_iter()
            .map(|xml| {
                (
                    xml,
                    std::fs::read_to_string(xml)
                        .map_err(FileError::Io)
                        .and_then(|t| voc::parse(&t)),
                )
            })
            .collect();
        for (xml, result) in parsed {
            let file = xml.display().to_string();
            let doc = match result {
                Ok(doc) => doc,
                Err(error) => {
                    out.problems.push(Problem {
                        file,
                        reason: error.to_string(),
                    });
                    continue;
                }
            };
            let id = stem(xml);
            let image = doc
                .filename
                .as_ref()
                .map(|f| images.join(f))
                .filter(|p| p.is_file())
                .or_else(|| by_stem.get(&id).map(|p| (*p).clone()));
            let Some(image) = image else {
                out.problems.push(Problem {
                    file,
                    reason: "its image is missing".into(),
                });
                continue;
            };
            let (width, height) = doc.size.unwrap_or((0, 0));
            read.push(ImageRecord {
                id,
                source: ImageSource::File(image),
                width,
                height,
                objects: doc.objects,
                split,
            });
        }
        self.read_legibility(root, &mut read, &mut out.problems);
        out.records.append(&mut read);
    }
}

/// A CSV file with every column read as text.
fn text_csv(path: &Path) -> Result<polars::prelude::DataFrame, FileError> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(FileError::Csv)
}

/// One text column of such a CSV, by name.
fn text_column(
    frame: &polars::prelude::DataFrame,
    name: &str,
) -> Result<polars::prelude::StringChunked, FileError> {
    let column = frame.column(name).map_err(|_| FileError::NoColumn {
        name: name.to_string(),
    })?;
    Ok(column.str()?.clone())
}

/// The rows of a `split_ids` CSV (`image,split`): line, image id, split.
fn split_rows(path: &Path) -> Result<Vec<(usize, String, Split)>, FileError> {
    let frame = text_csv(path)?;
    let column = |name: &str| text_column(&frame, name);
    let (images, splits) = (column("image")?, column("split")?);
    (0..frame.height())
        .map(|i| {
            let line = i + 2; // after the header
            let id = stem(Path::new(images.get(i).unwrap_or_default()));
            let name = splits.get(i).unwrap_or_default().trim();
            let split = Split::ALL
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| FileError::Row {
                    line,
                    problem: RowProblem::UnknownSplit {
                        name: name.to_string(),
                    },
                })?;
            Ok((line, id, split))
        })
        .collect()
}

/// One graded row of a transcriptions CSV: its line in the file, the
/// record it grades (its annotation's stem, or its image's without an
/// `annotation` column), the object's index in it, the grade.
type GradedRow = (usize, String, usize, Legibility);

/// The rows of a transcriptions CSV, each graded or with what is wrong with
/// it; an error when the file itself cannot be read.
fn transcription_grades(path: &Path) -> Result<Vec<Result<GradedRow, FileError>>, FileError> {
    let frame = text_csv(path)?;
    let column = |name: &str| text_column(&frame, name);
    let records = column("annotation").or_else(|_| column("image"))?;
    let (indices, grades) = (column("object_index")?, column("legibility")?);
    Ok((0..frame.height())
        .map(|i| {
            let line = i + 2; // after the header
            let id = stem(Path::new(records.get(i).unwrap_or_default()));
            let index = indices
                .get(i)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(FileError::Row {
                    line,
                    problem: RowProblem::ObjectIndex,
                })?;
            let grade = grades.get(i).unwrap_or_default();
            let legibility = Legibility::parse(grade).ok_or_else(|| FileError::Row {
                line,
                problem: RowProblem::Legibility {
                    grade: grade.to_string(),
                },
            })?;
            Ok((line, id, index, legibility))
        })
        .collect())
}

impl Dataset for VocDataset {
    fn load(&self) -> Result<Data, Error> {
        let root = &self.location.local_copy()?;
        if !root.is_dir() {
            return Err(Error::dataset(
                &self.name,
                format!("folder {} not found", root.display()),
            ));
        }
        let mut out = SignDataset::default();
        if self.splits.is_empty() {
            self.read_folder(root, None, &mut out);
        } else {
            for (split, folder) in &self.splits {
                self.read_folder(&root.join(folder), Some(*split), &mut out);
            }
        }
        self.apply_split_ids(&mut out.records)?;
        let mut classes: Vec<String> = out
            .records
            .iter()
            .flat_map(|r| r.objects.iter().map(|o| o.class.clone()))
            .collect();
        classes.sort();
        classes.dedup();
        out.classes = classes;
        Ok(Data::new(out))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let set = signs_of(data, &self.name)?;
        self.location.write_dir_atomic(|dir| {
            let (images, annotations) = (dir.join("images"), dir.join("annotations"));
            std::fs::create_dir_all(&images)?;
            std::fs::create_dir_all(&annotations)?;
            set.records.par_iter().try_for_each(|r| {
                let file = write_image(&r.source, &images, &r.id)?;
                std::fs::write(
                    annotations.join(format!("{}.xml", r.id)),
                    voc::write(r, &file),
                )
                .map_err(FileError::Io)
            })
        })
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn exists(&self) -> Result<bool, Error> {
        Ok(match self.location.is_remote() {
            true => self.location.exists(),
            false => self.location.path().is_dir(),
        })
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "voc.VOCDataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<SignDataset>())
    }
}

/// The YOLO layout: `images/<split>/`, `labels/<split>/` (`class cx cy w h`,
/// normalised) and `data.yaml` with the class names.
pub struct YoloDataset {
    name: String,
    location: FileLocation,
}

fn yolo_label_line(o: &SignObject, class_id: usize, w: u32, h: u32) -> String {
    let (w, h) = (w as f64, h as f64);
    let cx = (o.bbox.xmin + o.bbox.xmax) / 2.0 / w;
    let cy = (o.bbox.ymin + o.bbox.ymax) / 2.0 / h;
    format!(
        "{class_id} {cx:.6} {cy:.6} {:.6} {:.6}\n",
        o.bbox.width() / w,
        o.bbox.height() / h
    )
}

/// Parses one YOLO label line back into a box of a `w` × `h` image.
pub fn parse_yolo_line(line: &str, w: u32, h: u32) -> Result<(usize, BoundingBox), FileError> {
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(|f| {
            f.parse::<f64>().map_err(|_| FileError::NotANumber {
                field: f.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let [class, cx, cy, bw, bh] = fields[..] else {
        return Err(FileError::LabelFields {
            line: line.trim().to_string(),
        });
    };
    if class < 0.0 || class.fract() != 0.0 {
        return Err(FileError::ClassId(class));
    }
    let (w, h) = (w as f64, h as f64);
    Ok((
        class as usize,
        BoundingBox {
            xmin: (cx - bw / 2.0) * w,
            ymin: (cy - bh / 2.0) * h,
            xmax: (cx + bw / 2.0) * w,
            ymax: (cy + bh / 2.0) * h,
        },
    ))
}

#[derive(serde::Deserialize)]
struct DataYaml {
    names: serde_yaml::Value,
}

fn class_names(value: &serde_yaml::Value) -> Result<Vec<String>, FileError> {
    match value {
        serde_yaml::Value::Sequence(items) => Ok(items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()),
        serde_yaml::Value::Mapping(map) => {
            let mut pairs: Vec<(u64, String)> = map
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_u64().unwrap_or(u64::MAX),
                        v.as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            pairs.sort();
            Ok(pairs.into_iter().map(|(_, v)| v).collect())
        }
        _ => Err(FileError::ClassNames),
    }
}

impl Dataset for YoloDataset {
    fn load(&self) -> Result<Data, Error> {
        let root = &self.location.local_copy()?;
        let fail = |m: String| Error::dataset(&self.name, m);
        let text = std::fs::read_to_string(root.join("data.yaml"))
            .map_err(|e| fail(format!("{}/data.yaml: {e}", root.display())))?;
        let meta: DataYaml =
            serde_yaml::from_str(&text).map_err(|e| fail(format!("data.yaml: {e}")))?;
        let classes = class_names(&meta.names).map_err(|e| fail(e.to_string()))?;
        let mut out = SignDataset {
            classes,
            ..Default::default()
        };
        for split in Split::ALL {
            for image in sorted_files(&root.join("images").join(split.name()), is_image) {
                let id = stem(&image);
                let label = root
                    .join("labels")
                    .join(split.name())
                    .join(format!("{id}.txt"));
                let parsed = image::image_dimensions(&image)
                    .map_err(FileError::ImageSize)
                    .and_then(|(w, h)| {
                        let text = std::fs::read_to_string(&label).unwrap_or_default();
                        let objects = text
                            .lines()
                            .filter(|l| !l.trim().is_empty())
                            .map(|l| {
                                let (class, bbox) = parse_yolo_line(l, w, h)?;
                                let name = out
                                    .classes
                                    .get(class)
                                    .ok_or(FileError::UnknownClassId(class))?;
                                Ok(SignObject {
                                    class: name.clone(),
                                    bbox,
                                    text: None,
                                    legibility: None,
                                })
                            })
                            .collect::<Result<Vec<_>, FileError>>()?;
                        Ok((w, h, objects))
                    });
                match parsed {
                    Ok((width, height, objects)) => out.records.push(ImageRecord {
                        id,
                        source: ImageSource::File(image),
                        width,
                        height,
                        objects,
                        split: Some(split),
                    }),
                    Err(reason) => out.problems.push(Problem {
                        file: label.display().to_string(),
                        reason: reason.to_string(),
                    }),
                }
            }
        }
        Ok(Data::new(out))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let set = signs_of(data, &self.name)?;
        let class_id: BTreeMap<&str, usize> = set
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        self.location.write_dir_atomic(|dir| {
            for split in Split::ALL {
                std::fs::create_dir_all(dir.join("images").join(split.name()))?;
                std::fs::create_dir_all(dir.join("labels").join(split.name()))?;
            }
            set.records.par_iter().try_for_each(|r| {
                let split = r.split.unwrap_or(Split::Train).name();
                write_image(&r.source, &dir.join("images").join(split), &r.id)?;
                let mut labels = String::new();
                for o in &r.objects {
                    let id = class_id.get(o.class.as_str()).ok_or_else(|| FileError::NotInClassList { id: r.id.clone(), class: o.class.clone() })?;
                    labels.push_str(&yolo_label_line(o, *id, r.width, r.height));
                }
                std::fs::write(dir.join("labels").join(split).join(format!("{}.txt", r.id)), labels).map_err(FileError::Io)
            })?;
            let names: Vec<String> = set.classes.iter().map(|c| format!("  {}", serde_yaml::to_string(&vec![c]).unwrap_or_default().trim())).collect();
            let yaml = format!(
                "# YOLO dataset written by roadsign\npath: .\ntrain: images/train\nval: images/val\ntest: images/test\nnc: {}\nnames:\n{}\n",
                set.classes.len(),
                names.join("\n")
            );
            std::fs::write(dir.join("data.yaml"), yaml).map_err(FileError::Io)
        })
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn exists(&self) -> Result<bool, Error> {
        Ok(match self.location.is_remote() {
            true => self.location.exists(),
            false => self.location.path().join("data.yaml").is_file(),
        })
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "yolo.YOLODataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<SignDataset>())
    }
}

/// COCO detection JSON (read only): `images`, `annotations` (`bbox` = x, y, w, h),
/// `categories`; image files relative to the JSON's folder or its `images/`.
pub struct CocoDataset {
    name: String,
    location: FileLocation,
}

#[derive(serde::Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}
#[derive(serde::Deserialize)]
struct CocoImage {
    id: u64,
    file_name: String,
    width: u32,
    height: u32,
}
#[derive(serde::Deserialize)]
struct CocoAnnotation {
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
}
#[derive(serde::Deserialize)]
struct CocoCategory {
    id: u64,
    name: String,
}

impl Dataset for CocoDataset {
    fn load(&self) -> Result<Data, Error> {
        let text = self.location.read_string()?;
        let coco: CocoFile =
            serde_json::from_str(&text).map_err(|e| self.location.parse_error(e))?;
        let base = self.location.path().parent().unwrap_or(Path::new("."));
        let names: BTreeMap<u64, &str> = coco
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        let mut out = SignDataset {
            classes: coco.categories.iter().map(|c| c.name.clone()).collect(),
            ..Default::default()
        };
        let mut by_image: BTreeMap<u64, Vec<&CocoAnnotation>> = BTreeMap::new();
        for a in &coco.annotations {
            by_image.entry(a.image_id).or_default().push(a);
        }
        for img in &coco.images {
            let path = [
                base.join(&img.file_name),
                base.join("images").join(&img.file_name),
            ]
            .into_iter()
            .find(|p| p.is_file());
            let Some(path) = path else {
                out.problems.push(Problem {
                    file: img.file_name.clone(),
                    reason: "image file not found".into(),
                });
                continue;
            };
            let mut objects = Vec::new();
            let mut bad = None;
            for a in by_image.get(&img.id).into_iter().flatten() {
                match names.get(&a.category_id) {
                    Some(name) => objects.push(SignObject {
                        class: name.to_string(),
                        bbox: BoundingBox {
                            xmin: a.bbox[0],
                            ymin: a.bbox[1],
                            xmax: a.bbox[0] + a.bbox[2],
                            ymax: a.bbox[1] + a.bbox[3],
                        },
                        text: None,
                        legibility: None,
                    }),
                    None => bad = Some(format!("unknown category id {}", a.category_id)),
                }
            }
            if let Some(reason) = bad {
                out.problems.push(Problem {
                    file: img.file_name.clone(),
                    reason,
                });
                continue;
            }
            out.records.push(ImageRecord {
                id: stem(&path),
                source: ImageSource::File(path),
                width: img.width,
                height: img.height,
                objects,
                split: None,
            });
        }
        Ok(Data::new(out))
    }

    fn save(&self, _data: &Data) -> Result<(), Error> {
        Err(Error::dataset(
            &self.name,
            "coco.COCODataset is read-only; save to voc.VOCDataset or yolo.YOLODataset",
        ))
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "coco.COCODataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<SignDataset>())
    }
}

/// An H.264 MP4 video, encoded and decoded with ffmpeg.
pub struct Mp4Dataset {
    name: String,
    location: FileLocation,
}

impl Dataset for Mp4Dataset {
    fn load(&self) -> Result<Data, Error> {
        decode(&self.location.local_copy()?)
            .map(Data::new)
            .map_err(|e| Error::dataset(&self.name, e))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let clip = data.downcast_ref::<VideoClip>().ok_or_else(|| {
            Error::dataset(
                &self.name,
                format!("saves a VideoClip, got {}", data.type_desc()),
            )
        })?;
        // ffmpeg writes a staged file that the location commits.
        self.location
            .write_via_path(".mp4", |path| encode_mp4(clip, path))
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: "video.MP4Dataset".into(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<VideoClip>())
    }
}

fn simple<D: Dataset + 'static>(
    make: fn(String, FileLocation) -> D,
    remote_ok: bool,
) -> impl Fn(EntryOptions<'_>) -> Result<Arc<dyn Dataset>, Error> + Send + Sync + 'static {
    move |mut o: EntryOptions<'_>| {
        let location = match remote_ok {
            true => o.unversioned_location()?,
            false => o.local_location()?,
        };
        let name = o.entry.name.clone();
        o.finish(&["filepath", "credentials"])?;
        Ok(Arc::new(make(name, location)) as Arc<dyn Dataset>)
    }
}

/// Adds the project's dataset types to the runner's registry.
pub fn register(types: &mut DatasetTypes) {
    types.register("voc.VOCDataset", |o| {
        Ok(Arc::new(VocDataset::from_options(o)?) as Arc<dyn Dataset>)
    });
    types.register(
        "yolo.YOLODataset",
        simple(|name, location| YoloDataset { name, location }, true),
    );
    types.register(
        "coco.COCODataset",
        simple(|name, location| CocoDataset { name, location }, false),
    );
    types.register(
        "video.MP4Dataset",
        simple(|name, location| Mp4Dataset { name, location }, true),
    );
    types.register(
        "torch.ModelDataset",
        simple(
            |name, location| crate::detection::dataset::ModelDataset { name, location },
            true,
        ),
    );
    types.register(
        "image.PNGDataset",
        simple(
            |name, location| crate::detection::dataset::PngDataset { name, location },
            true,
        ),
    );
}
