//! Content fingerprints for incremental runs: xxh3 over file contents,
//! files of a folder hashed in parallel, large files in parallel chunks.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use rayon::prelude::*;
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

const CHUNK: u64 = 32 << 20;

/// A fingerprint of some bytes.
pub fn of_bytes(bytes: &[u8]) -> String {
    format!("{:032x}", xxh3_128(bytes))
}

/// A fingerprint of several parts, order-sensitive.
pub fn of_parts<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut hasher = Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    format!("{:032x}", hasher.digest128())
}

fn of_file(path: &Path) -> std::io::Result<String> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len <= CHUNK {
        return Ok(of_bytes(&std::fs::read(path)?));
    }
    let chunks: Vec<u64> = (0..len.div_ceil(CHUNK)).collect();
    let hashes = chunks
        .par_iter()
        .map(|&i| {
            let start = i * CHUNK;
            let mut buf = vec![0u8; CHUNK.min(len - start) as usize];
            file.read_exact_at(&mut buf, start)?;
            Ok(of_bytes(&buf))
        })
        .collect::<std::io::Result<Vec<String>>>()?;
    Ok(of_parts(hashes.iter().map(String::as_str)))
}

/// The fingerprint of a file, or of a folder (relative paths and contents of
/// every file below it). `None` when the path does not exist.
pub fn of_path(path: &Path) -> std::io::Result<Option<String>> {
    if path.is_file() {
        return of_file(path).map(Some);
    }
    if !path.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let hashes = files
        .par_iter()
        .map(|f| {
            let rel = f
                .strip_prefix(path)
                .unwrap_or(f)
                .to_string_lossy()
                .to_string();
            Ok(format!("{rel}\0{}", of_file(f)?))
        })
        .collect::<std::io::Result<Vec<String>>>()?;
    Ok(Some(of_parts(hashes.iter().map(String::as_str))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_folders_change_when_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.bin");
        assert_eq!(of_path(&a).unwrap(), None);
        std::fs::write(&a, vec![7u8; (CHUNK + 10) as usize]).unwrap();
        let big = of_path(&a).unwrap().unwrap();
        std::fs::write(&a, vec![7u8; (CHUNK + 11) as usize]).unwrap();
        assert_ne!(of_path(&a).unwrap().unwrap(), big);
        let folder = dir.path().join("f");
        std::fs::create_dir_all(folder.join("sub")).unwrap();
        std::fs::write(folder.join("sub/x"), "1").unwrap();
        let before = of_path(&folder).unwrap().unwrap();
        assert_eq!(of_path(&folder).unwrap().unwrap(), before, "stable");
        std::fs::write(folder.join("sub/x"), "2").unwrap();
        assert_ne!(of_path(&folder).unwrap().unwrap(), before);
        assert_ne!(of_parts(["ab", "c"]), of_parts(["a", "bc"]));
    }
}
