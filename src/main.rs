//! `rustcorn` — parse the command line, then hand over to the library.

use rustcorn::config::{Config, ConfigError, Environment};

fn main() {
    let config = match Config::from_args(std::env::args_os(), &Environment::from_process()) {
        Ok(config) => config,
        Err(ConfigError::Info(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("rustcorn: {e}");
            std::process::exit(2);
        }
    };
    std::process::exit(rustcorn::serve(config));
}
