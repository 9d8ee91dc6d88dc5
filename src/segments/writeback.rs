//! Early writeback: files that will be synced have their dirty pages sent to disk while
//! they are still being written, so the closing fsync waits for the last few MiB instead of
//! the whole file, and writing overlaps with the disk instead of preceding it.

use std::fs::File;
use std::io::{self, Write};

/// Bytes written between two writeback requests.
pub(crate) const WRITEBACK_EVERY: u64 = 32 << 20;

/// Ask the kernel to start writing `len` bytes of `file` from `offset` to disk without
/// waiting for them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`; nothing elsewhere).
/// Best effort: durability still comes from the fsync that follows, so a failure is ignored.
pub(crate) fn start(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: the descriptor is open for the lifetime of `file`; the call only reads
        // its arguments.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Tracks how much of a file has been written and asks for writeback every
/// [`WRITEBACK_EVERY`] bytes.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    written: u64,
    requested: u64,
}

impl Progress {
    /// `n` more bytes of `file` are written (or in the page cache), contiguously from the
    /// start.
    pub(crate) fn advance(&mut self, file: &File, n: u64) {
        self.written += n;
        if self.written - self.requested >= WRITEBACK_EVERY {
            start(file, self.requested, self.written - self.requested);
            self.requested = self.written;
        }
    }
}

/// A file writer that requests writeback as it goes.
pub(crate) struct Writer<'a> {
    file: &'a mut File,
    progress: Progress,
}

impl<'a> Writer<'a> {
    /// Wrap `file`, positioned at its start.
    pub(crate) fn new(file: &'a mut File) -> Self {
        Writer {
            file,
            progress: Progress::default(),
        }
    }
}

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.progress.advance(self.file, n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
