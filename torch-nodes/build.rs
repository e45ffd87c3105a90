//! An rpath to libtorch's libraries (`$LIBTORCH/lib`, set by `.cargo/config.toml`)
//! so that this crate's tests run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
