//! Build script: make the binary find the libpython it was built against.
//!
//! Without an rpath, the loader picks whatever `libpython3.X.so` the default search
//! path offers (on Debian, the system's), and the embedded interpreter then reports the
//! system's `sys.prefix`: the user's virtualenv and site-packages become invisible.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    let config = pyo3_build_config::get();
    let version = config.version();
    println!(
        "cargo:rustc-env=RUSTCORN_PYTHON_VERSION={}.{}",
        version.major, version.minor
    );
    if let Some(exe) = config.executable() {
        println!("cargo:rustc-env=RUSTCORN_PYTHON_EXECUTABLE={exe}");
    }
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-changed=build.rs");
}
