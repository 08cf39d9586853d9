//! `--preload`: import the app once in the master before forking the workers.

use clap::{ArgAction, Args};

use super::ConfigError;

/// Flags of the server-mechanics area that decide where the app is imported.
#[derive(Debug, Args)]
pub struct PreloadArgs {
    /// Load application code before the worker processes are forked: the workers
    /// share the app's memory pages, and an app that cannot be imported stops the
    /// server before any worker starts. A HUP then restarts the workers with the same
    /// loaded code (restart, or USR2, for new code).
    #[arg(long = "preload", action = ArgAction::SetTrue)]
    pub preload_app: bool,
}

/// Where the app is imported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Preload {
    /// In the master, before the first fork (`--preload`); otherwise in each worker.
    pub app: bool,
}

/// Validates the preload flags (a flag alone cannot be wrong; the function keeps the
/// shape every settings area has).
pub fn resolve(args: &PreloadArgs) -> Result<Preload, ConfigError> {
    Ok(Preload {
        app: args.preload_app,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Environment};

    #[test]
    fn preload_is_off_by_default_and_on_with_the_flag() {
        let cases: &[(&[&str], bool)] = &[
            (&["rustcorn", "app"], false),
            (&["rustcorn", "--preload", "app"], true),
        ];
        for (args, want) in cases {
            let config = Config::from_args(*args, &Environment::default()).unwrap();
            assert_eq!(config.preload.app, *want, "{args:?}");
        }
    }
}
