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
    // `Py_3_14`, `Py_GIL_DISABLED`, ...: the environ's reuse reads a dict field that
    // only some CPython builds have (see src/wsgi/environ/reuse.rs).
    pyo3_build_config::use_pyo3_cfgs();
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
        order_worker_functions("cdylib");
        return;
    }
    pyo3_build_config::add_libpython_rpath_link_args();
    if let Some(exe) = config.executable() {
        println!("cargo:rustc-env=RUSTCORN_PYTHON_EXECUTABLE={exe}");
    }
    if let Some(dir) = config.lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    order_worker_functions("bins");
}

/// Places the functions a worker runs side by side in their own output section before
/// `.text` (link/worker-text.ld, written by scripts/symbol-order.sh): a forked worker
/// faults its code in page by page, and the kernel maps 64 KiB around each fault, so
/// scattered hot functions cost it about twice the RSS (benches/README.md, "Worker
/// memory"). A linker script with `INSERT BEFORE` only adds to the linker's own layout,
/// and GNU ld, lld and zig's linker (maturin's, for the wheel) all take it.
/// `RUSTCORN_SYMBOL_ORDER=off` leaves the layout to the linker.
fn order_worker_functions(kind: &str) {
    println!("cargo:rerun-if-env-changed=RUSTCORN_SYMBOL_ORDER");
    println!("cargo:rerun-if-changed=link/worker-text.ld");
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let script = std::path::Path::new(&dir).join("link/worker-text.ld");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let off = std::env::var("RUSTCORN_SYMBOL_ORDER").is_ok_and(|v| v == "off");
    if linux && !off && script.is_file() {
        println!("cargo:rustc-link-arg-{kind}=-Wl,-T,{}", script.display());
    }
}
