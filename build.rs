//! Build script: make the binary find the libpython it was built against (the wheel's
//! extension module links none: see below).
//!
//! Without an rpath, the loader picks whatever `libpython3.X.so` the default search
//! path offers (on Debian, the system's), and the embedded interpreter then reports the
//! system's `sys.prefix`: the user's virtualenv and site-packages become invisible.

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    println!("cargo:rerun-if-changed=build.rs");
    let config = pyo3_build_config::get();
    let version = config.version();
    println!(
        "cargo:rustc-env=RUSTCORN_PYTHON_VERSION={}.{}",
        version.major, version.minor
    );
    // maturin builds the wheel's extension module with this set: the module must not
    // link libpython or carry this machine's paths, since the interpreter loading it
    // (any CPython of the wheel's version, anywhere) already provides Python.
    if std::env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        pyo3_build_config::add_extension_module_link_args();
        return;
    }
    pyo3_build_config::add_libpython_rpath_link_args();
    if let Some(exe) = config.executable() {
        println!("cargo:rustc-env=RUSTCORN_PYTHON_EXECUTABLE={exe}");
    }
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
