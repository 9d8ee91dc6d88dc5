//! Reading a `server_config.yaml` as the engine does: sections and keys into
//! `section.key` strings, with unknown sections and keys and wrongly shaped values as findings.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::ServerConfig;
use super::schema::KNOWN;
use crate::error::{Error, Result};

impl ServerConfig {
    /// Read and check the file at `path`; an unreadable file is a config error naming it.
    pub fn load(path: &Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "Milvus server config {}: cannot read: {e}",
                path.display()
            ))
        })?;
        Ok(ServerConfig::parse(&text))
    }

    /// Parse `text`. A document the engine's YAML reader refuses, or a value of the wrong
    /// shape, is kept as a finding rather than an error.
    pub fn parse(text: &str) -> ServerConfig {
        let mut sc = ServerConfig::default();
        let docs = match YamlLoader::load_from_str(text) {
            Ok(d) => d,
            Err(e) => {
                sc.fail(
                    "(file)",
                    format!("not YAML: {e}"),
                    "YamlConfigMgr::LoadConfigFile",
                );
                return sc;
            }
        };
        let Some(Yaml::Hash(root)) = docs.into_iter().next() else {
            sc.fail(
                "(file)",
                "the document is not a mapping of sections".into(),
                "YamlConfigMgr::LoadConfigFile",
            );
            return sc;
        };
        for (k, v) in root {
            let Some(section) = scalar(&k) else {
                sc.fail(
                    "(file)",
                    "a section name is not a plain string".into(),
                    "YamlConfigMgr::LoadConfigFile",
                );
                continue;
            };
            if section == "version" {
                match scalar(&v) {
                    Some(s) => {
                        sc.values.insert(section, s);
                    }
                    None => sc.fail(
                        "version",
                        "must be the plain value 0.5".into(),
                        "Config::CheckConfigVersion (Config.cpp:979)",
                    ),
                }
                continue;
            }
            let Some(keys) = KNOWN.iter().find(|(s, _)| *s == section).map(|(_, k)| k) else {
                sc.warn(
                    &section,
                    "not a Milvus 1.1.1 section: the engine ignores it (a misspelling?)".into(),
                    "Config.cpp:42-214",
                );
                continue;
            };
            let map = match v {
                Yaml::Hash(m) => m,
                Yaml::Null => continue,
                _ => {
                    sc.fail(
                        &section,
                        "must be a mapping of keys".into(),
                        "Config::GetConfigNode",
                    );
                    continue;
                }
            };
            for (k, v) in map {
                let Some(key) = scalar(&k) else {
                    sc.fail(
                        &section,
                        "a key is not a plain string".into(),
                        "Config::GetConfigNode",
                    );
                    continue;
                };
                let full = format!("{section}.{key}");
                if !keys.contains(&key.as_str()) {
                    sc.warn(
                        &full,
                        "not a Milvus 1.1.1 key: the engine ignores it and uses its default (a misspelling?)"
                            .into(),
                        "Config.cpp:42-214",
                    );
                    continue;
                }
                if matches!(v, Yaml::Array(_)) && key.ends_with("_devices") {
                    // GPU/FPGA device lists (`ConfigNode::GetSequence`); not read by a CPU build.
                    continue;
                }
                match scalar(&v) {
                    Some(s) => {
                        sc.values.insert(full, s);
                    }
                    None => sc.fail(
                        &full,
                        "must be a plain value, not a list or a mapping".into(),
                        "ConfigNode::GetValue",
                    ),
                }
            }
        }
        sc.validate();
        sc
    }
}

/// A YAML scalar as yaml-cpp hands it to `ConfigNode` (its text); None for lists and maps.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        Yaml::Null => Some(String::new()),
        _ => None,
    }
}
