//! Collection names as Milvus 1.1.1 accepts them (`ValidationUtil::ValidateCollectionName`):
//! checked before a name goes into a storage path, a metadata row or an engine URL.

/// Longest name Milvus accepts (`COLLECTION_NAME_SIZE_LIMIT`).
pub const MAX_LEN: usize = 255;

/// Why Milvus would refuse `name` as a collection name, or `None` if it accepts it: not
/// empty, at most 255 bytes, an ASCII letter or `_` first, then ASCII letters, digits, `_`.
pub fn collection_name_problem(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return Some("a collection name must not be empty");
    };
    if bytes.len() > MAX_LEN {
        return Some("a collection name has at most 255 characters");
    }
    if *first != b'_' && !first.is_ascii_alphabetic() {
        return Some("the first character of a collection name must be a letter or an underscore");
    }
    if bytes[1..]
        .iter()
        .any(|b| *b != b'_' && !b.is_ascii_alphanumeric())
    {
        return Some("a collection name holds only letters, digits and underscores");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_validate_collection_name() {
        for ok in ["archive", "_x", "A1_b2", &"c".repeat(255)] {
            assert_eq!(collection_name_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "..",
            "1st",
            "it's",
            "x y",
            "é",
            "a-b",
            &"c".repeat(256),
        ] {
            assert!(collection_name_problem(bad).is_some(), "{bad}");
        }
    }
}
