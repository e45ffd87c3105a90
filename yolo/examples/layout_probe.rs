//! Probe behind the channels-last choice in `yolo::weights`: forward+backward
//! time of YOLOv8n at batch 16, imgsz 320, with NCHW vs NHWC (channels-last)
//! weights and input, twice each. `cargo run --release -p yolo --example layout_probe`
#[path = "common/mod.rs"]
mod common;

fn main() {
    for channels_last in [false, true, false, true] {
        let mut probe = common::Probe::new(channels_last);
        let (median, _) = probe.run(&common::Probe::batch(channels_last), 6);
        println!(
            "channels_last={channels_last}: median {median:.3}s/batch = {:.1} img/s",
            16.0 / median
        );
    }
}
