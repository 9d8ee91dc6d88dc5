//! The value checks of `ValidationUtil` and `Config.cpp`: booleans, numbers, ports,
//! addresses, timezones, URIs, storage paths and byte sizes with their ranges.

/// `CONFIG_LOGS_MAX_LOG_FILE_SIZE_MIN` (Config.cpp:205): 512 MB.
pub const MAX_LOG_FILE_SIZE_MIN: i64 = 536_870_912;
/// `CONFIG_LOGS_MAX_LOG_FILE_SIZE_MAX` (Config.cpp:206): 4096 MB.
pub const MAX_LOG_FILE_SIZE_MAX: i64 = 4_294_967_296;

/// `ValidationUtil::ValidateStringIsBool` (ValidationUtil.cpp:608).
pub(super) fn is_bool(v: &str) -> Option<String> {
    let l = v.to_ascii_lowercase();
    (!["true", "on", "yes", "1", "false", "off", "no", "0", ""].contains(&l.as_str()))
        .then(|| "is not a boolean".into())
}

/// `ValidationUtil::ValidateStringIsNumber` (ValidationUtil.cpp:591): digits only.
pub(super) fn number(v: &str) -> Option<String> {
    (v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || v.parse::<i64>().is_err())
        .then(|| "is not a natural number".into())
}

/// Port checks (Config.cpp:1057): a number strictly between 1024 and 65535.
pub(super) fn port(v: &str) -> Option<String> {
    number(v).or_else(|| {
        let p: i64 = v.parse().ok()?;
        (!(p > 1024 && p < 65535)).then(|| "is not in range (1024, 65535)".into())
    })
}

/// `ValidationUtil::ValidateIpAddress` (ValidationUtil.cpp:556): `inet_pton(AF_INET, …)`.
pub(super) fn ipv4(v: &str) -> Option<String> {
    v.parse::<std::net::Ipv4Addr>()
        .is_err()
        .then(|| "is not an IPv4 address".into())
}

/// Config.cpp:1009: `UTC` then `[+-]` and an hour (0-23), optionally `:MM`.
pub(super) fn timezone(v: &str) -> Option<String> {
    let bad = || Some("is not UTC+H, UTC+HH:MM or UTC-… (e.g. UTC+0)".to_string());
    let Some(rest) = v.strip_prefix("UTC") else {
        return bad();
    };
    let Some(offset) = rest.strip_prefix('+').or_else(|| rest.strip_prefix('-')) else {
        return bad();
    };
    let (h, m) = match offset.split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None => (offset, None),
    };
    let hour_ok = (1..=2).contains(&h.len())
        && h.bytes().all(|b| b.is_ascii_digit())
        && h.parse::<u32>().is_ok_and(|h| h <= 23);
    let min_ok = m.is_none_or(|m| {
        m.len() == 2 && m.bytes().all(|b| b.is_ascii_digit()) && m.as_bytes()[0] <= b'5'
    });
    if hour_ok && min_ok { None } else { bad() }
}

/// `ValidationUtil::ValidateDbURI` (ValidationUtil.cpp:633): `dialect://user:password@host:port/db`
/// with every separator present, a dialect containing mysql or sqlite, and a numeric port
/// when one is given.
pub(super) fn meta_uri(v: &str) -> Option<String> {
    let form = "must look like sqlite://:@:/ or mysql://user:password@host:3306/db";
    // The engine's regex is greedy `(.*)` groups; the last separator of each kind wins.
    let parse = || -> Option<(String, String)> {
        let (dialect, rest) = v.split_once("://")?;
        let (_, rest) = rest.split_once(':')?;
        let at = rest.rfind('@')?;
        let hostport_db = &rest[at + 1..];
        let slash = hostport_db.rfind('/')?;
        let hostport = &hostport_db[..slash];
        let colon = hostport.rfind(':')?;
        Some((
            dialect.to_ascii_lowercase(),
            hostport[colon + 1..].to_string(),
        ))
    };
    let Some((dialect, port)) = parse() else {
        return Some(form.to_string());
    };
    if !dialect.contains("mysql") && !dialect.contains("sqlite") {
        return Some(format!("has dialect `{dialect}`: {form}"));
    }
    if !port.is_empty() && number(&port).is_some() {
        return Some(format!("has port `{port}`, not a number"));
    }
    None
}

/// `ValidationUtil::ValidateStoragePath` (ValidationUtil.cpp:684): `^\/(\w+-?\/?)+$`, an
/// absolute path of word characters with single `-` or `/` between them.
pub(super) fn storage_path(v: &str) -> Option<String> {
    let bad = || Some("is not an absolute path of letters, digits, `_`, single `-` and `/`".into());
    let Some(rest) = v.strip_prefix('/') else {
        return bad();
    };
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = rest.as_bytes();
    if b.is_empty() || !word(b[0]) {
        return bad();
    }
    for i in 1..b.len() {
        let ok = match b[i] {
            c if word(c) => true,
            b'-' => word(b[i - 1]),
            b'/' => word(b[i - 1]) || b[i - 1] == b'-',
            _ => false,
        };
        if !ok {
            return bad();
        }
    }
    None
}

/// `parse_bytes` (core/src/config/Utils.cpp:45): digits, optionally followed by one of
/// b/k/m/g (any case) and an optional trailing `B`.
pub fn parse_bytes(v: &str) -> std::result::Result<i64, String> {
    let err = || format!("`{v}` is not a size (digits with an optional unit b, k, m or g)");
    if v.is_empty() {
        return Ok(0);
    }
    if v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().map_err(|_| err());
    }
    let mut s = v;
    let n = s.len();
    if n >= 2
        && s.as_bytes()[n - 2].is_ascii_alphabetic()
        && matches!(s.as_bytes()[n - 1], b'b' | b'B')
    {
        s = &s[..n - 1];
    }
    let (digits, unit) = s.split_at(s.len() - 1);
    let mult: i64 = match unit.to_ascii_lowercase().as_str() {
        "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return Err(err()),
    };
    // std::stoll reads a leading number and ignores what follows it.
    let lead: String = digits
        .chars()
        .enumerate()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .map(|(_, c)| c)
        .collect();
    lead.parse::<i64>()
        .map(|d| d.saturating_mul(mult))
        .map_err(|_| err())
}

pub(super) fn positive_bytes(v: &str) -> Option<String> {
    match parse_bytes(v) {
        Err(e) => Some(e),
        Ok(n) if n <= 0 => Some("is not a positive size".into()),
        Ok(_) => None,
    }
}

pub(super) fn max_log_file_size(v: &str) -> Option<String> {
    match parse_bytes(v) {
        Err(e) => Some(e),
        Ok(n) if !(MAX_LOG_FILE_SIZE_MIN..=MAX_LOG_FILE_SIZE_MAX).contains(&n) => {
            Some(format!("is {} MB, not in range [512MB, 4096MB]", n >> 20))
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bytes_follows_utils_cpp() {
        assert_eq!(parse_bytes("1024MB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("4GB"), Ok(4 << 30));
        assert_eq!(parse_bytes("1073741824"), Ok(1 << 30));
        assert!(parse_bytes("12XB").is_err());
    }

    #[test]
    fn the_small_validators_follow_validation_util() {
        assert!(storage_path("/var/lib/milvus/logs").is_none());
        assert!(storage_path("/a-b/c_d/").is_none());
        for bad in ["var/lib", "/a//a", "/a--/a", "/-a/a", "/a@#/a", "/"] {
            assert!(storage_path(bad).is_some(), "{bad}");
        }
        assert!(meta_uri("sqlite://:@:/").is_none());
        assert!(meta_uri("mysql://root:pw@mariadb:3306/db").is_none());
        assert!(meta_uri("mysql://root@mariadb:3306/db").is_some());
        assert!(meta_uri("postgres://a:b@h:1/d").is_some());
        assert!(meta_uri("mysql://a:b@h:x1/d").is_some());
        assert!(timezone("UTC+0").is_none() && timezone("UTC-05:30").is_none());
        assert!(timezone("UTC").is_some() && timezone("UTC+24").is_some());
        assert!(timezone("Asia/Seoul").is_some());
        assert!(port("19121").is_none() && port("1024").is_some() && port("80").is_some());
    }
}
