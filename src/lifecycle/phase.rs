//! A day's phase, derived from its figures in both tiers and its journal rows.

use serde::Serialize;

/// Where a day is in its lifecycle, in the order days move through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No partition in either tier and no journal row.
    Absent,
    /// In short-term only; no migration started.
    ShortTermOnly,
    /// A migration step is running, or the steps stopped before publish.
    Migrating,
    /// The last run found the day not ready (still growing, or not settled): a retry later
    /// takes it; nothing failed.
    NotReady,
    /// A migration step failed.
    Failed,
    /// Rows and files in long-term; not (yet) backed up.
    Published,
    /// Published and backed up.
    BackedUp,
    /// Backed up and the last `verify` after the publish found nothing.
    Verified,
    /// Confirmed and dropped from short-term.
    Rotated,
    /// Removed from long-term; lives only in the backup.
    Archived,
}

impl Phase {
    /// The name shown in text output.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Absent => "absent",
            Phase::ShortTermOnly => "short-term only",
            Phase::Migrating => "migrating",
            Phase::NotReady => "not ready",
            Phase::Failed => "failed",
            Phase::Published => "published",
            Phase::BackedUp => "backed up",
            Phase::Verified => "verified",
            Phase::Rotated => "rotated",
            Phase::Archived => "archived",
        }
    }

    /// Every phase, in lifecycle order.
    pub const ALL: &'static [Phase] = &[
        Phase::Absent,
        Phase::ShortTermOnly,
        Phase::Migrating,
        Phase::NotReady,
        Phase::Failed,
        Phase::Published,
        Phase::BackedUp,
        Phase::Verified,
        Phase::Rotated,
        Phase::Archived,
    ];

    /// The JSON name (also the `phase` label of the metrics).
    pub fn key(self) -> &'static str {
        match self {
            Phase::Absent => "absent",
            Phase::ShortTermOnly => "short_term_only",
            Phase::Migrating => "migrating",
            Phase::NotReady => "not_ready",
            Phase::Failed => "failed",
            Phase::Published => "published",
            Phase::BackedUp => "backed_up",
            Phase::Verified => "verified",
            Phase::Rotated => "rotated",
            Phase::Archived => "archived",
        }
    }
}

/// The facts a phase is derived from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// NORMAL partitions in short-term.
    pub short_partitions: u32,
    /// The short-term partitions were dropped (or are gone after a publish).
    pub short_dropped: bool,
    /// NORMAL partitions in long-term.
    pub long_partitions: u32,
    /// Some migration step row is `running`.
    pub running: bool,
    /// Some migration step row is `failed`, with an error other than "not ready".
    pub failed: bool,
    /// Some migration step row is `failed` because the day was not ready (a retryable
    /// condition: the day is still growing).
    pub not_ready: bool,
    /// Some migration step row exists.
    pub started: bool,
    /// `publish` is done.
    pub published: bool,
    /// `backup` is done.
    pub backed_up: bool,
    /// A backup target is configured.
    pub backup_configured: bool,
    /// The last verify after the publish found nothing.
    pub verified: bool,
    /// An archive after the last publish is recorded.
    pub archived: bool,
}

/// The phase these facts put a day in.
pub fn derive(f: &Facts) -> Phase {
    if f.archived && f.long_partitions == 0 {
        return Phase::Archived;
    }
    if f.failed {
        return Phase::Failed;
    }
    if f.running {
        return Phase::Migrating;
    }
    if f.not_ready {
        return Phase::NotReady;
    }
    if f.published && f.long_partitions > 0 {
        let backed = f.backed_up || !f.backup_configured;
        if !backed {
            return Phase::Published;
        }
        if f.short_dropped {
            return Phase::Rotated;
        }
        if f.verified {
            return Phase::Verified;
        }
        return if f.backed_up {
            Phase::BackedUp
        } else {
            Phase::Published
        };
    }
    if f.started {
        return Phase::Migrating;
    }
    if f.short_partitions > 0 {
        return Phase::ShortTermOnly;
    }
    Phase::Absent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_facts() {
        let short = Facts {
            short_partitions: 1,
            backup_configured: true,
            ..Facts::default()
        };
        assert_eq!(derive(&Facts::default()), Phase::Absent);
        assert_eq!(derive(&short), Phase::ShortTermOnly);
        let running = Facts {
            started: true,
            running: true,
            ..short
        };
        assert_eq!(derive(&running), Phase::Migrating);
        assert_eq!(
            derive(&Facts {
                failed: true,
                ..running
            }),
            Phase::Failed
        );
        // A run that found the day still growing waits for a retry; a real failure wins.
        let waiting = Facts {
            started: true,
            not_ready: true,
            ..short
        };
        assert_eq!(derive(&waiting), Phase::NotReady);
        assert_eq!(
            derive(&Facts {
                failed: true,
                ..waiting
            }),
            Phase::Failed
        );
        assert_eq!(
            derive(&Facts {
                running: true,
                ..waiting
            }),
            Phase::Migrating
        );
        let published = Facts {
            started: true,
            published: true,
            long_partitions: 1,
            ..short
        };
        assert_eq!(derive(&published), Phase::Published);
        let backed = Facts {
            backed_up: true,
            ..published
        };
        assert_eq!(derive(&backed), Phase::BackedUp);
        let verified = Facts {
            verified: true,
            ..backed
        };
        assert_eq!(derive(&verified), Phase::Verified);
        assert_eq!(
            derive(&Facts {
                short_partitions: 0,
                short_dropped: true,
                ..verified
            }),
            Phase::Rotated
        );
        let archived = Facts {
            archived: true,
            long_partitions: 0,
            ..verified
        };
        assert_eq!(derive(&archived), Phase::Archived);
        // Restored after the archive: long-term holds the day again.
        assert_eq!(
            derive(&Facts {
                long_partitions: 1,
                ..archived
            }),
            Phase::Verified
        );
        // Without a backup target, published days are verified without one.
        assert_eq!(
            derive(&Facts {
                backup_configured: false,
                verified: true,
                ..published
            }),
            Phase::Verified
        );
    }
}
