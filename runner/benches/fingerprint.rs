//! Fingerprinting throughput: hashes 1 GiB of files with the incremental
//! runner's content fingerprint, next to a plain read of the same files.
//!
//! Run: `cargo bench -p runner --bench fingerprint` (ROADSIGN_BENCH_MIB sets the size).

use std::io::Read;
use std::time::Instant;

fn main() {
    let mib: usize = std::env::var("ROADSIGN_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("temp dir");
    let files = 16;
    let per_file = mib * 1024 * 1024 / files;
    let mut state = 0x1234_5678_9abc_def0u64;
    for i in 0..files {
        let mut bytes = vec![0u8; per_file];
        for chunk in bytes.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        std::fs::write(dir.path().join(format!("part{i:02}.bin")), bytes).expect("write");
    }
    let total = (per_file * files) as f64 / (1024.0 * 1024.0);
    let mut reads = Vec::new();
    let mut hashes = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let mut buf = Vec::new();
        for i in 0..files {
            buf.clear();
            std::fs::File::open(dir.path().join(format!("part{i:02}.bin")))
                .and_then(|mut f| f.read_to_end(&mut buf))
                .expect("read");
        }
        reads.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let fp = runner::fingerprint::of_path(dir.path()).expect("hash");
        hashes.push(start.elapsed().as_secs_f64());
        assert!(fp.is_some());
    }
    reads.sort_by(f64::total_cmp);
    hashes.sort_by(f64::total_cmp);
    let (read, hash) = (reads[2], hashes[2]);
    println!("fingerprint of {total:.0} MiB in {files} files (page cache warm), median of 5:");
    println!(
        "  plain sequential read: {:.3} s  {:.0} MiB/s",
        read,
        total / read
    );
    println!(
        "  xxh3 fingerprint:      {:.3} s  {:.0} MiB/s  ({:.2}x the read time)",
        hash,
        total / hash,
        hash / read
    );
}
