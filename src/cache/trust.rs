//! Whose files and directories the cache may trust, and why one is
//! refused.
//!
//! The platform layer reports owners and modes; the rules are here. A
//! cache directory must be the user's own, not writable by others and not
//! a symlink; a root is refused when its path passes through another
//! ordinary user's symlink, or would be created inside another ordinary
//! user's directory (the `sudo` case). An index file must be the user's
//! own regular file. Windows has no owners or modes here: see
//! `platform`.

use std::io;
use std::path::Path;

use crate::outcome::Cause;
use crate::platform::{self, current_uid, FileInfo, FileKind};

/// Whether it belongs to the effective user. Always true on Windows.
pub(crate) fn owned_by_current_user(info: &FileInfo) -> bool {
    info.uid == current_uid()
}

/// Whether it belongs to root. Always false on Windows.
fn owned_by_root(info: &FileInfo) -> bool {
    cfg!(unix) && info.uid == 0
}

/// Whether users other than the owner may write it (for a directory:
/// create or remove entries in it). Always false on Windows.
fn writable_by_others(info: &FileInfo) -> bool {
    info.mode & 0o022 != 0
}

/// Whether the user or root owns it: the owners whose links and
/// directories the user's cache may pass through.
fn owned_by_user_or_root(info: &FileInfo) -> bool {
    owned_by_current_user(info) || owned_by_root(info)
}

/// Why the cache directory cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteRefusal {
    /// A directory belongs to another user, is writable by others, or is a
    /// symlink.
    Foreign(String),
    /// Creating or writing failed.
    Unwritable(Cause),
}

pub(super) fn unwritable(action: &str, path: &Path, err: io::Error) -> WriteRefusal {
    WriteRefusal::Unwritable(Cause::io(
        format!("{action} {}", path.display()),
        Some(path),
        err,
    ))
}

/// Why a cache directory could not be opened without following symlinks.
pub(super) fn refusal_for_open(path: &Path, err: io::Error) -> WriteRefusal {
    match platform::lstat(path) {
        Ok(info) => match check_own_private_dir(path, &info) {
            Err(refusal) => refusal,
            Ok(()) => unwritable("opening", path, err),
        },
        Err(_) => unwritable("opening", path, err),
    }
}

impl WriteRefusal {
    /// The human-readable reason.
    pub(crate) fn reason(&self) -> String {
        match self {
            WriteRefusal::Foreign(why) => why.clone(),
            WriteRefusal::Unwritable(cause) => cause.to_string(),
        }
    }

    /// The reason as a [`Cause`].
    pub(crate) fn cause(&self) -> Cause {
        match self {
            WriteRefusal::Foreign(why) => Cause::Refused(why.clone()),
            WriteRefusal::Unwritable(cause) => cause.clone(),
        }
    }
}

/// `info` comes from `lstat` or `fstat`: a symlink is refused, never
/// followed.
pub(super) fn check_own_private_dir(dir: &Path, info: &FileInfo) -> Result<(), WriteRefusal> {
    if info.kind == FileKind::Symlink {
        return Err(WriteRefusal::Foreign(format!(
            "{} is a symbolic link, which epcache does not follow",
            dir.display()
        )));
    }
    if !info.is_dir() {
        return Err(WriteRefusal::Unwritable(Cause::Refused(format!(
            "{} is not a directory",
            dir.display()
        ))));
    }
    if !owned_by_current_user(info) {
        return Err(WriteRefusal::Foreign(format!(
            "{} belongs to another user",
            dir.display()
        )));
    }
    if writable_by_others(info) {
        return Err(WriteRefusal::Foreign(format!(
            "{} is writable by other users",
            dir.display()
        )));
    }
    Ok(())
}

/// Refuses a cache root whose path passes through a symlink that belongs
/// to another ordinary user: whoever owns a link decides where it leads,
/// so it could steer root (`sudo -E` keeps the user's `HOME`) into any
/// directory of root's.
pub(super) fn check_links_above(root: &Path) -> Result<(), WriteRefusal> {
    for ancestor in root.ancestors().skip(1) {
        if ancestor.as_os_str().is_empty() {
            continue;
        }
        let Ok(info) = platform::lstat(ancestor) else {
            continue;
        };
        if info.kind == FileKind::Symlink && !owned_by_user_or_root(&info) {
            return Err(WriteRefusal::Foreign(format!(
                "{} is a symbolic link that belongs to another user",
                ancestor.display()
            )));
        }
    }
    Ok(())
}

/// Refuses to create `dir` when its nearest existing ancestor belongs to
/// another ordinary user: the `sudo` case, where root would otherwise leave
/// root-owned files in someone's home. When that ancestor is a symlink,
/// both the link and what it points to must be the user's (or root's): a
/// link a user planted in their home does not make root's files theirs,
/// nor theirs root's.
pub(super) fn check_may_create_under(dir: &Path) -> Result<(), WriteRefusal> {
    let Some((ancestor, link)) = dir
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .find_map(|a| platform::lstat(a).ok().map(|info| (a, info)))
    else {
        return Ok(());
    };
    let mut owners = vec![link];
    if link.kind == FileKind::Symlink {
        owners.push(platform::stat(ancestor).map_err(|err| unwritable("stat", ancestor, err))?);
    }
    if owners.iter().any(|info| !owned_by_user_or_root(info)) {
        return Err(WriteRefusal::Foreign(format!(
            "would create {} inside {}, which belongs to another user",
            dir.display(),
            ancestor.display()
        )));
    }
    Ok(())
}
