//! `milvus-tier report upload`.

use std::path::PathBuf;

use milvus_tier::config::Config;
use milvus_tier::error::{Result, exit};

/// Arguments of `report upload`.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The JSON report (as `migrate --report FILE` writes it).
    pub file: PathBuf,
    /// `s3://bucket/key` or `file:///path`; ending in `/`, the file keeps its name. S3 is
    /// reached with `[backup]`'s endpoint, region and addressing when configured.
    #[arg(long)]
    pub to: String,
}

/// Upload the report; prints where it went.
pub async fn upload(config: &Config, args: &UploadArgs) -> Result<i32> {
    let dest = milvus_tier::report::upload(&args.file, &args.to, config.backup.as_ref()).await?;
    outln!("report {} uploaded to {dest}", args.file.display());
    Ok(exit::OK)
}
