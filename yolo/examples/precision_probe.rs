//! Probe for mixed precision on CPU: forward+backward time of YOLOv8n at
//! batch 16, imgsz 320, channels-last, with float32 or bfloat16 activations
//! (float32 master weights, loss in float32). One precision per process so
//! that peak RSS (`/usr/bin/time -v`) tells their memory apart:
//! `cargo run --release -p yolo --example precision_probe -- bf16|f32`
#[path = "common/mod.rs"]
mod common;

fn main() {
    let bf16 = std::env::args().nth(1).as_deref() == Some("bf16");
    let mut probe = common::Probe::new(true);
    let mut x = common::Probe::batch(true);
    if bf16 {
        x = x.to_kind(tch::Kind::BFloat16);
    }
    let (median, loss) = probe.run(&x, 8);
    println!(
        "bf16={bf16}: median {median:.3}s/batch = {:.1} img/s (last loss {loss:.4})",
        16.0 / median
    );
}
