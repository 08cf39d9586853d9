//! The environ dict of the last request, kept for the next one when nothing but the
//! server can see it any more and nothing changed it after the server's last store.
//!
//! Copying the template (`dict.copy()` clones its key table: a malloc, a copy, a
//! reference count per key and value) and freeing the copy after the response (a
//! decrement per key and value, the table's free) were about 1,500 of a hello
//! request's 15,400 instructions. A *plain* request (see `environ::build`: a GET of
//! HTTP/1.1 with no query, from a warm template that holds all its header fields)
//! stores only PATH_INFO, RAW_URI, REMOTE_PORT and `wsgi.input` into its copy, always
//! the same keys in the same order. So the dict of one plain request, if the app left
//! it exactly as the server made it, becomes the dict of the next plain request copied
//! from the same template by storing those four again: the same keys, in the same
//! order, with this request's values. Nothing the app wrote survives, because a dict
//! the app wrote to is never reused.
//!
//! What "left exactly as the server made it" rests on:
//! - the server held the dict's one reference when it kept it and when it takes it
//!   back (an app or middleware that kept the environ, a hook that saw it, an
//!   iterator or a view over it: each holds a reference, and the next request gets a
//!   fresh copy);
//! - CPython gives a dict a new `ma_version_tag` on every change (a store of another
//!   value, a delete, an insert, `clear`, `update`, `popitem`, `setdefault`...), from a
//!   counter that only grows (3.10 to 3.13; a store of the very value already there is
//!   no change and keeps it). The tag read after the server's last store must be the
//!   tag when the dict is taken again. Python 3.14 dropped the counter and free-threaded
//!   builds are not measured here, so on those every request copies.
//! - the template is the same object as the one the kept dict was copied from (the
//!   kept dict holds a reference to it, so its address cannot be another template's),
//!   and templates are never changed once they are copied from.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A plain request's environ and what it takes to reuse it: the template it was copied
/// from and its version after the server's last store.
pub struct Reusable {
    pub(super) source: Py<PyDict>,
    pub(super) version: u64,
}

/// What the server stored into a plain request's dict beyond its template: the bytes
/// PATH_INFO, RAW_URI and REMOTE_PORT were made from, and the `wsgi.input` object's
/// address. A reused dict still holds those values (its version says so), so the next
/// request stores only what differs: a client asking for the same path on the same
/// connection costs no new string and no store at all. (The address is compared only
/// while the dict holds that object, so no other object can have it.) The buffers are
/// kept when the dict is not (an app that writes into its environ, as Werkzeug does):
/// making them anew was three mallocs and frees per Flask request.
#[derive(Default)]
pub struct Stored {
    pub(super) path: Vec<u8>,
    pub(super) target: Vec<u8>,
    pub(super) port: Vec<u8>,
    pub(super) input: usize,
}

impl Stored {
    /// Records `bytes` as a field's stored value, keeping the buffer.
    pub(super) fn set(field: &mut Vec<u8>, bytes: &[u8]) {
        if field.as_slice() != bytes {
            field.clear();
            field.extend_from_slice(bytes);
        }
    }
}

/// What the server keeps of the last request's environ for the next one: the dict when
/// it may serve the next plain request, and the [`Stored`] buffers in any case.
pub struct KeptEnviron {
    dict: Option<(Py<PyDict>, Py<PyDict>, u64)>,
    stored: Stored,
}

impl KeptEnviron {
    /// Keeps `dict` (the server's only reference) if it may serve the next plain
    /// request: nothing stored into it since the version in `reusable` was read.
    pub fn keep(
        dict: Bound<'_, PyDict>,
        reusable: Option<Reusable>,
        stored: Stored,
    ) -> KeptEnviron {
        let intact =
            reusable.filter(|r| references(&dict) == 1 && version(&dict) == Some(r.version));
        KeptEnviron {
            dict: intact.map(|r| (dict.unbind(), r.source, r.version)),
            stored,
        }
    }

    /// Whether the dict is kept.
    pub fn has_dict(&self) -> bool {
        self.dict.is_some()
    }

    /// The dict and what it holds, for a plain request copying `source`, if it is still
    /// as kept; otherwise `None` (and the dict freed) with the buffers to fill again.
    pub fn take<'py>(self, source: &Bound<'py, PyDict>) -> (Option<Bound<'py, PyDict>>, Stored) {
        let dict = self.dict.and_then(|(dict, kept_source, kept_version)| {
            let dict = dict.into_bound(source.py());
            let intact = kept_source.is(source)
                && references(&dict) == 1
                && version(&dict) == Some(kept_version);
            intact.then_some(dict)
        });
        (dict, self.stored)
    }

    /// The buffers alone (the dict, if any, freed).
    pub fn into_stored(self) -> Stored {
        self.stored
    }
}

fn references(obj: &Bound<'_, PyDict>) -> isize {
    // SAFETY: a live object, and the GIL is held (the Bound says so).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

/// The dict's version tag, where CPython keeps one that changes with every change of
/// the dict (see the module docs); `None` elsewhere, which turns reuse off.
pub fn version(dict: &Bound<'_, PyDict>) -> Option<u64> {
    #[cfg(not(any(Py_3_14, Py_GIL_DISABLED, Py_LIMITED_API, PyPy, GraalPy)))]
    {
        // SAFETY: `dict` is a live exact-or-sub dict (the Bound's type says so), whose
        // object starts with CPython's PyDictObject; the field is read, never written,
        // with the GIL held.
        #[allow(deprecated)]
        let tag = unsafe { (*dict.as_ptr().cast::<pyo3::ffi::PyDictObject>()).ma_version_tag };
        Some(tag)
    }
    #[cfg(any(Py_3_14, Py_GIL_DISABLED, Py_LIMITED_API, PyPy, GraalPy))]
    {
        let _ = dict;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::{build, EnvironConstants, Peer};
    use super::*;
    use crate::http::request::Head;
    use pyo3::types::PyList;

    /// What an app does to its environ before the response is done.
    #[derive(Clone, Copy, Debug)]
    enum App {
        Reads,
        Adds,
        Replaces,
        Deletes,
        AddsAndDeletes,
        StoresTheSameValue,
        Clears,
        Keeps,
    }

    type Items = Vec<(String, String)>;

    /// The environ as sorted (key, repr(value)) pairs; `wsgi.errors` (one object per
    /// worker) by its type.
    fn items(env: &Bound<'_, PyDict>) -> Items {
        let mut items: Items = env
            .iter()
            .map(|(k, v)| match k.to_string().as_str() {
                "wsgi.errors" => (k.to_string(), v.get_type().to_string()),
                _ => (k.to_string(), v.repr().unwrap().to_string()),
            })
            .collect();
        items.sort();
        items
    }

    /// The keys in iteration order (which reuse keeps as a fresh copy has it).
    fn keys(env: &Bound<'_, PyDict>) -> Vec<String> {
        env.keys().iter().map(|k| k.to_string()).collect()
    }

    /// Whatever the app did to the last environ and whatever the request, each environ
    /// holds exactly what one built from a fresh template holds (the same keys in the
    /// same order, the same values, this request's `wsgi.input`); the last request's
    /// dict is used again only when both requests are plain and the app left it
    /// alone, and never while an app holds it.
    #[test]
    fn a_reused_environ_is_what_a_fresh_copy_would_be() {
        Python::initialize();
        Python::attach(|py| {
            let consts = EnvironConstants::new(py, "", false, false).unwrap();
            let twin = EnvironConstants::new(py, "", false, false).unwrap();
            let a = ("Host", &b"a.example"[..]);
            let ua = ("User-Agent", &b"ua/1"[..]);
            let ua2 = ("User-Agent", &b"ua/2"[..]);
            let get =
                |target: &str, fields: &[(&str, &[u8])]| Head::from_parts("GET", target, 1, fields);
            // (request, what the app does with its environ, whether that environ is
            // the last request's dict, the client's port)
            let requests: Vec<(Head, App, bool, u16)> = vec![
                (get("/", &[a, ua]), App::Reads, false, 4000),
                // The first plain request: warm templates from here on.
                (get("/", &[a, ua]), App::Reads, false, 4000),
                (get("/", &[a, ua]), App::Reads, true, 4000),
                (get("/a", &[a, ua]), App::Adds, true, 4000),
                (get("/b", &[a, ua]), App::Reads, false, 4000),
                (get("/c", &[a, ua]), App::Replaces, true, 4001),
                (get("/d", &[a, ua]), App::Deletes, false, 4001),
                (get("/e", &[a, ua]), App::AddsAndDeletes, false, 4000),
                (get("/f", &[a, ua]), App::StoresTheSameValue, false, 4000),
                // Storing the value already there changes nothing.
                (get("/g", &[a, ua]), App::Clears, true, 4000),
                (get("/h", &[a, ua]), App::Keeps, false, 4000),
                (get("/i", &[a, ua]), App::Reads, false, 4000),
                (get("/j", &[a, ua]), App::Reads, true, 4001),
                (get("/j", &[a, ua]), App::Reads, true, 4001),
                (get("/j", &[a, ua]), App::Reads, true, 4001),
                // Not plain: a query, another method, HTTP/1.0, a field the template
                // does not hold, a field with another value.
                (get("/q?x=1", &[a, ua]), App::Reads, false, 4000),
                (get("/k", &[a, ua]), App::Reads, false, 4000),
                (
                    Head::from_parts("POST", "/", 1, &[a, ua]),
                    App::Reads,
                    false,
                    4000,
                ),
                (get("/l", &[a, ua]), App::Reads, false, 4000),
                (
                    Head::from_parts("GET", "/", 0, &[a, ua]),
                    App::Reads,
                    false,
                    4000,
                ),
                (get("/m", &[a, ua]), App::Reads, false, 4000),
                (
                    get("/n", &[a, ua, ("X-More", b"1")]),
                    App::Reads,
                    false,
                    4000,
                ),
                (get("/o", &[a, ua]), App::Reads, false, 4000),
                (get("/p", &[a, ua2]), App::Reads, false, 4000),
                (get("/r", &[a, ua]), App::Reads, false, 4000),
                (get("/s", &[a, ua]), App::Reads, true, 4000),
                // Another template (the leading fields changed twice in a row), the
                // same path and port.
                (get("/s", &[a, ua2]), App::Reads, false, 4000),
                (get("/s", &[a, ua2]), App::Reads, true, 4000),
                // Another Host: the plain template until it repeats.
                (
                    get("/v", &[("Host", b"b.example"), ua2]),
                    App::Reads,
                    false,
                    4000,
                ),
                (get("/w", &[a, ua2]), App::Reads, false, 4000),
                (get("/x", &[a, ua2]), App::Reads, false, 4000),
                (get("/y", &[a, ua2]), App::Reads, false, 4000),
                (get("/z", &[a, ua2]), App::Reads, true, 4000),
            ];
            let mut kept: Option<KeptEnviron> = None;
            let mut held: Vec<(Py<PyDict>, Items)> = Vec::new();
            // The same `wsgi.input` object most of the time, as `wsgi::spare` hands
            // it out.
            let shared_input = PyList::empty(py).into_any();
            for (i, (head, app, reused, port)) in requests.iter().enumerate() {
                let peer = Peer::tcp(std::net::SocketAddr::from(([10, 0, 0, 1], *port)), None);
                let input = if i % 3 == 0 {
                    PyList::empty(py).into_any()
                } else {
                    shared_input.clone()
                };
                let last = kept
                    .as_ref()
                    .and_then(|k| k.dict.as_ref())
                    .map(|d| d.0.as_ptr());
                let built = build(py, &consts, head, 0, &peer, input.clone(), kept.take()).unwrap();
                let env = built.dict.clone();
                // The same requests through templates of their own, never reused: the
                // same keys in the same order...
                let copied = build(py, &twin, head, 0, &peer, input.clone(), None)
                    .unwrap()
                    .dict;
                assert_eq!(keys(&env), keys(&copied), "request {i}: key order");
                assert_eq!(items(&env), items(&copied), "request {i}");
                // ...and what a worker's first request would hold.
                let cold = EnvironConstants::new(py, "", false, false).unwrap();
                let fresh = build(py, &cold, head, 0, &peer, input.clone(), None)
                    .unwrap()
                    .dict;
                assert_eq!(items(&env), items(&fresh), "request {i}");
                assert!(env.get_item("wsgi.input").unwrap().unwrap().is(&input));
                // (A dict freed during the build may come back from CPython's free
                // list as the copy, so only "reused" is told by the address.)
                if *reused {
                    assert_eq!(last, Some(env.as_ptr()), "request {i}: reused");
                }
                match app {
                    App::Reads => {
                        let _ = env.get_item("PATH_INFO").unwrap();
                    }
                    App::Adds => env.set_item("x.app", 1).unwrap(),
                    App::Replaces => env.set_item("SCRIPT_NAME", "/mounted").unwrap(),
                    App::Deletes => env.del_item("HTTP_USER_AGENT").unwrap(),
                    App::AddsAndDeletes => {
                        env.set_item("x.app", 1).unwrap();
                        env.del_item("x.app").unwrap();
                    }
                    App::StoresTheSameValue => {
                        let path = env.get_item("PATH_INFO").unwrap().unwrap();
                        env.set_item("PATH_INFO", path).unwrap();
                    }
                    App::Clears => env.clear(),
                    App::Keeps => held.push((env.clone().unbind(), items(&env))),
                }
                drop((env, copied, fresh));
                let k = built.keep();
                let next_reuses = requests.get(i + 1).is_some_and(|r| r.2);
                assert!(k.has_dict() || !next_reuses, "request {i}: kept");
                kept = Some(k);
            }
            // The environ an app kept is still what it was when its request ended.
            for (env, was) in &held {
                assert_eq!(items(env.bind(py)), *was);
            }
        });
    }

    /// A kept dict changed while kept (an app can reach any object through `gc`) is
    /// not taken back; neither is one someone holds again, nor one of another template.
    #[test]
    fn a_kept_dict_is_taken_back_only_as_it_was_kept() {
        Python::initialize();
        Python::attach(|py| {
            let source = PyDict::new(py);
            source.set_item("k", 1).unwrap();
            let keep = |dict: Bound<'_, PyDict>| {
                let version = version(&dict).unwrap();
                let reusable = Reusable {
                    source: source.clone().unbind(),
                    version,
                };
                let kept = KeptEnviron::keep(dict, Some(reusable), Stored::default());
                assert!(kept.has_dict());
                kept
            };
            let kept = keep(source.copy().unwrap());
            assert!(kept.take(&source).0.is_some(), "as it was kept");

            let kept = keep(source.copy().unwrap());
            let dict = &kept.dict.as_ref().unwrap().0;
            dict.bind(py).set_item("k", 2).unwrap();
            assert!(kept.take(&source).0.is_none(), "changed while kept");

            let kept = keep(source.copy().unwrap());
            let again = kept.dict.as_ref().unwrap().0.clone_ref(py);
            assert!(kept.take(&source).0.is_none(), "held again");
            drop(again);

            let kept = keep(source.copy().unwrap());
            assert!(
                kept.take(&source.copy().unwrap()).0.is_none(),
                "another template"
            );

            let dict = source.copy().unwrap();
            let reusable = Reusable {
                source: source.clone().unbind(),
                version: version(&dict).unwrap(),
            };
            let held = dict.clone();
            let kept = KeptEnviron::keep(dict, Some(reusable), Stored::default());
            assert!(!kept.has_dict(), "held when kept");
            drop(held);
        });
    }
}
