//! Batch job names: `milvus-tier-<collection>-<YYYYMMDD>` for one day,
//! `milvus-tier-<collection>-<YYYYMMDD>-<YYYYMMDD>` for a range. Batch allows letters,
//! digits, `-` and `_`, up to 128 characters.

use chrono::NaiveDate;

use crate::day::Day;

const MAX_LEN: usize = 128;
/// Room left for `-YYYYMMDD-YYYYMMDD`.
const DATES_LEN: usize = 18;

fn sanitized(collection: &str) -> String {
    let s: String = collection
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let room = MAX_LEN - DATES_LEN - "milvus-tier-".len();
    s.chars().take(room).collect()
}

/// The name prefix every job of `collection` shares (ends with `-`).
pub fn job_name_prefix(collection: &str) -> String {
    format!("milvus-tier-{}-", sanitized(collection))
}

/// The job name for days `first..=last` of `collection`.
pub fn job_name(collection: &str, first: Day, last: Day) -> String {
    let f = first.0.format("%Y%m%d");
    if first == last {
        format!("{}{f}", job_name_prefix(collection))
    } else {
        format!(
            "{}{f}-{}",
            job_name_prefix(collection),
            last.0.format("%Y%m%d")
        )
    }
}

/// The days (first, last) a job name of `collection` covers; None for other names.
pub fn name_days(collection: &str, name: &str) -> Option<(Day, Day)> {
    let rest = name.strip_prefix(&job_name_prefix(collection))?;
    let parse = |s: &str| {
        (s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok().map(Day))
            .flatten()
    };
    match rest.split_once('-') {
        None => parse(rest).map(|d| (d, d)),
        Some((a, b)) => Some((parse(a)?, parse(b)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_stay_valid() {
        let d = |s: &str| s.parse::<Day>().unwrap();
        let one = job_name("vectors", d("2026-11-20"), d("2026-11-20"));
        assert_eq!(one, "milvus-tier-vectors-20261120");
        let range = job_name("vectors", d("2026-11-20"), d("2026-11-24"));
        assert_eq!(range, "milvus-tier-vectors-20261120-20261124");
        assert_eq!(
            name_days("vectors", &range),
            Some((d("2026-11-20"), d("2026-11-24")))
        );
        assert_eq!(
            name_days("vectors", &one),
            Some((d("2026-11-20"), d("2026-11-20")))
        );
        // Another collection sharing the prefix is not this one's job.
        assert_eq!(name_days("vectors", "milvus-tier-vectors-x-20261120"), None);
        let long = "a.b/c".repeat(60);
        let n = job_name(&long, d("2026-11-20"), d("2026-11-24"));
        assert!(n.len() <= 128, "{}", n.len());
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert!(name_days(&long, &n).is_some());
    }
}
