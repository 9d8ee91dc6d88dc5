//! Calendar days and the partition tags that name them.
//!
//! A day is a date in the configured timezone; its short-term partition is tagged with a
//! fixed prefix plus a strftime date format (e.g. `day_%Y-%m-%d`).

use std::fmt;
use std::str::FromStr;

use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One calendar day, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(pub NaiveDate);

impl Day {
    /// Yesterday in `tz`.
    pub fn yesterday(tz: Tz) -> Day {
        let today = Utc::now().with_timezone(&tz).date_naive();
        Day(today.pred_opt().expect("date in range"))
    }

    /// Today in `tz`.
    pub fn today(tz: Tz) -> Day {
        Day(Utc::now().with_timezone(&tz).date_naive())
    }

    /// The following day.
    pub fn succ(self) -> Day {
        Day(self.0.succ_opt().expect("date in range"))
    }

    /// Days from `from` to `to`, both included; an error if `to` is before `from`.
    pub fn range(from: Day, to: Day) -> Result<Vec<Day>> {
        if to < from {
            return Err(Error::Usage(format!(
                "date range {from}..{to} is empty: --to is before --from"
            )));
        }
        let mut out = vec![from];
        while *out.last().expect("non-empty") < to {
            out.push(out.last().expect("non-empty").succ());
        }
        Ok(out)
    }
}

impl FromStr for Day {
    type Err = Error;
    fn from_str(s: &str) -> Result<Day> {
        let ok = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) if ok => Ok(Day(d)),
            _ => Err(Error::Usage(format!(
                "invalid date `{s}`: expected YYYY-MM-DD"
            ))),
        }
    }
}

impl TryFrom<String> for Day {
    type Error = String;
    fn try_from(s: String) -> Result<Day, String> {
        s.parse().map_err(bare_message)
    }
}

/// The message of a value check, without the kind's prefix: the configuration loader adds
/// "configuration:" and the key once.
fn bare_message(e: Error) -> String {
    match e {
        Error::Config(m) | Error::Usage(m) | Error::BadInput(m) => m,
        e => e.to_string(),
    }
}

impl From<Day> for String {
    fn from(d: Day) -> String {
        d.to_string()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// A partition tag format: literal text plus strftime date fields, naming one day uniquely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TagFormat(String);

impl TagFormat {
    /// Validate `fmt`: it must parse and give distinct tags to distinct days.
    pub fn new(fmt: &str) -> Result<TagFormat> {
        if StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
            return Err(Error::Config(format!(
                "partition tag format `{fmt}` is not a valid strftime format"
            )));
        }
        let format = TagFormat(fmt.to_string());
        format.check_round_trip()?;
        Ok(format)
    }

    /// Every day of a leap year and the days around it must get a distinct tag that parses
    /// back to the same day: a format without year, month or day (`%a_%Y_%m`) would make one
    /// day's partition answer for another's.
    fn check_round_trip(&self) -> Result<()> {
        let fmt = &self.0;
        let mut seen = std::collections::HashMap::new();
        let mut day = Day(NaiveDate::from_ymd_opt(2023, 12, 31).expect("valid"));
        let last = Day(NaiveDate::from_ymd_opt(2025, 1, 1).expect("valid"));
        while day <= last {
            let mut tag = String::new();
            if fmt::Write::write_fmt(&mut tag, format_args!("{}", day.0.format(fmt))).is_err() {
                return Err(Error::Config(format!(
                    "partition tag format `{fmt}` cannot format a date (time or zone fields name no day)"
                )));
            }
            if let Some(other) = seen.insert(tag.clone(), day) {
                return Err(Error::Config(format!(
                    "partition tag format `{fmt}` does not name each day uniquely: {other} and {day} both get tag `{tag}` (it needs year, month and day fields)"
                )));
            }
            match self.parse(&tag) {
                Some(back) if back == day => {}
                Some(back) => {
                    return Err(Error::Config(format!(
                        "partition tag format `{fmt}` does not name one day: tag `{tag}` of {day} reads back as {back}"
                    )));
                }
                None => {
                    return Err(Error::Config(format!(
                        "partition tag format `{fmt}` does not name one day: tag `{tag}` of {day} cannot be read back as a date (it needs year, month and day fields)"
                    )));
                }
            }
            day = day.succ();
        }
        Ok(())
    }

    /// The tag of `day`.
    pub fn tag(&self, day: Day) -> String {
        day.0.format(&self.0).to_string()
    }

    /// The day a tag names, if it follows this format.
    pub fn parse(&self, tag: &str) -> Option<Day> {
        NaiveDate::parse_from_str(tag, &self.0)
            .ok()
            .map(Day)
            .filter(|d| self.tag(*d) == tag)
    }

    /// The format string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TagFormat {
    type Error = String;
    fn try_from(s: String) -> Result<TagFormat, String> {
        TagFormat::new(&s).map_err(bare_message)
    }
}

impl From<TagFormat> for String {
    fn from(t: TagFormat) -> String {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_days_and_tags() {
        let d: Day = "2026-11-25".parse().unwrap();
        assert_eq!(d.to_string(), "2026-11-25");
        assert!("2026-1-25".parse::<Day>().is_err());
        assert!("2026-02-30".parse::<Day>().is_err());
        assert_eq!(
            "25/11/2026".parse::<Day>().unwrap_err().to_string(),
            "invalid date `25/11/2026`: expected YYYY-MM-DD"
        );
        let f = TagFormat::new("day_%Y-%m-%d").unwrap();
        assert_eq!(f.tag(d), "day_2026-11-25");
        assert_eq!(f.parse("day_2026-11-25"), Some(d));
        assert_eq!(f.parse("day_2026-11-25x"), None);
        assert_eq!(f.parse("_default"), None);
        assert!(TagFormat::new("day_%Y-%m").is_err());
        assert!(TagFormat::new("day_%Q").is_err());
        // Formats that do not name one day: refused, naming the format.
        for bad in ["%a_%Y_%m", "%Y_%m_%u", "day_%m-%d", "%Y-%m-%d %H"] {
            let e = TagFormat::new(bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
        for good in ["%Y%m%d", "day_%Y_%j", "d%d.%m.%Y", "%F"] {
            TagFormat::new(good).expect(good);
        }
        let r = Day::range("2026-02-27".parse().unwrap(), "2026-03-02".parse().unwrap()).unwrap();
        assert_eq!(r.len(), 4);
    }
}
