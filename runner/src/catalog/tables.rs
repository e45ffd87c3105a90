//! Table datasets on polars: `polars.CSVDataset` and `polars.ParquetDataset`.

use std::io::Cursor;

use polars::prelude::*;

use super::dataset::{Dataset, Description};
use super::options::EntryOptions;
use super::storage::FileLocation;
use crate::data::{Data, TypeDesc};
use crate::error::Error;

#[derive(Clone, Debug)]
enum Format {
    Csv {
        separator: u8,
        has_header: bool,
        include_header: bool,
    },
    Parquet {
        compression: ParquetCompression,
    },
}

pub struct TableDataset {
    format: Format,
    location: FileLocation,
}

impl TableDataset {
    pub fn csv(mut options: EntryOptions<'_>) -> Result<Self, Error> {
        let location = file_location(&mut options)?;
        let mut load = options.map("load_args")?;
        let load_sep = load.byte("separator")?;
        let has_header = load.bool("has_header")?.unwrap_or(true);
        load.finish()?;
        let mut save = options.map("save_args")?;
        let save_sep = save.byte("separator")?;
        let include_header = save.bool("include_header")?.unwrap_or(true);
        save.finish()?;
        options.finish(&["filepath", "load_args", "save_args", "versioned"])?;
        Ok(TableDataset {
            format: Format::Csv {
                separator: save_sep.or(load_sep).unwrap_or(b','),
                has_header,
                include_header,
            },
            location,
        })
    }

    pub fn parquet(mut options: EntryOptions<'_>) -> Result<Self, Error> {
        let location = file_location(&mut options)?;
        options.map("load_args")?.finish()?;
        let mut save = options.map("save_args")?;
        let compression = match save.string("compression")?.as_deref() {
            None | Some("snappy") => ParquetCompression::Snappy,
            Some("uncompressed") | Some("none") => ParquetCompression::Uncompressed,
            Some("zstd") => ParquetCompression::Zstd(None),
            Some("lz4") => ParquetCompression::Lz4Raw,
            Some("gzip") => ParquetCompression::Gzip(None),
            Some(other) => {
                return Err(options.error(
                    "save_args",
                    format!(
                    "unknown parquet compression '{other}' (snappy, zstd, lz4, gzip, uncompressed)"
                ),
                ))
            }
        };
        save.finish()?;
        options.finish(&["filepath", "load_args", "save_args", "versioned"])?;
        Ok(TableDataset {
            format: Format::Parquet { compression },
            location,
        })
    }

    fn type_name(&self) -> &'static str {
        match self.format {
            Format::Csv { .. } => "polars.CSVDataset",
            Format::Parquet { .. } => "polars.ParquetDataset",
        }
    }
}

fn file_location(options: &mut EntryOptions<'_>) -> Result<FileLocation, Error> {
    options.file_location()
}

impl Dataset for TableDataset {
    fn load(&self) -> Result<Data, Error> {
        let bytes = self.location.read()?;
        let frame = match &self.format {
            Format::Csv { .. } if bytes.iter().all(|b| b.is_ascii_whitespace()) => {
                Ok(DataFrame::empty())
            }
            Format::Csv {
                separator,
                has_header,
                ..
            } => CsvReadOptions::default()
                .with_has_header(*has_header)
                .with_parse_options(CsvParseOptions::default().with_separator(*separator))
                .into_reader_with_file_handle(Cursor::new(bytes))
                .finish(),
            Format::Parquet { .. } => ParquetReader::new(Cursor::new(bytes)).finish(),
        }
        .map_err(|e| self.location.parse_error(e))?;
        Ok(Data::new(frame))
    }

    fn save(&self, data: &Data) -> Result<(), Error> {
        let mut frame = match data.downcast_ref::<DataFrame>() {
            Some(frame) => frame.clone(),
            None if data.is_empty_value() => DataFrame::empty(),
            None => {
                return Err(Error::dataset(
                    &self.location.display(),
                    format!(
                        "{} saves a DataFrame, got {}",
                        self.type_name(),
                        data.type_desc()
                    ),
                ))
            }
        };
        let format = self.format.clone();
        self.location.write_atomic(move |w| match format {
            Format::Csv {
                separator,
                include_header,
                ..
            } => CsvWriter::new(w)
                .include_header(include_header)
                .with_separator(separator)
                .finish(&mut frame),
            Format::Parquet { compression } => ParquetWriter::new(w)
                .with_compression(compression)
                .finish(&mut frame)
                .map(|_| ()),
        })
    }

    fn file_location(&self) -> Option<&FileLocation> {
        Some(&self.location)
    }

    fn describe(&self) -> Description {
        Description {
            type_name: self.type_name().to_string(),
            location: Some(self.location.display()),
        }
    }

    fn value_type(&self) -> Option<TypeDesc> {
        Some(TypeDesc::of::<DataFrame>())
    }
}
