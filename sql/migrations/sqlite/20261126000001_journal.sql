-- milvus-tier's own tables (never Milvus's): the run journal and the per-day lock lease.
CREATE TABLE IF NOT EXISTS milvus_tier_journal (
    collection TEXT NOT NULL,
    day TEXT NOT NULL,
    step TEXT NOT NULL,
    state TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER NULL,
    files INTEGER NOT NULL DEFAULT 0,
    row_count INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    checksum_digest TEXT NOT NULL DEFAULT '',
    detail TEXT NULL,
    PRIMARY KEY (collection, day, step)
);
CREATE TABLE IF NOT EXISTS milvus_tier_lock (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
