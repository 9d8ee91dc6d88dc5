//! pymilvus 1.1.2's HTTP handler against the simulator (`tests/pymilvus_client.py`).
//! The test fails, not skips, when the test virtualenv is missing.

mod support;

use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn pymilvus_http_client_round_trip() {
    let python = test_support::venv_python();
    let dir = tempfile::tempdir().unwrap();
    let url = test_support::sqlite_url(dir.path(), "meta.sqlite");
    let sim = support::start(&url, &dir.path().join("s"), &[]).await;
    let port = sim.base.rsplit(':').next().unwrap().to_string();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pymilvus_client.py");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .arg(port)
            .output()
            .expect("run python")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "pymilvus client failed:\n{}\n{}\nsimulator log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sim.log_text()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("all checks passed"));
}
