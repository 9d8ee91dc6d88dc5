//! Environment overrides: the `MILVUS_TIER_` prefix, which variables are configuration
//! keys, and the `MILVUS_TIER_*` variables that are neither (ignored, with a warning).

use figment::providers::Env;

use super::Config;

/// Environment variable prefix for every key.
pub const ENV_PREFIX: &str = "MILVUS_TIER_";

/// The top-level keys of [`Config`] (sections and `timezone`). An environment variable is
/// configuration only when its name, after the prefix, starts with one of them.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "timezone",
    "short_term",
    "long_term",
    "engine",
    "backup",
    "limits",
    "batch",
    "slack",
    "partitions",
    "status",
    "metrics",
    "archive",
];

/// `MILVUS_TIER_*` variables the programs read themselves, not configuration keys.
const OWN_VARIABLES: &[&str] = &[
    "config",
    "log",
    "log_format",
    "failpoint",
    "test_venv",
    "test_failpoint_child",
    "test_crash_base",
    "bench_s",
];

/// Whether the figment key (after the prefix, `__` turned into `.`, lower case) names a
/// configuration key: its first part is a top-level key of [`Config`].
fn is_config_key(key: &str) -> bool {
    // `split` yields at least one part, so the default is never used.
    let first = key.split('.').next().unwrap_or_default();
    TOP_LEVEL_KEYS.contains(&first)
}

/// The `MILVUS_TIER_*` names among `names` that are neither configuration nor read by the
/// programs: e.g. `MILVUS_TIER_SERVICE_HOST`, which Kubernetes sets in every pod of a
/// namespace holding a Service named `milvus-tier`. They are ignored, with a warning.
pub fn ignored_env(names: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .filter(|n| {
            let Some(rest) = n.strip_prefix(ENV_PREFIX) else {
                return false;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            !is_config_key(&key) && !OWN_VARIABLES.contains(&key.as_str())
        })
        .collect();
    out.sort();
    out
}

impl Config {
    pub(super) fn env() -> Env {
        Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(|k| is_config_key(&k.as_str().to_ascii_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_keys_are_the_fields_of_config() {
        // serde's unknown-field error lists every field the struct accepts.
        let e = serde_json::from_str::<Config>(r#"{"zz_not_a_key": 1}"#).unwrap_err();
        let msg = e.to_string();
        let listed = msg
            .split("expected one of ")
            .nth(1)
            .unwrap_or_else(|| panic!("no field list in: {msg}"));
        let mut fields: Vec<&str> = listed
            .split(", ")
            .map(|f| f.trim_matches(|c: char| c == '`' || !c.is_ascii() || c.is_whitespace()))
            .map(|f| f.split('`').next().unwrap_or(f))
            .collect();
        fields.sort();
        let mut keys = TOP_LEVEL_KEYS.to_vec();
        keys.sort();
        assert_eq!(fields, keys, "{msg}");
    }

    #[test]
    fn only_names_of_no_section_are_ignored() {
        let names = [
            "MILVUS_TIER_SERVICE_HOST",
            "MILVUS_TIER_PORT_8080_TCP",
            "MILVUS_TIER_LONG_TERM__META_URL",
            "MILVUS_TIER_TIMEZONE",
            "MILVUS_TIER_LOG_FORMAT",
            "MILVUS_TIER_LIMITS__NO_SUCH_KEY",
            "PATH",
        ];
        let got = ignored_env(names.iter().map(std::ffi::OsString::from));
        assert_eq!(
            got,
            ["MILVUS_TIER_PORT_8080_TCP", "MILVUS_TIER_SERVICE_HOST"]
        );
    }
}
