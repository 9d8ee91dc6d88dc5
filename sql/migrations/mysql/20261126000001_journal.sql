-- milvus-tier's own tables (never Milvus's): the run journal and the per-day lock lease.
CREATE TABLE IF NOT EXISTS milvus_tier_journal (
    collection VARCHAR(255) NOT NULL,
    day CHAR(10) NOT NULL,
    step VARCHAR(32) NOT NULL,
    state VARCHAR(16) NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT NULL,
    files BIGINT NOT NULL DEFAULT 0,
    row_count BIGINT NOT NULL DEFAULT 0,
    bytes BIGINT NOT NULL DEFAULT 0,
    checksum_digest VARCHAR(128) NOT NULL DEFAULT '',
    detail TEXT NULL,
    PRIMARY KEY (collection, day, step)
);
CREATE TABLE IF NOT EXISTS milvus_tier_lock (
    name VARCHAR(255) NOT NULL PRIMARY KEY,
    holder VARCHAR(255) NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
