//! Lets binaries and tests of this crate find libtorch's shared libraries at run
//! time without LD_LIBRARY_PATH: an rpath to `$LIBTORCH/lib` (set by
//! `.cargo/config.toml` to the copy `scripts/install-libtorch.sh` makes).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
    }
}
