//! The engine's two locks (`DBImpl`): `build_index_mutex_`, held by the index thread for a
//! whole batch of builds and taken by compact and by create_index's index update, and
//! `flush_merge_compact_mutex_`, held by each flush, each table's merge and compact.
//! Order: build before merge, as `DBImpl::Compact` takes them.

use tokio::sync::Mutex;

/// The engine's locks.
#[derive(Debug, Default)]
pub struct EngineLocks {
    /// `build_index_mutex_`.
    pub build: Mutex<()>,
    /// `flush_merge_compact_mutex_`.
    pub merge: Mutex<()>,
}
