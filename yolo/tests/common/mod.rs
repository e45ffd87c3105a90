//! What the oracle tests share: the committed fixtures and tensor comparison.
// Each test file uses some of these.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use tch::Tensor;

/// `tests/fixtures/oracle/`, checked to hold `file` (a missing fixture fails
/// the test, it never skips it).
pub fn oracle_dir(file: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/oracle");
    assert!(
        dir.join(file).is_file(),
        "the oracle fixture {file} is missing from {}",
        dir.display()
    );
    dir
}

/// Every tensor of a safetensors file, by name.
pub fn read(path: PathBuf) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(&path)
        .unwrap()
        .into_iter()
        .collect()
}

/// Largest absolute difference.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}
