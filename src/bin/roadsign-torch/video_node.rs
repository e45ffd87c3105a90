//! The body of `annotate_video`, the one node that needs both engines: each
//! frame's signs are found by libtorch and read by Tesseract, so only the
//! executable that loads both can implement it.

use std::sync::Arc;

use nodes::predict::video::{annotate_video, VideoJob, VideoLimits, VideoSummary};
use nodes::predict::{SignDetector, SignReader};
use nodes::NodesError;
use runner::NodeContext;
use tesseract_nodes::ReadSigns;
use torch_nodes::DetectSigns;

/// A video annotated frame by frame (see [`annotate_video`]): the run's
/// cancellation stops it at the next frame, and each frame is reported as
/// progress to the run's hooks.
pub fn annotate_video_node(
    detector: Arc<SignDetector>,
    reader: Arc<SignReader>,
    job: Arc<VideoJob>,
    ctx: NodeContext,
) -> Result<VideoSummary, NodesError> {
    let limits = VideoLimits {
        cancel: Some(ctx.cancellation().clone()),
        ..job.limits.clone()
    };
    annotate_video(
        &job.input,
        &job.output,
        &|frame| detector.detect(frame),
        &|frame, sign| reader.read(frame, sign),
        &limits,
        &|done, total| ctx.report_progress(done as u64, total as u64),
    )
}
