//! The backup store against a moto S3 server: multipart upload of a file larger than one
//! part (parts read from the file by offset, the file hashed on the way and the upload
//! abandoned when it is not what was expected), object metadata, ranged download with
//! BLAKE3 (a range whose body breaks off is asked for again), and the folder store. One test in its own binary: it sets the AWS credential
//! variables of this process before any thread starts.

use crate::common;

use milvus_tier::backup::store::{MIN_PART, RANGE_LEN, Store};
use milvus_tier::config::BackupConfig;
use test_support::moto::{ACCESS_KEY, Moto, REGION, SECRET_KEY};
use test_support::proxy::FaultyProxy;

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

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
        // Ranged download: two ranges, hashed as they land.
        assert!(size > RANGE_LEN);
        let back = dir.path().join("restored/big");
        let (n, sum) = s3.download("big", &back, size).await.unwrap();
        assert_eq!((n, sum.as_str()), (size, blake3.as_str()));
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&src).unwrap());
        assert_eq!(s3.hash_object("big").await.unwrap(), (size, blake3.clone()));
        assert!(s3.get_bytes("absent").await.unwrap().is_none());
        let err = s3.hash_object("absent").await.unwrap_err().to_string();
        assert!(err.contains("s3://store/pre/fix/absent"), "{err}");
        let err = s3
            .download("absent", &dir.path().join("restored/absent"), 10)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://store/pre/fix/absent"), "{err}");
        // A connection that breaks off mid-body: that range is asked for again.
        let cut = FaultyProxy::truncating(moto.port(), 2);
        let via_cut = Store::open(&config("s3://store/pre/fix".into(), Some(cut.endpoint())))
            .await
            .unwrap();
        let again = dir.path().join("restored/again");
        assert_eq!(
            via_cut.download("big", &again, size).await.unwrap(),
            (size, blake3.clone())
        );
        assert!(cut.failed() > 0, "{} requests, none cut", cut.requests());
        assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&src).unwrap());
        std::fs::remove_file(&again).unwrap();
        // Every body cut short: an error naming the object once the attempts are spent,
        // and no file left behind.
        let dead = FaultyProxy::truncating(moto.port(), 1);
        let via_dead = Store::open(&config("s3://store/pre/fix".into(), Some(dead.endpoint())))
            .await
            .unwrap();
        let err = via_dead
            .download("big", &again, size)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("s3://store/pre/fix/big") && err.contains("read body"),
            "{err}"
        );
        assert_eq!(files_in(&dir.path().join("restored")), ["big"]);

        // A refusal (403 AccessDenied) is not retried, a download or an upload: one request
        // each, an error naming the object and the refusal, and no file left behind.
        s3.put_bytes("small", b"small object".to_vec())
            .await
            .unwrap();
        let denied = FaultyProxy::forbidding(moto.port(), 1);
        let via_denied = Store::open(&config(
            "s3://store/pre/fix".into(),
            Some(denied.endpoint()),
        ))
        .await
        .unwrap();
        let small = dir.path().join("restored/small");
        let err = via_denied.download("small", &small, 12).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("s3://store/pre/fix/small") && text.contains("403 AccessDenied"),
            "{text}"
        );
        assert_eq!(denied.requests(), 1);
        let one = dir.path().join("one");
        std::fs::write(&one, b"x").unwrap();
        let one_sum = blake3::hash(b"x").to_hex().to_string();
        let err = via_denied
            .put_file("one", &one, 1, &one_sum)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("403 AccessDenied"), "{err}");
        assert_eq!(denied.requests(), 2);
        assert_eq!(files_in(&dir.path().join("restored")), ["big"]);
        // Throttled on every request: tried `backup.max_attempts` (2) times.
        let slow = FaultyProxy::start(moto.port(), 1);
        let via_slow = Store::open(&config("s3://store/pre/fix".into(), Some(slow.endpoint())))
            .await
            .unwrap();
        let err = via_slow.download("small", &small, 12).await.unwrap_err();
        assert!(err.to_string().contains("503 SlowDown"), "{err}");
        assert_eq!(slow.requests(), 2);

        // An object of another size than expected is refused, and nothing is left.
        let short = dir.path().join("restored/short");
        let err = s3.download("big", &short, size - 1).await.unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(
            err.to_string().contains(&format!("has {size} bytes")),
            "{err}"
        );
        assert_eq!(files_in(&dir.path().join("restored")), ["big"]);
        // An empty object.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let empty_sum = blake3::hash(b"").to_hex().to_string();
        s3.put_file("empty", &empty, 0, &empty_sum).await.unwrap();
        let back_empty = dir.path().join("restored/empty");
        assert_eq!(
            s3.download("empty", &back_empty, 0).await.unwrap(),
            (0, empty_sum)
        );

        // A file that is not what publish recorded is not uploaded: the multipart upload is
        // abandoned before it completes, and a small file is not sent.
        let wrong = "0".repeat(64);
        for (k, path, n) in [("changed", &src, size), ("changed-small", &empty, 0)] {
            let err = s3.put_file(k, path, n, &wrong).await.unwrap_err();
            assert_eq!(err.exit_code(), 5, "{err}");
            assert!(
                err.to_string().contains(&path.display().to_string())
                    && err
                        .to_string()
                        .contains("refusing to back up a changed file"),
                "{err}"
            );
            assert!(s3.head(k).await.unwrap().is_none(), "{k} was stored");
        }

        let missing = Store::open(&config("s3://no-such-bucket".into(), Some(ep.clone())))
            .await
            .unwrap();
        let err = missing.check().await.unwrap_err().to_string();
        assert!(
            err.contains("bucket `no-such-bucket` does not exist"),
            "{err}"
        );
        // Every other request on a missing bucket: one short line naming the bucket and
        // S3's error code, not the SDK's dump of the response.
        let errs = [
            missing
                .get_bytes("2026-01-01/manifest.json")
                .await
                .unwrap_err(),
            missing
                .put_bytes("m.json", b"{}".to_vec())
                .await
                .unwrap_err(),
            missing.hash_object("big").await.unwrap_err(),
        ];
        for err in errs {
            let err = err.to_string();
            assert!(
                err.contains("s3://no-such-bucket/") && err.contains("NoSuchBucket"),
                "{err}"
            );
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.len() < 300, "{} bytes: {err}", err.len());
        }

        let folder = dir.path().join("folder");
        let local = Store::open(&config(format!("file://{}", folder.display()), None))
            .await
            .unwrap();
        let err = local.check().await.unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
        assert!(!folder.exists(), "the backup folder was created");
        std::fs::create_dir(&folder).unwrap();
        local.check().await.unwrap();
        local
            .put_file("a/b/big", &src, size, &blake3)
            .await
            .unwrap();
        assert_eq!(local.head("a/b/big").await.unwrap().unwrap().size, size);
        assert_eq!(local.hash_object("a/b/big").await.unwrap().1, blake3);
        let err = local
            .put_file("a/b/changed", &src, size, &wrong)
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        let back = dir.path().join("from-folder/big");
        assert_eq!(
            local.download("a/b/big", &back, size).await.unwrap(),
            (size, blake3.clone())
        );
        assert_eq!(
            files_in(&folder.join("a/b")),
            ["big"],
            "no temporary files left"
        );
    });
}
