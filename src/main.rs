//! `rustcorn` — hand the command line over to the library.

fn main() {
    std::process::exit(rustcorn::run_command_line(std::env::args_os().collect()));
}
