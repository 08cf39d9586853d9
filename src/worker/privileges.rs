//! `-u/--user`, `-g/--group`, `--initgroups`: a worker switches to the configured
//! user and group after fork, once the interpreter and the server's own modules are
//! loaded and before the app is imported — the order Gunicorn's `set_owner_process`
//! runs in. The master keeps its identity (it must reopen logs, signal workers and
//! remove its pid file), as in Gunicorn.

use std::ffi::CString;

use nix::unistd::{Gid, Group, Uid, User};

use crate::config::ops::Ops;

/// Whether workers change identity at all.
pub fn wanted(ops: &Ops) -> bool {
    ops.uid.is_some() || ops.gid.is_some()
}

/// Switches this process to the configured group and user, following Gunicorn:
/// group 0 and user 0 mean "leave as is", `--initgroups` loads the user's
/// supplementary groups. When root gives up its uid without `--initgroups`, the
/// supplementary groups are reduced to the worker's group, so it keeps none of root's.
pub fn drop_to(ops: &Ops) -> Result<(), String> {
    let uid = ops.uid.map(Uid::from_raw).filter(|u| !u.is_root());
    let gid = ops.gid.map(Gid::from_raw).filter(|g| g.as_raw() != 0);
    let leaving_root = Uid::effective().is_root() && uid.is_some_and(|u| u != Uid::current());
    let user_name = uid
        .filter(|_| ops.initgroups)
        .and_then(|u| User::from_uid(u).ok().flatten())
        .map(|u| u.name);
    let group = gid.unwrap_or_else(Gid::current);
    match &user_name {
        Some(name) if gid.is_some() => {
            let c_name = CString::new(name.as_str()).map_err(|e| e.to_string())?;
            nix::unistd::initgroups(&c_name, group)
                .map_err(|e| format!("initgroups({name}, {group}): {e}"))?;
        }
        _ if leaving_root => {
            nix::unistd::setgroups(&[group]).map_err(|e| format!("setgroups([{group}]): {e}"))?
        }
        _ => {}
    }
    if group != Gid::current() {
        nix::unistd::setgid(group).map_err(|e| format!("setgid({group}): {e}"))?;
    }
    if let Some(uid) = uid.filter(|u| *u != Uid::current()) {
        nix::unistd::setuid(uid).map_err(|e| format!("setuid({uid}): {e}"))?;
        // A credential change clears the parent-death signal: ask for it again.
        crate::sys::die_with_parent();
    }
    Ok(())
}

/// `user NAME (UID), group NAME (GID)` of this process, for the log.
pub fn describe() -> String {
    let uid = Uid::current();
    let gid = Gid::current();
    let user = User::from_uid(uid).ok().flatten().map(|u| u.name);
    let group = Group::from_gid(gid).ok().flatten().map(|g| g.name);
    format!(
        "user {} ({uid}), group {} ({gid})",
        user.as_deref().unwrap_or("-"),
        group.as_deref().unwrap_or("-")
    )
}
