//! The day lifecycle: where each day is (short-term, migrating, published, backed up,
//! verified, rotated out of short-term, archived to the backup only), read for a whole
//! range of days in a bounded number of queries.

pub mod config;
pub mod phase;
pub mod read;
pub mod record;
pub mod status;

pub use phase::Phase;
pub use status::{DayStatus, StatusOptions, StatusReport, status};
