//! Redaction of secrets in URLs and values before they are printed or logged.

/// Replacement text for a secret.
pub const MASK: &str = "***";

/// A URL with its password (and any `password`/`token`/`secret` query value) masked.
/// Strings that do not parse as URLs are returned unchanged unless they look like
/// `user:pass@host`, in which case the part between `:` and `@` is masked.
pub fn url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.has_host() || u.scheme() == "sqlite" => {
            if u.password().is_some() {
                let _ = u.set_password(Some(MASK));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = ["password", "token", "secret", "key"]
                        .iter()
                        .any(|s| lower.contains(s));
                    (
                        k.into_owned(),
                        if secret {
                            MASK.to_string()
                        } else {
                            v.into_owned()
                        },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string().replace("%2A%2A%2A", MASK)
        }
        _ => match (raw.find("://"), raw.rfind('@')) {
            (Some(s), Some(at)) if at > s => match raw[s + 3..at].find(':') {
                Some(c) => format!("{}{}{}", &raw[..s + 3 + c + 1], MASK, &raw[at..]),
                None => raw.to_string(),
            },
            _ => raw.to_string(),
        },
    }
}

/// `host:port` of a URL (for error messages), or the whole redacted URL if it has no host.
pub fn endpoint(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) if u.has_host() => {
            // has_host() holds here, so host_str() is Some.
            let host = u.host_str().unwrap_or_default();
            match u.port_or_known_default().or(default_port(u.scheme())) {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            }
        }
        _ => url(raw),
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "mysql" | "mariadb" => Some(3306),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_password_and_token_query() {
        assert_eq!(
            super::url("mysql://milvus:s3cr3t@rds.example:3306/milvus"),
            "mysql://milvus:***@rds.example:3306/milvus"
        );
        assert_eq!(
            super::url("https://hooks.example/x?token=abc&a=1"),
            "https://hooks.example/x?token=***&a=1"
        );
        assert_eq!(
            super::url("sqlite:///var/lib/milvus/db/meta.sqlite"),
            "sqlite:///var/lib/milvus/db/meta.sqlite"
        );
        assert_eq!(
            super::endpoint("mysql://u:p@db.internal/milvus"),
            "db.internal:3306"
        );
    }
}
