//! Upload one file to a backup target the way the backup step does (hash, then stream the
//! file: one PUT, or a multipart upload with parts read by offset), for measuring time and
//! peak memory on large files:
//!
//!     cargo build --release --example backup_upload
//!     /usr/bin/time -v target/release/examples/backup_upload s3://bucket/prefix FILE [ENDPOINT]
//!
//! Credentials and region come from the standard AWS chain (e.g. AWS_ACCESS_KEY_ID,
//! AWS_SECRET_ACCESS_KEY, AWS_REGION).

use std::path::PathBuf;
use std::time::Instant;

use milvus_tier::backup::store::{Store, hash_file, part_size};
use milvus_tier::config::BackupConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    milvus_tier::init_crypto();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, file, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: backup_upload TARGET FILE [ENDPOINT]");
    };
    let mut cfg: BackupConfig =
        toml::from_str(&format!("target = \"{target}\"\nforce_path_style = true\n"))?;
    cfg.endpoint = rest.first().cloned();
    let path = PathBuf::from(file);
    let t = Instant::now();
    let (size, blake3) = hash_file(&path).await?;
    let hashed = t.elapsed().as_secs_f64();
    let store = Store::open(&cfg).await?;
    store.check().await?;
    let key = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let t = Instant::now();
    store.put_file(&key, &path, size, &blake3).await?;
    let sent = t.elapsed().as_secs_f64();
    let info = store.head(&key).await?;
    println!(
        "{size} bytes, part size {} bytes ({} parts), hashed in {hashed:.1}s, uploaded in {sent:.1}s, object {:?}",
        part_size(size),
        size.div_ceil(part_size(size)),
        info
    );
    Ok(())
}
