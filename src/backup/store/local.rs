//! The folder store (`file:///path`), and the hashing writer behind its uploads and
//! downloads.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::{BUF, ObjectInfo, blocking, changed_file};
use crate::error::{Error, Result};
use crate::failpoint::failpoint_io;

/// `file:///path`.
#[derive(Debug, Clone)]
pub struct LocalStore {
    pub(super) root: PathBuf,
}

/// A write destination: a temporary file beside `dest` (renamed at the end) or nothing,
/// hashing everything written.
struct Sink {
    file: Option<(std::fs::File, PathBuf, PathBuf)>,
    hasher: blake3::Hasher,
    size: u64,
    /// Sync the file before the rename (backup copies); downloads are scratch.
    durable: bool,
}

impl Sink {
    fn create(dest: Option<&Path>, durable: bool) -> Result<Sink> {
        let file = match dest {
            Some(d) => {
                if let Some(parent) = d.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::io("create folder", parent, e))?;
                }
                remove_stale_tmp(d);
                let tmp = tmp_path(d);
                let f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
                Some((f, tmp, d.to_path_buf()))
            }
            None => None,
        };
        Ok(Sink {
            file,
            hasher: blake3::Hasher::new(),
            size: 0,
            durable,
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if let Some((f, tmp, _)) = self.file.as_mut() {
            failpoint_io("backup.write")
                .and_then(|()| f.write_all(chunk))
                .map_err(|e| Error::io("write", &*tmp, e))?;
        }
        Ok(())
    }

    /// Read all of `src` into the sink.
    fn pump(&mut self, src: &Path) -> Result<()> {
        let mut input = std::fs::File::open(src).map_err(|e| Error::io("open", src, e))?;
        let mut buf = vec![0u8; BUF];
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| Error::io("read", src, e))?;
            if n == 0 {
                return Ok(());
            }
            self.write(&buf[..n])?;
        }
    }

    /// Size and BLAKE3 of what was written; the file is renamed into place only when
    /// `accept` agrees, and removed otherwise.
    fn finish(mut self, accept: impl FnOnce(u64, &str) -> Result<()>) -> Result<(u64, String)> {
        let hash = self.hasher.finalize().to_hex().to_string();
        if let Some((f, tmp, dest)) = self.file.take() {
            let done = accept(self.size, &hash).and_then(|()| {
                if self.durable {
                    f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
                }
                drop(f);
                std::fs::rename(&tmp, &dest).map_err(|e| Error::io("rename", &tmp, e))
            });
            if let Err(e) = done {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        }
        Ok((self.size, hash))
    }
}

impl Drop for Sink {
    /// A write that failed (full disk, read error) leaves no partial temporary file.
    fn drop(&mut self) {
        if let Some((f, tmp, _)) = self.file.take() {
            drop(f);
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

/// Remove the temporary files of `dest` a killed process left beside it
/// (`.<name>.tmp-<pid>` of a process no longer running on this host). Best effort: a
/// leftover only costs space.
fn remove_stale_tmp(dest: &Path) {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(rd) = std::fs::read_dir(parent) else {
        return;
    };
    for e in rd.flatten() {
        let entry = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = entry
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() as i32 || process_alive(pid) {
            continue;
        }
        tracing::warn!(file = %e.path().display(), "removing a partial backup file left by an interrupted run");
        let _ = std::fs::remove_file(e.path());
    }
}

/// Whether a process with this id runs on this host (signal 0 probes without sending).
fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// The temporary name a download or copy to `dest` is written under.
pub(super) fn tmp_path(dest: &Path) -> PathBuf {
    // `dest` is always a file path built from a key; without a name the temporary file is
    // still unique (dot, pid) beside it.
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Size and BLAKE3 of a local file, streamed.
pub async fn hash_file(path: &Path) -> Result<(u64, String)> {
    let p = path.to_path_buf();
    blocking(&path.display().to_string(), move || {
        let mut sink = Sink::create(None, false)?;
        sink.pump(&p)?;
        sink.finish(|_, _| Ok(()))
    })
    .await
}

impl LocalStore {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(super) async fn check(&self) -> Result<()> {
        let root = self.root.clone();
        blocking(&root.display().to_string(), move || {
            // The folder is the target itself, like a bucket: never created here, so an
            // unmounted volume is not filled in its mount point's place.
            if !root.is_dir() {
                return Err(Error::Path {
                    what: "backup folder".into(),
                    path: root,
                    reason: "does not exist or is not a directory (milvus-tier never creates the backup target: create it or mount its volume)".into(),
                });
            }
            let probe = root.join(format!(".write-probe-{}", std::process::id()));
            std::fs::write(&probe, b"")
                .map_err(|e| Error::io("write to backup folder", &root, e))?;
            std::fs::remove_file(&probe).map_err(|e| Error::io("remove", &probe, e))
        })
        .await
    }

    pub(super) async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        let p = self.path(key);
        match tokio::fs::metadata(&p).await {
            Ok(m) => Ok(Some(ObjectInfo {
                size: m.len(),
                blake3: None,
                version: format!("{:?}", m.modified().ok()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("stat", p, e)),
        }
    }

    pub(super) async fn put_file(
        &self,
        key: &str,
        src: &Path,
        size: u64,
        blake3: &str,
    ) -> Result<()> {
        let (src, dest, want) = (src.to_path_buf(), self.path(key), blake3.to_string());
        blocking(&dest.display().to_string(), move || {
            let mut sink = Sink::create(Some(&dest), true)?;
            sink.pump(&src)?;
            sink.finish(|n, h| {
                if (n, h) == (size, want.as_str()) {
                    Ok(())
                } else {
                    Err(changed_file(&src, n, h, size, &want))
                }
            })
            .map(|_| ())
        })
        .await
    }

    pub(super) async fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let dest = self.path(key);
        let bytes = bytes.to_vec();
        blocking(&dest.display().to_string(), move || {
            let mut sink = Sink::create(Some(&dest), true)?;
            sink.write(&bytes)?;
            sink.finish(|_, _| Ok(())).map(|_| ())
        })
        .await
    }

    pub(super) async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let p = self.path(key);
        match tokio::fs::read(&p).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", p, e)),
        }
    }

    /// Copy `key` to `dest` (or only hash it), returning size and BLAKE3.
    pub(super) async fn download(&self, key: &str, dest: Option<&Path>) -> Result<(u64, String)> {
        let src = self.path(key);
        let dest = dest.map(Path::to_path_buf);
        blocking(&src.display().to_string(), move || {
            let mut sink = Sink::create(dest.as_deref(), false)?;
            sink.pump(&src)?;
            sink.finish(|_, _| Ok(()))
        })
        .await
    }
}
