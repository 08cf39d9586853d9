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
    order_worker_functions();
}

/// Places the functions a worker runs side by side at the start of `.text`
/// (link/symbol-order.txt, written by scripts/symbol-order.sh): a forked worker faults
/// its code in page by page, and the kernel maps 64 KiB around each fault, so scattered
/// hot functions cost it about twice the RSS (benches/README.md, "Worker memory").
///
/// Only where rustc links with its own lld, which knows `--symbol-ordering-file`: the
/// x86_64 Linux target without a linker of the user's choosing (GNU ld and zig's
/// linker, which maturin uses for the wheel, refuse the option).
/// `RUSTCORN_SYMBOL_ORDER=off` leaves the order to the linker.
fn order_worker_functions() {
    println!("cargo:rerun-if-env-changed=RUSTCORN_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let own_linker = env("TARGET") == "x86_64-unknown-linux-gnu"
        && std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_none()
        && !env("CARGO_ENCODED_RUSTFLAGS").contains("link");
    let list = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("link/symbol-order.txt");
    if !own_linker || env("RUSTCORN_SYMBOL_ORDER") == "off" || !list.is_file() {
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // A listed function the build no longer has (renamed, changed) is skipped.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
