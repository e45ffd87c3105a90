//! No OpenMP teams inside Tesseract. Debian's Tesseract runs parts of its
//! line recogniser in OpenMP parallel regions with a fixed thread count;
//! beside rayon's workers (one Tesseract each, already one per core) those
//! threads only oversubscribe the cores, and libgomp's idle threads spin.
//! Measured: `run_ocr` on the synthetic val set took 8.1 s, and 1.3 s with
//! `OMP_THREAD_LIMIT=1` or with this module (BENCHMARKS.md).
//!
//! That variable cannot be set from inside: libgomp reads it when it is
//! loaded, before `main`; and the regions name their thread count, so
//! `omp_set_num_threads` does nothing. `omp_set_max_active_levels(0)` makes
//! every parallel region inactive (run by the calling thread alone), and in
//! libgomp it holds for the calling thread only: each read sets it and puts
//! the previous value back (libtorch shares libgomp, and a worker may run the
//! detector on the same thread). When Tesseract is built without OpenMP,
//! libgomp is not loaded and nothing changes.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

struct OpenMp {
    get_max_active_levels: unsafe extern "C" fn() -> c_int,
    set_max_active_levels: unsafe extern "C" fn(c_int),
}

fn openmp() -> Option<&'static OpenMp> {
    static API: OnceLock<Option<OpenMp>> = OnceLock::new();
    API.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only looks up a library already in the process
        // (loaded with Tesseract); the symbols are libgomp's public API with
        // the C signatures declared above.
        unsafe {
            let handle = libc::dlopen(
                c"libgomp.so.1".as_ptr(),
                libc::RTLD_LAZY | libc::RTLD_NOLOAD,
            );
            if handle.is_null() {
                return None;
            }
            let get = libc::dlsym(handle, c"omp_get_max_active_levels".as_ptr());
            let set = libc::dlsym(handle, c"omp_set_max_active_levels".as_ptr());
            if get.is_null() || set.is_null() {
                return None;
            }
            Some(OpenMp {
                get_max_active_levels: std::mem::transmute::<
                    *mut c_void,
                    unsafe extern "C" fn() -> c_int,
                >(get),
                set_max_active_levels: std::mem::transmute::<
                    *mut c_void,
                    unsafe extern "C" fn(c_int),
                >(set),
            })
        }
    })
    .as_ref()
}

/// Runs `f` with OpenMP's parallel regions inactive on this thread, then
/// restores the thread's setting.
pub fn single_threaded<T>(f: impl FnOnce() -> T) -> T {
    let Some(api) = openmp() else {
        return f();
    };
    // SAFETY: plain libgomp calls on the calling thread's settings.
    let previous = unsafe { (api.get_max_active_levels)() };
    unsafe { (api.set_max_active_levels)(0) };
    let result = f();
    unsafe { (api.set_max_active_levels)(previous) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's nesting limit of active parallel regions, when libgomp is
    /// loaded.
    fn max_active_levels() -> Option<i32> {
        // SAFETY: as above.
        openmp().map(|api| unsafe { (api.get_max_active_levels)() })
    }

    #[test]
    fn reads_run_without_parallel_regions_on_their_own_thread_only() {
        // The test binary links Tesseract, hence libgomp.
        let before = max_active_levels().expect("libgomp is loaded with Tesseract");
        assert!(before > 0);
        let (inside, elsewhere) = single_threaded(|| {
            let elsewhere = std::thread::spawn(max_active_levels).join().unwrap();
            (max_active_levels(), elsewhere)
        });
        assert_eq!(inside, Some(0));
        assert_eq!(elsewhere, Some(before), "other threads keep theirs");
        assert_eq!(max_active_levels(), Some(before));
    }
}
