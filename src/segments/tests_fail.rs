//! Failure tests: missing, unreadable, shrinking sources, unwritable destinations,
//! crashes at the failpoints.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::throttle::sim::SimClock;

use super::fsio::{Shared, stream};
use super::tests::{data, opts, source, tree, write_seg};
use super::*;

/// Nothing under the destination's table folders except complete, final segment folders
/// named in `complete`.
fn assert_only_complete(dst: &Path, complete: &[&SegmentRef]) {
    let tables = dst.join("db/tables");
    let Ok(rd) = fs::read_dir(&tables) else {
        assert!(complete.is_empty());
        return;
    };
    for table in rd {
        let table = table.unwrap().path();
        for e in fs::read_dir(&table).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            let table_id = table.file_name().unwrap().to_str().unwrap();
            let seg = SegmentRef::new(table_id, name.as_str());
            assert!(
                complete.contains(&&seg),
                "unexpected {}",
                table.join(&name).display()
            );
        }
    }
}

#[tokio::test]
async fn missing_source_segment_names_path() {
    let (src, mut segs) = source(1_000);
    segs.push(SegmentRef::new("day_a", "999"));
    let dst = tempfile::tempdir().unwrap();
    let err = copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap_err();
    let want = segment_dir(src.path(), &segs[3]);
    assert!(
        matches!(&err, CopyError::MissingSegment { path } if *path == want),
        "{err:?}"
    );
    assert!(err.to_string().contains(&want.display().to_string()));
    let err = list_segment_files(src.path(), &segs[3]).unwrap_err();
    assert!(matches!(err, CopyError::MissingSegment { .. }));
    let err = digest_segments(src.path(), &segs, None, 2)
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::MissingSegment { .. }));
}

#[tokio::test]
async fn invalid_segment_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (t, s) in [("..", "1"), ("t", "a/b"), ("t", ""), ("t", ".1.tmp")] {
        let seg = SegmentRef::new(t, s);
        let err = copy_segments(dir.path(), dir.path(), std::slice::from_ref(&seg), &opts())
            .await
            .unwrap_err();
        assert!(
            matches!(err, CopyError::InvalidSegment { .. }),
            "{t}/{s}: {err:?}"
        );
        assert!(list_segment_files(dir.path(), &seg).is_err());
    }
}

#[tokio::test]
async fn unreadable_source_names_file() {
    let (src, segs) = source(1_000);
    let dangling = segment_dir(src.path(), &segs[0]).join("1003.rv");
    std::os::unix::fs::symlink("/nonexistent/file", &dangling).unwrap();
    let sub = segment_dir(src.path(), &segs[1]).join("subdir");
    fs::create_dir(&sub).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let o = CopyOptions {
        concurrency: 1,
        ..opts()
    };

    let err = copy_segments(src.path(), dst.path(), &segs[..1], &o)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&dangling.display().to_string()),
        "{err}"
    );
    let err = copy_segments(src.path(), dst.path(), &segs[1..2], &o)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::UnsupportedEntry { path, .. } if *path == sub),
        "{err}"
    );
    assert_only_complete(dst.path(), &[]);
}

#[test]
fn short_or_growing_source_is_a_size_error() {
    let shared = Shared::new(None, false);
    let src = Path::new("/src/1001.rv");
    let mut out = Vec::new();
    let sink = fsio::Sink {
        writer: &mut out,
        path: Path::new("/dst/1001.rv"),
    };
    let err = stream(
        &mut Cursor::new(vec![7u8; 100]),
        src,
        150,
        Some(sink),
        &shared,
        true,
    )
    .unwrap_err();
    assert!(
        matches!(&err, CopyError::SizeChanged { path, expected: 150, actual: 100 } if path == src),
        "{err:?}"
    );
    assert!(err.to_string().contains("/src/1001.rv"));
    let err = stream(
        &mut Cursor::new(vec![7u8; 200]),
        src,
        150,
        None,
        &shared,
        true,
    )
    .unwrap_err();
    assert!(
        matches!(err, CopyError::SizeChanged { expected: 150, .. }),
        "{err:?}"
    );
    let (n, h) = stream(
        &mut Cursor::new(vec![7u8; 150]),
        src,
        150,
        None,
        &shared,
        true,
    )
    .unwrap();
    assert_eq!((n, h), (150, blake3::hash(&[7u8; 150])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_truncated_mid_copy_fails_and_cleans_up() {
    let src = tempfile::tempdir().unwrap();
    let seg = SegmentRef::new("t", "1");
    let big_len = 1 << 20;
    write_seg(
        src.path(),
        &seg,
        &[("1.rv", data(big_len, 1)), ("1.uid", data(10, 2))],
    );
    let big = segment_dir(src.path(), &seg).join("1.rv");
    let dst = tempfile::tempdir().unwrap();
    // 1 MiB at 1 MiB/s is read in 64 KiB chunks with a (simulated) wait of 1/16 s after
    // each: the file is cut to 1000 bytes during the first such wait, once 64 KiB of it
    // were read (the 10-byte file waits far less).
    let o = CopyOptions {
        bandwidth_bytes_per_s: Some(1 << 20),
        fsync: true,
        progress: None,
        ..opts()
    };
    let cut = {
        let big = big.clone();
        let done = std::sync::atomic::AtomicBool::new(false);
        move |wait: Duration| {
            if wait >= Duration::from_millis(60) && !done.swap(true, Ordering::SeqCst) {
                fs::OpenOptions::new()
                    .write(true)
                    .open(&big)
                    .unwrap()
                    .set_len(1000)
                    .unwrap();
            }
        }
    };
    let clock = Arc::new(SimClock::with_hook(cut));
    let err = super::copy::copy_segments_on(src.path(), dst.path(), &[seg], &o, clock.clone())
        .await
        .unwrap_err();
    assert!(!clock.sleeps().is_empty(), "the copy never waited");
    assert_eq!(fs::metadata(&big).unwrap().len(), 1000, "the file was cut");
    assert!(
        matches!(&err, CopyError::SizeChanged { path, expected, .. } if *path == big && *expected == big_len as u64),
        "{err:?}"
    );
    assert_only_complete(dst.path(), &[]);
}

#[tokio::test]
async fn unwritable_destination_names_path_and_leaves_nothing() {
    let (src, segs) = source(1_000);
    let scratch = tempfile::tempdir().unwrap();
    // A destination root under a regular file: ENOTDIR, even for root.
    let file = scratch.path().join("plain-file");
    fs::write(&file, b"not a folder").unwrap();
    let dst = file.join("storage");
    let err = copy_segments(src.path(), &dst, &segs, &opts())
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );

    // A read-only tables folder, when permissions are enforced (not for root).
    let dst = scratch.path().join("ro");
    let tables = dst.join("db/tables");
    fs::create_dir_all(&tables).unwrap();
    fs::set_permissions(&tables, fs::Permissions::from_mode(0o500)).unwrap();
    let enforced = fs::create_dir(tables.join("probe")).is_err();
    if enforced {
        let err = copy_segments(src.path(), &dst, &segs, &opts())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(&tables.display().to_string()),
            "{err}"
        );
    }
    fs::set_permissions(&tables, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(!segment_dir(&dst, &segs[0]).exists());
}

/// Child-process body for the crash tests; a no-op in a normal test run.
#[tokio::test]
async fn crash_child() {
    let Some(base) = std::env::var_os("MILVUS_TIER_TEST_CRASH_BASE") else {
        return;
    };
    let base = Path::new(&base);
    let o = CopyOptions {
        fsync: true,
        progress: None,
        concurrency: 1,
        ..opts()
    };
    let segs = super::tests::three_segments();
    copy_segments(&base.join("src"), &base.join("dst"), &segs, &o)
        .await
        .unwrap();
    // Reached only if the failpoint did not fire.
    std::process::exit(0);
}

/// Crash a child copy at `point`, check what is left, then rerun to completion.
async fn crash_then_resume(point: &str) {
    let (src, segs) = source(5_000);
    let base = src.path();
    fs::rename(base.join("db"), base.join("tmp-db")).unwrap();
    fs::create_dir(base.join("src")).unwrap();
    fs::rename(base.join("tmp-db"), base.join("src/db")).unwrap();
    let (src_root, dst_root) = (base.join("src"), base.join("dst"));

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "segments::tests_fail::crash_child",
            "--exact",
            "--nocapture",
        ])
        .env("MILVUS_TIER_TEST_CRASH_BASE", base)
        .env(crate::failpoint::ENV_VAR, point)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(6),
        "{point}: child {:?}",
        out.status
    );
    // Segments are copied one at a time in order: the first crashed before its rename.
    let table = dst_root.join("db/tables/day_a");
    assert!(table.join(".1611000000000001.tmp").is_dir(), "{point}");
    let names: Vec<_> = fs::read_dir(&table)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [".1611000000000001.tmp"],
        "{point}: nothing under a final name"
    );
    assert!(!dst_root.join("db/tables/day_b").exists(), "{point}");

    let report = copy_segments(&src_root, &dst_root, &segs, &opts())
        .await
        .unwrap();
    assert_eq!(report.segments_copied, 3, "{point}");
    assert_eq!(tree(&src_root), tree(&dst_root), "{point}");
}

#[tokio::test]
async fn crash_after_file_leaves_no_final_folder_and_rerun_completes() {
    crash_then_resume("segments.after_file").await;
}

#[tokio::test]
async fn crash_before_rename_leaves_no_final_folder_and_rerun_completes() {
    crash_then_resume("segments.before_rename").await;
}

#[tokio::test]
async fn symbolic_links_are_refused_never_followed() {
    let (src, segs) = source(1_000);
    let outside = src.path().join("outside");
    fs::write(&outside, b"not from any segment").unwrap();
    let dir = segment_dir(src.path(), &segs[0]);
    let bloom = dir.join("bloom_filter");
    fs::remove_file(&bloom).unwrap();
    std::os::unix::fs::symlink(&outside, &bloom).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let err = copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::UnsupportedEntry { path, .. } if *path == bloom),
        "{err:?}"
    );
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        !tree(dst.path())
            .iter()
            .any(|(_, bytes)| bytes.as_slice() == b"not from any segment"),
        "the linked file's bytes were copied"
    );
    assert!(
        !tree(dst.path())
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains(&segs[0].segment_id)),
        "the segment holding the link reached the destination"
    );
    let err = digest_segments(src.path(), &segs, None, 2)
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::UnsupportedEntry { .. }), "{err:?}");
    // A segment folder that is itself a link is refused as well.
    fs::remove_file(&bloom).unwrap();
    fs::write(&bloom, b"bloom").unwrap();
    let real = dir.with_extension("real");
    fs::rename(&dir, &real).unwrap();
    std::os::unix::fs::symlink(&real, &dir).unwrap();
    let err = list_segment_files(src.path(), &segs[0]).unwrap_err();
    assert!(
        matches!(&err, CopyError::InvalidSegment { path, .. } if *path == dir),
        "{err:?}"
    );
}

#[test]
fn open_refuses_a_link_put_in_place_after_the_listing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::write(&target, b"outside").unwrap();
    let link = dir.path().join("1001.rv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let shared = Shared::new(None, false);
    let err = super::fsio::hash_file(&link, &shared, false).unwrap_err();
    assert!(
        matches!(&err, CopyError::UnsupportedEntry { path, .. } if *path == link),
        "{err:?}"
    );
}
