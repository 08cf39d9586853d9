//! What the access log needs from one app call beyond the request head: the
//! response headers (`{..}o` atoms), environ values (`{..}e`), and the environ-read
//! atoms (`h r m U q H`) the app changed in place. Gathered under the GIL right after
//! the response, only for what the compiled format names
//! ([`crate::log::format::AccessFormat`]).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::environ::Peer;
use super::start_response::StartResponse;
use super::Bridge;
use crate::http::request::Head;
use crate::log::format::Atom;

/// Response headers and environ values kept for the access log (see
/// [`crate::log::access::AccessRecord`]).
#[derive(Debug, Clone, Default)]
pub struct AccessExtra {
    pub response_headers: Vec<(String, String)>,
    pub environ: Vec<(String, String, bool)>,
    /// Environ-read atoms whose value the app changed (`None`: it removed the key).
    pub changed: Vec<(Atom, Option<String>)>,
}

/// Which extras this worker's access-log format needs, decided once at boot.
#[derive(Debug, Clone, Default)]
pub struct AccessNeeds {
    pub response_headers: bool,
    /// Lower-case environ keys.
    pub environ_keys: Vec<String>,
    /// See [`crate::log::format::AccessFormat::environ_atoms`].
    pub environ_atoms: Vec<Atom>,
}

impl AccessNeeds {
    pub(super) fn any(&self) -> bool {
        self.response_headers || !self.environ_keys.is_empty() || !self.environ_atoms.is_empty()
    }
}

impl Bridge {
    /// What the access-log format needs once the response is out (Gunicorn reads the
    /// environ at logging time, so the app's changes to it show); `None` when that is
    /// nothing beyond the request itself (the common case: no allocation).
    pub(super) fn access_extra(
        &self,
        env: &Bound<'_, PyDict>,
        sr: &Bound<'_, StartResponse>,
        head: &Head,
        peer: &Peer,
    ) -> Option<Box<AccessExtra>> {
        let needs = &self.access_needs;
        let mut extra = AccessExtra::default();
        for atom in &needs.environ_atoms {
            if let Some(changed) = changed_atom(env, atom, head, peer) {
                extra.changed.push((atom.clone(), changed));
            }
        }
        if needs.response_headers {
            extra.response_headers = sr.borrow().headers();
        }
        if !needs.environ_keys.is_empty() {
            for (key, value) in env.iter() {
                let Ok(key) = key.extract::<String>() else {
                    continue;
                };
                let lower = key.to_lowercase();
                if !needs.environ_keys.contains(&lower) {
                    continue;
                }
                let is_str = value.is_instance_of::<PyString>();
                let text = value
                    .str()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "-".to_string());
                extra.environ.push((lower, text, is_str));
            }
        }
        let empty = extra.changed.is_empty()
            && extra.response_headers.is_empty()
            && extra.environ.is_empty();
        (!empty).then(|| Box::new(extra))
    }
}

/// The environ's value for an environ-read atom, if the app changed it from what the
/// request gave (`Some(None)`: it removed the key).
fn changed_atom(
    env: &Bound<'_, PyDict>,
    atom: &Atom,
    head: &Head,
    peer: &Peer,
) -> Option<Option<String>> {
    let py = env.py();
    let (key, given): (&Bound<'_, PyString>, &str) = match atom {
        Atom::RemoteAddr => (intern!(py, "REMOTE_ADDR"), peer.remote_ip.as_str()),
        Atom::Method => (intern!(py, "REQUEST_METHOD"), head.method()),
        Atom::Protocol => (intern!(py, "SERVER_PROTOCOL"), head.protocol()),
        Atom::Query => (
            intern!(py, "QUERY_STRING"),
            crate::http::target::split_target(head.target()).1,
        ),
        // Always taken: only formats that name `U` read it.
        Atom::Path => (intern!(py, "PATH_INFO"), ""),
        _ => return None,
    };
    let value = match env.get_item(key) {
        Ok(Some(v)) => v,
        _ => return Some(None),
    };
    if let Some(text) = value.cast::<PyString>().ok().and_then(|s| s.to_str().ok()) {
        // Compared without copying: the common case is "unchanged".
        if !matches!(atom, Atom::Path) && text == given {
            return None;
        }
        return Some(Some(text.to_string()));
    }
    Some(Some(
        value
            .str()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    ))
}
