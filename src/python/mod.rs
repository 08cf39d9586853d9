//! The interpreter itself, shared by everything that touches Python: starting CPython
//! in the user's virtualenv (the `rustcorn` binary) or adopting the one already running
//! (the wheel's extension module, where the user's `python` runs the `rustcorn`
//! script), and the fork protocol that keeps it consistent across the master's forks.

pub mod environ;
pub mod interpreter;

pub use interpreter::{Host, PythonEnv};
