//! Compiles `src/shim.cpp` against the libtorch that torch-sys found. c10d's
//! headers ship with libtorch; `ProcessGroupGloo.hpp` includes gloo's own,
//! which libtorch does not ship (Debian's `libgloo-dev` provides them; the
//! symbols themselves are inside `libtorch_cpu.so`).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/shim.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys tells dependents where libtorch is"),
    );
    let include = lib
        .parent()
        .expect("libtorch's lib/ has a parent")
        .join("include");
    if !std::path::Path::new("/usr/include/gloo/config.h").exists() {
        println!(
            "cargo:warning=gloo's headers are missing (/usr/include/gloo): apt-get install libgloo-dev \
             (scripts/install.sh does)"
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .define("USE_C10D_GLOO", None)
        .file("src/shim.cpp");
    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        build
            .define("USE_C10D_NCCL", None)
            .define("ROADSIGN_C10D_NCCL", None);
    }
    build.compile("roadsign_c10d");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // This crate's tests find libtorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
    if std::env::var_os("CARGO_FEATURE_NCCL").is_some() {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
}
