//! Hooks the `roadsign` program installs on its runs: allocator policy and
//! a progress bar are the program's business, not the runner's.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use runner::hooks::{Hook, RunInfo};
use runner::pipeline::Node;
use runner::run::{NodeError, RunFailure, RunReport};

/// Memory a finished node freed, handed back to the system before the next
/// node starts. glibc keeps the small blocks a node freed in its per-thread
/// arenas, and a process running a long pipeline would hold its largest
/// node's memory to the end. With this, the default pipeline's process went
/// from about 900 MiB while `train_yolo` ran to 514 MiB while
/// `evaluate_yolo` ran. Elsewhere than glibc, nothing.
pub struct ReleaseFreeMemory;

impl Hook for ReleaseFreeMemory {
    fn after_node_run(&self, _node: &Node, _elapsed: Duration) {
        release_free_memory();
    }
    fn on_node_error(&self, _node: &Node, _error: &NodeError) {
        release_free_memory();
    }
}

/// Returns the free pages of every malloc arena to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists; any pad is valid.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns the free pages of every malloc arena to the system.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

/// A progress bar of the run's nodes on standard error, drawn only on a
/// terminal: nodes completed or up to date, of all selected.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new() -> Self {
        let bar = match std::io::stderr().is_terminal() {
            true => ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr()),
            false => ProgressBar::hidden(),
        };
        if let Ok(style) =
            ProgressStyle::with_template("{bar:30} {pos}/{len} nodes {elapsed} {wide_msg}")
        {
            bar.set_style(style);
        }
        Progress { bar }
    }

    fn advance(&self, node: &Node) {
        self.bar.inc(1);
        self.bar.set_message(node.name.clone());
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Hook for Progress {
    fn before_pipeline_run(&self, run: &RunInfo<'_>) {
        self.bar.set_length(run.pipeline.len() as u64);
        // The run starts now, not when the bar was made (before validation).
        self.bar.reset_elapsed();
    }
    fn after_node_run(&self, node: &Node, _elapsed: Duration) {
        self.advance(node);
    }
    fn on_node_skipped(&self, node: &Node) {
        self.advance(node);
    }
    fn after_pipeline_run(&self, _run: &RunInfo<'_>, _report: &RunReport) {
        self.bar.finish_and_clear();
    }
    fn on_pipeline_error(&self, _run: &RunInfo<'_>, _failure: &RunFailure) {
        self.bar.finish_and_clear();
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }

    #[test]
    fn freed_small_blocks_go_back_to_the_system() {
        // 256 MiB in 4 KiB blocks (below the mmap threshold: heap memory),
        // written so that the pages are resident, then freed while a block
        // allocated after them stays: free() alone can only shrink the heap
        // from its top, so the freed pages stay resident until trimmed.
        let blocks: Vec<Vec<u8>> = (0..65_536).map(|i| vec![i as u8 | 1; 4096]).collect();
        let pin = std::hint::black_box(vec![1u8; 4096]);
        let with_blocks = resident_bytes();
        drop(blocks);
        let freed = resident_bytes();
        release_free_memory();
        let after = resident_bytes();
        assert!(
            freed + 128 * 1024 * 1024 > with_blocks,
            "free() alone kept them ({with_blocks} -> {freed})"
        );
        assert!(
            after + 128 * 1024 * 1024 < with_blocks,
            "resident {with_blocks} with the blocks, {after} after"
        );
        drop(pin);
    }
}
