//! The backup store against a moto S3 server: multipart upload of a file larger than one
//! part (parts read from the file by offset), object metadata, streaming download with
//! BLAKE3, and the folder store. One test in its own binary: it sets the AWS credential
//! variables of this process before any thread starts.

mod common;

use milvus_tier::backup::store::{MIN_PART, Store};
use milvus_tier::config::BackupConfig;
use test_support::moto::{ACCESS_KEY, Moto, REGION, SECRET_KEY};

fn config(target: String, endpoint: Option<String>) -> BackupConfig {
    toml::from_str::<BackupConfig>(&format!(
        "target = \"{target}\"\nforce_path_style = true\nmax_attempts = 2\npart_concurrency = 2\n"
    ))
    .map(|mut c| {
        c.endpoint = endpoint;
        c.region = Some(REGION.into());
        c
    })
    .unwrap()
}

#[test]
fn multipart_upload_round_trips_and_folder_store_matches() {
    // SAFETY: set before any other thread of this test binary exists (single test).
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
        std::env::set_var(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        );
    }
    common::init();
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ep = moto.endpoint();
        common::s3::create_bucket(&ep, "store").await;
        let dir = tempfile::tempdir().unwrap();
        // Two full parts and a short third one.
        let size = 2 * MIN_PART + 12_345;
        let src = dir.path().join("big");
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let blake3 = blake3::hash(&data).to_hex().to_string();
        drop(data);

        let s3 = Store::open(&config("s3://store/pre/fix".into(), Some(ep.clone())))
            .await
            .unwrap();
        s3.check().await.unwrap();
        assert!(s3.head("big").await.unwrap().is_none());
        s3.put_file("big", &src, size, &blake3).await.unwrap();
        let info = s3.head("big").await.unwrap().unwrap();
        assert_eq!(info.size, size);
        assert_eq!(info.blake3.as_deref(), Some(blake3.as_str()));
        assert!(
            info.version.trim_matches('"').ends_with("-3"),
            "three parts: {}",
            info.version
        );
        let keys = common::s3::keys(&ep, "store", "").await;
        assert_eq!(keys, vec!["pre/fix/big".to_string()]);
        let back = dir.path().join("restored/big");
        let (n, sum) = s3.download("big", Some(&back)).await.unwrap();
        assert_eq!((n, sum.as_str()), (size, blake3.as_str()));
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
        assert!(s3.get_bytes("absent").await.unwrap().is_none());
        let err = s3.download("absent", None).await.unwrap_err().to_string();
        assert!(err.contains("s3://store/pre/fix/absent"), "{err}");

        let missing = Store::open(&config("s3://no-such-bucket".into(), Some(ep.clone())))
            .await
            .unwrap();
        let err = missing.check().await.unwrap_err().to_string();
        assert!(
            err.contains("bucket `no-such-bucket` does not exist"),
            "{err}"
        );

        let folder = dir.path().join("folder");
        let local = Store::open(&config(format!("file://{}", folder.display()), None))
            .await
            .unwrap();
        local.check().await.unwrap();
        local
            .put_file("a/b/big", &src, size, &blake3)
            .await
            .unwrap();
        assert_eq!(local.head("a/b/big").await.unwrap().unwrap().size, size);
        assert_eq!(local.download("a/b/big", None).await.unwrap().1, blake3);
        let leftovers: Vec<_> = std::fs::read_dir(folder.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("big")],
            "no temporary files left"
        );
    });
}
