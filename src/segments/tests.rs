//! Copy, verify, filter, bandwidth and digest tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::throttle::sim::SimClock;
use super::*;

/// Deterministic pseudo-random bytes.
pub(super) fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Write a segment folder with the given files.
pub(super) fn write_seg(root: &Path, seg: &SegmentRef, files: &[(&str, Vec<u8>)]) {
    let dir = segment_dir(root, seg);
    fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

/// A typical Milvus segment: vectors, ids, deletions, bloom filter, an index file.
pub(super) fn milvus_files(seed: u64, vec_len: usize) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("1001.rv", data(vec_len, seed)),
        ("1001.uid", data(vec_len / 16 + 3, seed + 1)),
        ("deleted_docs", data(17, seed + 2)),
        ("bloom_filter", data(4099, seed + 3)),
        ("1002", data(vec_len / 2 + 5, seed + 4)),
    ]
}

pub(super) fn three_segments() -> Vec<SegmentRef> {
    vec![
        SegmentRef::new("day_a", "1611000000000001"),
        SegmentRef::new("day_a", "1611000000000002"),
        SegmentRef::new("day_b", "1611000000000003"),
    ]
}

/// Source root with [`three_segments`], `vec_len` bytes per vector file.
pub(super) fn source(vec_len: usize) -> (tempfile::TempDir, Vec<SegmentRef>) {
    let dir = tempfile::tempdir().unwrap();
    let segs = three_segments();
    for (i, seg) in segs.iter().enumerate() {
        write_seg(dir.path(), seg, &milvus_files(i as u64 * 10, vec_len));
    }
    (dir, segs)
}

pub(super) fn opts() -> CopyOptions {
    CopyOptions {
        concurrency: 4,
        ..CopyOptions::default()
    }
}

/// Every (relative path, bytes) under `root`, sorted.
pub(super) fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), Vec::new()));
                walk(root, &p, out);
            } else {
                let bytes = fs::read(&p).unwrap();
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn copies_three_segments_byte_identical() {
    let (src, segs) = source(100_000);
    let dst = tempfile::tempdir().unwrap();
    let o = CopyOptions {
        fsync: true,
        progress: None,
        ..opts()
    };
    let report = copy_segments(src.path(), dst.path(), &segs, &o)
        .await
        .unwrap();

    assert_eq!(tree(src.path()), tree(dst.path()), "same layout and bytes");
    assert!(
        dst.path()
            .join("db/tables/day_a/1611000000000002/1002")
            .is_file()
    );
    assert_eq!(report.segments_copied, 3);
    assert_eq!(report.segments_skipped, 0);
    assert_eq!(report.bytes_skipped, 0);
    assert_eq!(report.files.len(), 15);
    let mut sorted = report.files.clone();
    sorted.sort();
    assert_eq!(sorted, report.files, "files sorted");
    let mut total = 0;
    for f in &report.files {
        let seg = SegmentRef::new(&f.table_id, &f.segment_id);
        let bytes = fs::read(segment_dir(dst.path(), &seg).join(&f.name)).unwrap();
        assert_eq!(f.size, bytes.len() as u64);
        assert_eq!(f.blake3, blake3::hash(&bytes).to_hex().to_string());
        total += f.size;
    }
    assert_eq!(report.bytes_copied, total);
}

#[tokio::test]
async fn verify_rerun_skips_identical_segments() {
    let (src, segs) = source(20_000);
    let dst = tempfile::tempdir().unwrap();
    let first = copy_segments(src.path(), dst.path(), &segs[..2], &opts())
        .await
        .unwrap();
    assert_eq!(first.segments_copied, 2);

    let second = copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap();
    assert_eq!(second.segments_skipped, 2);
    assert_eq!(second.segments_copied, 1);
    assert_eq!(second.bytes_skipped, first.bytes_copied);
    assert_eq!(second.files.len(), 15, "skipped segments are reported too");
    assert_eq!(
        combined_digest(&second.files),
        combined_digest(&digest_segments(dst.path(), &segs, None, 2).await.unwrap())
    );
    assert_eq!(tree(src.path()), tree(dst.path()));
}

#[tokio::test]
async fn verify_detects_corruption_and_replace_recopies() {
    let (src, segs) = source(20_000);
    let dst = tempfile::tempdir().unwrap();
    copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap();
    let folder = segment_dir(dst.path(), &segs[1]);
    let bad = folder.join("1001.rv");
    let mut bytes = fs::read(&bad).unwrap();
    bytes[12_345] ^= 0x40;
    fs::write(&bad, &bytes).unwrap();

    let err = copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap_err();
    match &err {
        CopyError::Conflict { path, detail } => {
            assert_eq!(path, &folder);
            assert!(detail.contains("1001.rv"), "{detail}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&folder.display().to_string()) && msg.contains("1001.rv"),
        "{msg}"
    );

    let o = CopyOptions {
        existing: Existing::Replace,
        ..opts()
    };
    let report = copy_segments(src.path(), dst.path(), &segs, &o)
        .await
        .unwrap();
    assert_eq!(report.segments_copied, 3);
    assert_eq!(tree(src.path()), tree(dst.path()), "no .old or .tmp left");
}

#[tokio::test]
async fn verify_reports_missing_extra_and_resized_files() {
    let (src, segs) = source(4_000);
    let dst = tempfile::tempdir().unwrap();
    let seg = &segs[..1];
    let folder = segment_dir(dst.path(), &segs[0]);
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("bloom_filter", |d| {
            fs::remove_file(d.join("bloom_filter")).unwrap()
        }),
        ("zzz_extra", |d| {
            fs::write(d.join("zzz_extra"), b"x").unwrap()
        }),
        ("deleted_docs", |d| {
            fs::write(d.join("deleted_docs"), b"short").unwrap()
        }),
    ];
    for (name, damage) in cases {
        let o = CopyOptions {
            existing: Existing::Replace,
            ..opts()
        };
        copy_segments(src.path(), dst.path(), seg, &o)
            .await
            .unwrap();
        damage(&folder);
        match copy_segments(src.path(), dst.path(), seg, &opts()).await {
            Err(CopyError::Conflict { path, detail }) => {
                assert_eq!(path, folder);
                assert!(detail.contains(name), "{name}: {detail}");
            }
            other => panic!("{name}: expected a conflict, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn stale_tmp_folder_is_cleaned() {
    let (src, segs) = source(10_000);
    let dst = tempfile::tempdir().unwrap();
    let table = dst.path().join("db/tables/day_a");
    let stale = table.join(".1611000000000001.tmp");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("1001.rv"), b"half written").unwrap();
    fs::write(table.join(".1611000000000002.old"), b"leftover").unwrap();

    let report = copy_segments(src.path(), dst.path(), &segs, &opts())
        .await
        .unwrap();
    assert_eq!(report.segments_copied, 3);
    assert_eq!(tree(src.path()), tree(dst.path()));
}

#[tokio::test]
async fn include_filter_skips_files() {
    let (src, segs) = source(10_000);
    let dst = tempfile::tempdir().unwrap();
    let with_ext: IncludeFn = Arc::new(|name: &str| name.contains('.'));
    let o = CopyOptions {
        include: Some(with_ext),
        ..opts()
    };
    let report = copy_segments(src.path(), dst.path(), &segs, &o)
        .await
        .unwrap();
    assert_eq!(report.files.len(), 6);
    for seg in &segs {
        let names: Vec<String> = list_segment_files(dst.path(), seg)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["1001.rv", "1001.uid"]);
    }
    // The same filter verifies the filtered copy as identical.
    let again = copy_segments(src.path(), dst.path(), &segs, &o)
        .await
        .unwrap();
    assert_eq!(again.segments_skipped, 3);
    let filter = |name: &str| name.contains('.');
    let digests = digest_segments(dst.path(), &segs, Some(&filter), 1)
        .await
        .unwrap();
    assert_eq!(digests, report.files);
}

/// 8 MiB in 4 files over 2 segments.
fn eight_mib() -> (tempfile::TempDir, Vec<SegmentRef>) {
    let dir = tempfile::tempdir().unwrap();
    let segs = vec![SegmentRef::new("t", "1"), SegmentRef::new("t", "2")];
    for (i, seg) in segs.iter().enumerate() {
        let i = i as u64;
        let files = [("1.rv", data(2 << 20, i)), ("2.rv", data(2 << 20, i + 7))];
        write_seg(dir.path(), seg, &files);
    }
    (dir, segs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_within_ten_percent() {
    let (src, segs) = eight_mib();
    let dst = tempfile::tempdir().unwrap();
    let o = CopyOptions {
        bandwidth_bytes_per_s: Some(4 << 20),
        ..opts()
    };
    // The cap keeps time on a simulated clock: what it makes the readers wait is the time
    // the copy would take, however loaded the machine is.
    let clock = Arc::new(SimClock::default());
    let report = super::copy::copy_segments_on(src.path(), dst.path(), &segs, &o, clock.clone())
        .await
        .unwrap();
    assert_eq!(report.bytes_copied, 8 << 20);
    let secs = clock.elapsed().as_secs_f64();
    assert!(
        (1.8..=2.2).contains(&secs),
        "8 MiB at 4 MiB/s waited {secs:.3} s"
    );
    // In steps of about 1/16 s (a 256 KiB chunk), not one big wait.
    let sleeps = clock.sleeps();
    assert!(sleeps.len() >= 16, "{} sleeps", sleeps.len());
    assert!(sleeps.iter().all(|d| d.as_secs_f64() <= 0.5), "{sleeps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncapped_copy_never_waits() {
    let (src, segs) = eight_mib();
    let dst = tempfile::tempdir().unwrap();
    let clock = Arc::new(SimClock::default());
    let report =
        super::copy::copy_segments_on(src.path(), dst.path(), &segs, &opts(), clock.clone())
            .await
            .unwrap();
    assert_eq!(report.bytes_copied, 8 << 20);
    assert!(clock.sleeps().is_empty(), "an uncapped copy asked to wait");
    assert_eq!(clock.elapsed(), std::time::Duration::ZERO);
}

#[tokio::test]
async fn duplicate_segments_are_copied_once() {
    let (src, segs) = source(1_000);
    let dst = tempfile::tempdir().unwrap();
    let twice = [segs.clone(), segs.clone()].concat();
    let report = copy_segments(src.path(), dst.path(), &twice, &opts())
        .await
        .unwrap();
    assert_eq!(report.segments_copied, 3);
    assert_eq!(report.files.len(), 15);
}

#[test]
fn combined_digest_is_order_independent_and_byte_sensitive() {
    let f = |seg: &str, name: &str, bytes: &[u8]| FileDigest {
        table_id: "t".into(),
        segment_id: seg.into(),
        name: name.into(),
        size: bytes.len() as u64,
        blake3: blake3::hash(bytes).to_hex().to_string(),
    };
    let a = vec![
        f("1", "1.rv", b"abc"),
        f("1", "bloom_filter", b"xyz"),
        f("2", "9", b"q"),
    ];
    let mut b = a.clone();
    b.reverse();
    assert_eq!(combined_digest(&a), combined_digest(&b));
    assert_eq!(combined_digest(&a).len(), 64);

    let mut c = a.clone();
    c[1] = f("1", "bloom_filter", b"xyw");
    assert_ne!(combined_digest(&a), combined_digest(&c));
    assert_ne!(combined_digest(&a), combined_digest(&a[..2]));
    assert_eq!(combined_digest(&[]), blake3::hash(b"").to_hex().to_string());
}

#[test]
fn list_segment_files_is_sorted_with_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentRef::new("t", "5");
    write_seg(
        dir.path(),
        &seg,
        &[("b", vec![0; 3]), ("a.rv", vec![0; 10]), ("1", vec![])],
    );
    let got = list_segment_files(dir.path(), &seg).unwrap();
    assert_eq!(
        got,
        [("1".to_string(), 0), ("a.rv".into(), 10), ("b".into(), 3)]
    );
    assert_eq!(
        segment_dir(Path::new("/s"), &seg),
        Path::new("/s/db/tables/t/5")
    );
}

#[test]
fn copy_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let o = opts();
    let fut = copy_segments(Path::new("/a"), Path::new("/b"), &[], &o);
    assert_send(&fut);
    let dig = digest_segments(Path::new("/a"), &[], None, 1);
    assert_send(&dig);
}

#[test]
fn serde_round_trip() {
    let seg = SegmentRef::new("t", "1");
    let json = serde_json::to_string(&seg).unwrap();
    assert_eq!(json, r#"{"table_id":"t","segment_id":"1"}"#);
    assert_eq!(serde_json::from_str::<SegmentRef>(&json).unwrap(), seg);
}

#[tokio::test]
async fn prehashed_files_are_linked_with_their_recorded_digest() {
    use std::os::unix::fs::MetadataExt;
    // Source and destination on one file system, as restore's staging folder is.
    let root = tempfile::tempdir().unwrap();
    let (src, dst) = (root.path().join("staging"), root.path().join("long"));
    let seg = SegmentRef::new("day_a", "1611000000000001");
    write_seg(&src, &seg, &milvus_files(7, 50_000));
    let dir = segment_dir(&src, &seg);
    let rv = dir.join("1001.rv");
    let rv_hash = blake3::hash(&fs::read(&rv).unwrap());
    let rv_len = fs::metadata(&rv).unwrap().len();
    let mut pre = Prehashed::new();
    pre.insert(rv.clone(), (rv_len, rv_hash));
    let o = CopyOptions {
        fsync: true,
        prehashed: Some(Arc::new(pre.clone())),
        ..opts()
    };
    let report = copy_segments(&src, &dst, std::slice::from_ref(&seg), &o)
        .await
        .unwrap();
    let out = segment_dir(&dst, &seg);
    // Linked: the same inode; the others are copies.
    assert_eq!(
        fs::metadata(out.join("1001.rv")).unwrap().ino(),
        fs::metadata(&rv).unwrap().ino()
    );
    assert_ne!(
        fs::metadata(out.join("1001.uid")).unwrap().ino(),
        fs::metadata(dir.join("1001.uid")).unwrap().ino()
    );
    assert_eq!(tree(&out), tree(&dir));
    let rv_digest = report.files.iter().find(|f| f.name == "1001.rv").unwrap();
    assert_eq!(
        (rv_digest.size, rv_digest.blake3.as_str()),
        (rv_len, rv_hash.to_hex().as_str())
    );
    assert_eq!(
        report.bytes_copied,
        tree(&dir).iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );

    // A prehashed file whose size is not the recorded one is refused, and nothing lands.
    let dst2 = root.path().join("long2");
    pre.insert(rv.clone(), (rv_len + 1, rv_hash));
    let o = CopyOptions {
        prehashed: Some(Arc::new(pre)),
        ..o
    };
    let err = copy_segments(&src, &dst2, std::slice::from_ref(&seg), &o)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CopyError::SizeChanged { path, .. } if *path == rv),
        "{err}"
    );
    assert!(!segment_dir(&dst2, &seg).exists());
}
