//! Secrets: the masked [`Secret`] value, the secret-file reader, and filling a metadata
//! password into its URL.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::redact;

/// A secret value: deserialized normally, always serialized and debug-printed masked.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value read from the environment or a file.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value of `secret`, else the first line of `file`, else None; `key` names the
    /// setting in errors.
    pub fn resolve(
        secret: Option<&Secret>,
        file: Option<&Path>,
        key: &str,
    ) -> Result<Option<Secret>> {
        match (secret, file) {
            (Some(s), _) => Ok(Some(s.clone())),
            (None, Some(f)) => Ok(Some(Secret(read_secret_file(f, &format!("{key}_file"))?))),
            (None, None) => Ok(None),
        }
    }

    /// The secret itself, for building a connection; never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(redact::MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(redact::MASK)
    }
}

pub(super) fn has_password(url: &str) -> bool {
    url::Url::parse(url)
        .map(|u| u.password().is_some())
        .unwrap_or(false)
}

/// `url` with the password from `secret` or `file` filled in.
pub(super) fn with_password(
    url: &str,
    secret: Option<&Secret>,
    file: Option<&Path>,
    section: &str,
) -> Result<String> {
    let password = match (secret, file) {
        (Some(s), _) => Some(s.expose().to_string()),
        (None, Some(f)) => Some(read_secret_file(
            f,
            &format!("{section}.meta_password_file"),
        )?),
        (None, None) => None,
    };
    let Some(password) = password else {
        return Ok(url.to_string());
    };
    let mut u = url::Url::parse(url).map_err(|e| {
        Error::Config(format!(
            "key `{section}.meta_url`: `{}`: {e}",
            redact::url(url)
        ))
    })?;
    u.set_password(Some(&password)).map_err(|_| {
        Error::Config(format!(
            "key `{section}.meta_url`: this URL cannot carry a password"
        ))
    })?;
    Ok(u.to_string())
}

/// The secret in a file (a Kubernetes or Batch secret mounted as a file): its first line
/// without the line ending (`\n` or `\r\n`). Nothing else is trimmed, as a password may
/// begin or end with spaces. `key` names the setting in errors.
fn read_secret_file(path: &Path, key: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("key `{key}`: cannot read {}: {e}", path.display())))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_gives_its_first_line_without_the_line_ending_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("password");
        for (body, want) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\nsecond line\n", "s3cret"),
            (" pass word \n", " pass word "),
            ("no newline", "no newline"),
        ] {
            std::fs::write(&f, body).unwrap();
            assert_eq!(read_secret_file(&f, "k").unwrap(), want, "{body:?}");
            let s = Secret::resolve(None, Some(&f), "k").unwrap().unwrap();
            assert_eq!(s.expose(), want, "{body:?}");
        }
        let e = read_secret_file(&dir.path().join("missing"), "long_term.meta_password_file")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("long_term.meta_password_file") && e.contains("missing"),
            "{e}"
        );
    }
}
