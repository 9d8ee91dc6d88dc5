//! The S3 server's own limit: `tier s3-limit put|get`, a trivial client (no hashing, no
//! checksums, no writes to disk) that PUTs a folder's files (multipart above one part, parts
//! read from the page cache) or GETs a prefix's objects in ranges into nothing,
//! `LIMIT_STREAMS` requests in flight.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;

/// Requests in flight, across files (milvus-tier: 8 parts per file, 4 files at once).
pub(crate) const LIMIT_STREAMS: usize = 16;
/// Part size of the PUTs (milvus-tier's for files under 72 GB).
const PART: u64 = 8 << 20;
/// Range length of the GETs (milvus-tier's).
const RANGE: u64 = 16 << 20;

fn client(endpoint: &str) -> Client {
    // The SDK's own HTTP client is not built in (one crypto library): the same client as
    // milvus-tier's, so the limit measures the server, not another HTTP stack.
    let conf = aws_sdk_s3::Config::builder()
        .http_client(milvus_tier::aws::https_client())
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(test_support::moto::REGION))
        .credentials_provider(Credentials::new(
            test_support::moto::ACCESS_KEY,
            test_support::moto::SECRET_KEY,
            None,
            None,
            "bench",
        ))
        .force_path_style(true)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    Client::from_conf(conf)
}

fn files_under(root: &Path) -> Vec<(String, PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(root).expect("under root").to_owned();
                out.push((rel.display().to_string(), e.path(), m.len()));
            }
        }
    }
    out
}

/// `s3-limit put ENDPOINT BUCKET PREFIX DIR` or `s3-limit get ENDPOINT BUCKET PREFIX`.
pub(crate) fn s3_limit(argv: &[String]) {
    let (op, endpoint, bucket, prefix) = (&argv[0], &argv[1], &argv[2], &argv[3]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let c = client(endpoint);
    rt.block_on(async {
        match op.as_str() {
            "put" => put(&c, bucket, prefix, Path::new(&argv[4])).await,
            "get" => get(&c, bucket, prefix).await,
            other => panic!("s3-limit {other}: put or get"),
        }
    });
}

async fn put(c: &Client, bucket: &str, prefix: &str, dir: &Path) {
    // Every part of every file, in one queue; uploads are created first, completed last.
    // Files up to one part go in one PUT each (as milvus-tier does), first.
    let (small, big): (Vec<_>, Vec<_>) = files_under(dir)
        .into_iter()
        .partition(|(_, _, size)| *size <= PART);
    futures::stream::iter(small)
        .for_each_concurrent(LIMIT_STREAMS, |(rel, path, _)| async move {
            let body = tokio::task::spawn_blocking(move || std::fs::read(path).expect("read"))
                .await
                .expect("read task");
            c.put_object()
                .bucket(bucket)
                .key(format!("{prefix}/{rel}"))
                .body(ByteStream::from(body))
                .send()
                .await
                .expect("put");
        })
        .await;
    let mut uploads = Vec::new();
    for (rel, path, size) in big {
        let key = format!("{prefix}/{rel}");
        let id = c
            .create_multipart_upload()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("create multipart upload")
            .upload_id
            .expect("upload id");
        uploads.push((key, id, path, size));
    }
    let parts: Vec<(usize, i32, u64, u64)> = uploads
        .iter()
        .enumerate()
        .flat_map(|(u, (_, _, _, size))| {
            (0..size.div_ceil(PART))
                .map(move |i| (u, i as i32 + 1, i * PART, PART.min(size - i * PART)))
        })
        .collect();
    let done: Vec<(usize, CompletedPart)> = futures::stream::iter(parts)
        .map(|(u, number, offset, len)| {
            let (key, id, path, _) = &uploads[u];
            async move {
                let path = path.clone();
                let body = tokio::task::spawn_blocking(move || {
                    let f = std::fs::File::open(path).expect("open");
                    let mut buf = vec![0u8; len as usize];
                    f.read_exact_at(&mut buf, offset).expect("read");
                    buf
                })
                .await
                .expect("read task");
                let out = c
                    .upload_part()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .part_number(number)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .expect("upload part");
                let part = CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build();
                (u, part)
            }
        })
        .buffer_unordered(LIMIT_STREAMS)
        .collect()
        .await;
    futures::stream::iter(uploads.iter().enumerate())
        .for_each_concurrent(LIMIT_STREAMS, |(u, (key, id, _, _))| {
            let mut mine: Vec<CompletedPart> = done
                .iter()
                .filter(|(x, _)| *x == u)
                .map(|(_, p)| p.clone())
                .collect();
            mine.sort_by_key(|p| p.part_number);
            async move {
                c.complete_multipart_upload()
                    .bucket(bucket)
                    .key(key)
                    .upload_id(id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(mine))
                            .build(),
                    )
                    .send()
                    .await
                    .expect("complete multipart upload");
            }
        })
        .await;
}

async fn get(c: &Client, bucket: &str, prefix: &str) {
    let objects: Vec<(String, u64)> = c
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{prefix}/"))
        .into_paginator()
        .send()
        .try_collect()
        .await
        .expect("list")
        .into_iter()
        .flat_map(|page| page.contents.unwrap_or_default())
        .map(|o| {
            (
                o.key.expect("key"),
                o.size.expect("size").try_into().expect("size"),
            )
        })
        .collect();
    assert!(!objects.is_empty(), "no objects under {prefix}/");
    let ranges: Vec<(String, u64, u64)> = objects
        .iter()
        .flat_map(|(key, size)| {
            (0..size.div_ceil(RANGE))
                .map(move |i| (key.clone(), i * RANGE, ((i + 1) * RANGE).min(*size) - 1))
        })
        .collect();
    futures::stream::iter(ranges)
        .for_each_concurrent(LIMIT_STREAMS, |(key, start, end)| async move {
            let out = c
                .get_object()
                .bucket(bucket)
                .key(&key)
                .range(format!("bytes={start}-{end}"))
                .send()
                .await
                .expect("get");
            let mut body = out.body;
            while let Some(chunk) = body.try_next().await.expect("body") {
                std::hint::black_box(chunk);
            }
        })
        .await;
}
