//! Reading a Batch job's JSON reports back for the rows and bytes of its notice: from S3
//! (moto) and from a folder. Alone in its test binary because it sets AWS credentials in
//! the process environment, which the S3 client's default chain reads.

use crate::common;

use test_support::Moto;

const DAY: &str = "2026-11-20";

fn day_report(rows: i64, bytes: u64) -> String {
    serde_json::json!({"days": [{"day": DAY, "outcome": "migrated", "plan": {"rows": rows},
        "steps": [{"step": "stage", "bytes": 1}, {"step": "publish", "bytes": bytes}]}]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn job_reports_are_read_back_from_s3_and_files_for_rows_and_bytes() {
    use milvus_tier::batch::report::{Totals, job_totals, report_name};
    common::init();
    // An array job of two children, reports in S3 (moto) under the backup prefix.
    let moto = Moto::start();
    let s3cfg: milvus_tier::config::BackupConfig = toml::from_str(&format!(
        "target = \"s3://backups/long-term\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\nforce_path_style = true\n",
        moto.endpoint()
    ))
    .unwrap();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(milvus_tier::aws::https_client())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .endpoint_url(moto.endpoint())
        .load()
        .await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("backups").send().await.unwrap();
    for (i, rows) in [(0, 3000), (1, 4000)] {
        s3.put_object()
            .bucket("backups")
            .key(format!(
                "long-term/reports/{}",
                report_name(&format!("j-1:{i}"))
            ))
            .body(day_report(rows, 100 + i as u64).into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    // SAFETY: the only test of this binary; no other thread reads the environment yet.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
    let t = job_totals(
        "s3://backups/long-term/reports",
        Some(&s3cfg),
        "j-1",
        Some(2),
    )
    .await
    .unwrap();
    assert_eq!(
        t,
        Totals {
            rows: 7000,
            bytes: 201
        }
    );
    let e = job_totals(
        "s3://backups/long-term/reports",
        Some(&s3cfg),
        "j-1",
        Some(3),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string().contains("milvus-tier-report-j-1-2.json"),
        "{e}"
    );

    // A single job, report in a folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(report_name("j-2")),
        day_report(6000, 432_000),
    )
    .unwrap();
    let target = format!("file://{}", dir.path().display());
    let t = job_totals(&target, None, "j-2", None).await.unwrap();
    assert_eq!(
        t,
        Totals {
            rows: 6000,
            bytes: 432_000
        }
    );
}
