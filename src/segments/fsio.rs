//! Blocking file-system work: streaming a file through BLAKE3 (and optionally into a
//! destination), syncing and removing folders. Everything here runs on blocking threads.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::throttle::Throttle;
use super::{BUF_LEN, CopyError, writeback};
use crate::failpoint::{failpoint, failpoint_io};

/// Shared state of the blocking side of one call.
pub(super) struct Shared {
    /// Bandwidth cap, if any.
    pub(super) throttle: Option<Throttle>,
    /// Set when any copy of the call fails: the others stop at their next buffer.
    pub(super) cancel: AtomicBool,
    /// Sync files and folders.
    pub(super) fsync: bool,
    /// Told the bytes of every buffer read.
    pub(super) progress: Option<super::ProgressFn>,
}

impl Shared {
    pub(super) fn new(bandwidth: Option<u64>, fsync: bool) -> Self {
        Shared {
            throttle: bandwidth.map(Throttle::new),
            cancel: AtomicBool::new(false),
            fsync,
            progress: None,
        }
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub(super) fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Where a stream's bytes go besides the hasher.
pub(super) struct Sink<'a> {
    pub(super) writer: &'a mut dyn Write,
    pub(super) path: &'a Path,
}

/// Read `reader` (the file at `src`, `expected` bytes long when opened) to its end through
/// BLAKE3, writing every byte to `sink` if given. Returns the size and the digest.
///
/// `throttled` says whether reads count against the bandwidth cap.
pub(super) fn stream(
    reader: &mut dyn Read,
    src: &Path,
    expected: u64,
    mut sink: Option<Sink<'_>>,
    shared: &Shared,
    throttled: bool,
) -> Result<(u64, blake3::Hash), CopyError> {
    let throttle = shared.throttle.as_ref().filter(|_| throttled);
    let chunk = throttle.map_or(BUF_LEN, |t| t.chunk_len(BUF_LEN));
    // Never allocate more than the file needs (+1 byte to see growth at the end).
    let cap = usize::try_from(expected.saturating_add(1)).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; chunk.min(cap).max(1)];
    let mut hasher = blake3::Hasher::new();
    let mut total: u64 = 0;
    loop {
        if shared.cancelled() {
            return Err(CopyError::Aborted {
                path: src.to_path_buf(),
            });
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::io("read", src, e)),
        };
        total += n as u64;
        if total > expected {
            return Err(CopyError::SizeChanged {
                path: src.to_path_buf(),
                expected,
                actual: total,
            });
        }
        let data = &buf[..n];
        if let Some(s) = sink.as_mut() {
            failpoint_io("segments.write")
                .and_then(|()| s.writer.write_all(data))
                .map_err(|e| CopyError::io("write", s.path, e))?;
        }
        hasher.update(data);
        if let Some(t) = throttle {
            t.take(n as u64);
        }
        if let Some(p) = &shared.progress {
            p(n as u64);
        }
    }
    if total != expected {
        return Err(CopyError::SizeChanged {
            path: src.to_path_buf(),
            expected,
            actual: total,
        });
    }
    Ok((total, hasher.finalize()))
}

/// Open `path` for reading without following a symbolic link (`O_NOFOLLOW`: a link put
/// in place after the listing fails here), and return it with its size now. Anything but
/// a regular file is [`CopyError::UnsupportedEntry`].
fn open_sized(path: &Path) -> Result<(File, u64), CopyError> {
    let f = open_nofollow(path)?;
    let meta = f.metadata().map_err(|e| CopyError::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(CopyError::UnsupportedEntry {
            path: path.to_path_buf(),
            reason: "is not a regular file".into(),
        });
    }
    Ok((f, meta.len()))
}

/// Open `path` read-only with `O_NOFOLLOW`; a symbolic link is
/// [`CopyError::UnsupportedEntry`] naming it.
fn open_nofollow(path: &Path) -> Result<File, CopyError> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                CopyError::UnsupportedEntry {
                    path: path.to_path_buf(),
                    reason: "is a symbolic link; a segment folder holds only regular files".into(),
                }
            } else {
                CopyError::io("open", path, e)
            }
        })
}

/// Copy `src` to the new file `dst`, hashing on the way; sync `dst` if asked. Fires the
/// `segments.after_file` failpoint once the file is written.
pub(super) fn copy_file(
    src: &Path,
    dst: &Path,
    shared: &Shared,
) -> Result<(u64, blake3::Hash), CopyError> {
    let (mut input, size) = open_sized(src)?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| CopyError::io("create", dst, e))?;
    // A file synced below has its writeback started while it is written.
    let mut early;
    let writer: &mut dyn Write = if shared.fsync {
        early = writeback::Writer::new(&mut out);
        &mut early
    } else {
        &mut out
    };
    let sink = Sink { writer, path: dst };
    let res = stream(&mut input, src, size, Some(sink), shared, true)?;
    if shared.fsync {
        out.sync_all().map_err(|e| CopyError::io("fsync", dst, e))?;
    }
    drop(out);
    failpoint("segments.after_file");
    Ok(res)
}

/// Hard-link `src` (already hashed by the caller: `known` size and digest) to the new name
/// `dst`, syncing it if asked; copies instead when the link is refused (another file
/// system, or links unsupported). A size other than the recorded one is
/// [`CopyError::SizeChanged`]. Fires `segments.after_file` like [`copy_file`].
pub(super) fn link_file(
    src: &Path,
    dst: &Path,
    known: (u64, blake3::Hash),
    shared: &Shared,
) -> Result<(u64, blake3::Hash), CopyError> {
    let (size, hash) = known;
    if let Err(e) = fs::hard_link(src, dst) {
        tracing::debug!(file = %src.display(), error = %e, "cannot link; copying");
        return copy_file(src, dst, shared);
    }
    // A link to a symbolic link is a symbolic link: refused here.
    let out = open_nofollow(dst)?;
    let actual = out
        .metadata()
        .map_err(|e| CopyError::io("stat", dst, e))?
        .len();
    if actual != size {
        return Err(CopyError::SizeChanged {
            path: src.to_path_buf(),
            expected: size,
            actual,
        });
    }
    if shared.fsync {
        out.sync_all().map_err(|e| CopyError::io("fsync", dst, e))?;
    }
    drop(out);
    if let Some(p) = &shared.progress {
        p(size);
    }
    failpoint("segments.after_file");
    Ok((size, hash))
}

/// Size and digest of the file at `path`; `throttled` counts its reads against the cap.
pub(super) fn hash_file(
    path: &Path,
    shared: &Shared,
    throttled: bool,
) -> Result<(u64, blake3::Hash), CopyError> {
    let (mut input, size) = open_sized(path)?;
    stream(&mut input, path, size, None, shared, throttled)
}

/// Sync a folder (its entries: names created, removed or renamed in it).
pub(super) fn fsync_dir(dir: &Path) -> Result<(), CopyError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CopyError::io("fsync folder", dir, e))
}

/// Remove a file or folder tree; a missing path is fine.
pub(super) fn remove_path(path: &Path) -> Result<(), CopyError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CopyError::io("stat", path, e)),
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match res {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(CopyError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Whether anything (even a dangling link) exists at `path`.
pub(super) fn exists(path: &Path) -> Result<bool, CopyError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CopyError::io("stat", path, e)),
    }
}

/// Create `dir` and its missing ancestors; with `fsync`, sync the parent of each folder
/// created so the new names are durable.
pub(super) fn create_dir_all_durable(dir: &Path, fsync: bool) -> Result<(), CopyError> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur {
        if exists(p)? {
            break;
        }
        missing.push(p.to_path_buf());
        cur = p.parent();
    }
    fs::create_dir_all(dir).map_err(|e| CopyError::io("create folder", dir, e))?;
    if fsync {
        for created in missing.iter().rev() {
            if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
        }
    }
    Ok(())
}

/// Rename `from` to `to`, naming both in an error.
pub(super) fn rename(from: &Path, to: &Path) -> Result<(), CopyError> {
    fs::rename(from, to).map_err(|e| {
        CopyError::io(
            "rename",
            PathBuf::from(format!("{} -> {}", from.display(), to.display())),
            e,
        )
    })
}
