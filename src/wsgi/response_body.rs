//! Iterating the app's result into the writer, with the fast paths: a list or tuple of
//! bytes goes out with a Content-Length (and one writev when large); a
//! `wsgi.file_wrapper` around a regular file goes out with sendfile(2).

use std::os::fd::RawFd;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::start_response::StartResponse;
use super::streams::FileWrapper;
use super::writer::{Fault, Writer};

/// Sends the app's result. `sendfile` is false under `--no-sendfile`.
pub(super) fn stream(
    iterable: &Bound<'_, PyAny>,
    sr: &Bound<'_, StartResponse>,
    w: &mut Writer<'_, '_>,
    sendfile: bool,
) -> Result<(), Fault> {
    let written = std::mem::take(&mut sr.borrow_mut().written);
    if !written.is_empty() {
        w.start(sr, None)?;
        w.body(&written)?;
    }
    if !w.started() {
        if let Some(item) = only_item(iterable)? {
            // The usual `[body]`: no list of parts on the heap.
            let body = item.as_bytes();
            w.start(sr, Some(body.len() as u64))?;
            w.body_parts(&[body])?;
            return w.finish();
        }
        if let Some(items) = byte_items(iterable)? {
            let parts: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
            w.start(sr, Some(parts.iter().map(|p| p.len() as u64).sum()))?;
            w.body_parts(&parts)?;
            return w.finish();
        }
        if sendfile {
            if let Some(file) = regular_file(iterable) {
                let declared = sr.borrow().content_length;
                w.start(sr, Some(declared.unwrap_or(file.len)))?;
                w.body_file(file.fd, file.offset, file.len)?;
                return w.finish();
            }
        }
    }
    for item in iterable.try_iter().map_err(Fault::App)? {
        let item = item.map_err(Fault::App)?;
        let bytes = item.cast::<PyBytes>().map_err(|_| not_bytes(&item))?;
        let data = bytes.as_bytes();
        if data.is_empty() {
            continue;
        }
        if !w.started() {
            w.start(sr, None)?;
        }
        w.body(data)?;
    }
    if !w.started() {
        w.start(sr, Some(0))?;
    }
    w.finish()
}

/// The one item of a one-item list (`return [body]`), when it is bytes.
fn only_item<'py>(obj: &Bound<'py, PyAny>) -> Result<Option<Bound<'py, PyBytes>>, Fault> {
    match obj.cast::<PyList>() {
        Ok(list) if list.len() == 1 => {
            let item = list.get_item(0).map_err(Fault::App)?;
            item.cast_into::<PyBytes>()
                .map(Some)
                .map_err(|e| not_bytes(e.into_inner().as_any()))
        }
        _ => Ok(None),
    }
}

/// The items of a list or tuple that holds only bytes.
fn byte_items<'py>(obj: &Bound<'py, PyAny>) -> Result<Option<Vec<Bound<'py, PyBytes>>>, Fault> {
    let bytes = |item: Bound<'py, PyAny>| {
        item.cast_into::<PyBytes>()
            .map_err(|e| not_bytes(e.into_inner().as_any()))
    };
    let items: Result<Vec<_>, _> = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().map(bytes).collect()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().map(bytes).collect()
    } else {
        return Ok(None);
    };
    items.map(Some)
}

/// What sendfile needs from a file_wrapper: the descriptor, where reading starts, and
/// how many bytes remain.
struct FileSpan {
    fd: RawFd,
    offset: u64,
    len: u64,
}

/// A `wsgi.file_wrapper` whose file-like object is a regular file with `fileno()`;
/// anything else (BytesIO, pipes, sockets) is iterated instead.
fn regular_file(iterable: &Bound<'_, PyAny>) -> Option<FileSpan> {
    let wrapper = iterable.cast::<FileWrapper>().ok()?;
    let file = wrapper.borrow().filelike(iterable.py());
    let fd: RawFd = file.call_method0("fileno").ok()?.extract().ok()?;
    // SAFETY: the descriptor belongs to `file`, which is alive for this call.
    let stat = nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }).ok()?;
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return None;
    }
    let offset: u64 = match file.call_method0("tell") {
        Ok(pos) => pos.extract().ok()?,
        Err(_) => 0,
    };
    let len = (stat.st_size as u64).saturating_sub(offset);
    Some(FileSpan { fd, offset, len })
}

pub(super) fn not_bytes(item: &Bound<'_, PyAny>) -> Fault {
    Fault::NotBytes(
        item.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into()),
    )
}
