//! `--date D | --from D1 --to D2`: the days a command addresses (default: yesterday).

use milvus_tier::config::Config;
use milvus_tier::day::Day;
use milvus_tier::error::{Error, Result};

/// Day selection shared by the commands that work day by day.
#[derive(Debug, Clone, clap::Args)]
pub struct DayArgs {
    /// The day, YYYY-MM-DD (default: yesterday in the configured timezone).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub date: Option<String>,
    /// First day of a range (with --to); days run in order.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Last day of a range.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
}

impl DayArgs {
    /// The days, in order; only days already over in the configured timezone.
    pub fn days(&self, config: &Config) -> Result<Vec<Day>> {
        let tz = config.tz()?;
        let days = match (&self.date, &self.from, &self.to) {
            (Some(d), _, _) => vec![d.parse()?],
            (None, Some(f), Some(t)) => Day::range(f.parse()?, t.parse()?)?,
            _ => vec![Day::yesterday(tz)],
        };
        let today = Day::today(tz);
        if let Some(d) = days.iter().find(|d| **d >= today) {
            return Err(Error::Usage(format!(
                "day {d} is not over yet in {} (today is {today}): only past days can be migrated",
                config.timezone
            )));
        }
        Ok(days)
    }
}
