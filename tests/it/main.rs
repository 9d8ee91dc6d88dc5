//! The integration tests, one binary (one link of the whole stack): each module is the
//! tests of one command or concern, `common` their shared cluster, S3 and CLI helpers.

mod backup;
mod backup_store;
mod cli;
mod common;
mod config_check_server;
mod deploy;
mod deploy_configs;
mod entrypoint;
mod exit_codes;
mod gc;
mod lifecycle;
mod meta;
mod metrics;
mod migrate;
mod migrate_deletes;
mod migrate_faults;
mod migrate_sqlite_engine;
mod ops;
mod partitions;
mod real_engine;
mod reports;
mod restore_trust;
mod status;
mod takeover;
mod trust_files;
