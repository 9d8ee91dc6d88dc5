//! The exit codes, their kinds and what Batch does with them agree in three places: the
//! library's `ErrorKind`, the README's exit-code table and the job definition's
//! `retryStrategy`.

use milvus_tier::error::{Error, ErrorKind};
use serde_json::Value;

fn repo_file(rel: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Whether AWS Batch retries a container that exited with `code`: the first
/// `evaluateOnExit` entry whose `onExitCode` matches decides; none matching means retry.
fn batch_retries(def: &Value, code: i32) -> bool {
    let rules = def["retryStrategy"]["evaluateOnExit"]
        .as_array()
        .expect("retryStrategy.evaluateOnExit");
    assert!(
        rules.len() <= 5,
        "Batch accepts at most 5 evaluateOnExit entries"
    );
    assert!(
        def["retryStrategy"]["attempts"].as_i64().unwrap_or(1) > 1,
        "a retry strategy needs more than one attempt"
    );
    for r in rules {
        let Some(pattern) = r["onExitCode"].as_str() else {
            continue;
        };
        let matches = match pattern.strip_suffix('*') {
            Some(prefix) => code.to_string().starts_with(prefix),
            None => pattern == code.to_string(),
        };
        if matches {
            return match r["action"].as_str().unwrap().to_ascii_uppercase().as_str() {
                "RETRY" => true,
                "EXIT" => false,
                a => panic!("unknown action {a}"),
            };
        }
    }
    true
}

#[test]
fn job_definition_retries_exactly_the_retryable_kinds() {
    let def: Value = serde_json::from_str(&repo_file("batch-job/job-definition.json")).unwrap();
    for kind in ErrorKind::ALL {
        assert_eq!(
            batch_retries(&def, kind.exit_code()),
            kind.retryable(),
            "exit code {} ({}): Batch retries it = {}, the kind says retryable = {}",
            kind.exit_code(),
            kind.name(),
            batch_retries(&def, kind.exit_code()),
            kind.retryable()
        );
    }
    // Success is never retried: an attempt that exits 0 succeeds.
    assert!(kind_of_code(0).is_none());
}

fn kind_of_code(code: i32) -> Option<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| k.exit_code() == code)
}

#[test]
fn readme_table_lists_every_kind_with_its_retry_behaviour() {
    let readme = repo_file("README.md");
    let section = readme
        .split("\n## Exit codes\n")
        .nth(1)
        .expect("README has an `## Exit codes` section");
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<Vec<String>> = section
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.contains("| code"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect();
    for kind in ErrorKind::ALL {
        let row = rows
            .iter()
            .find(|r| r[0] == kind.exit_code().to_string())
            .unwrap_or_else(|| panic!("README lists no exit code {}", kind.exit_code()));
        assert_eq!(row[1], kind.name(), "README row {row:?}");
        let retried = row[3].to_ascii_lowercase();
        assert_eq!(
            retried.starts_with("yes"),
            kind.retryable(),
            "README row {row:?}: retried by Batch"
        );
    }
}

#[test]
fn still_writing_is_not_ready_and_retried() {
    let e = Error::NotReady("the short-term engine is still writing".into());
    assert_eq!(e.kind(), ErrorKind::NotReady);
    assert!(e.retryable());
    assert!(Error::Timeout("x".into()).retryable());
    assert!(!Error::LockLost("x".into()).retryable());
    assert!(!Error::Conflict("x".into()).retryable());
    assert!(!Error::BadInput("x".into()).retryable());
}
