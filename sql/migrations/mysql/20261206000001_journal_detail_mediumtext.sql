-- A publish entry's detail lists every published file with its size and BLAKE3: a day of
-- many segments outgrows TEXT (64 KiB) on MySQL. MEDIUMTEXT holds 16 MiB.
ALTER TABLE milvus_tier_journal MODIFY detail MEDIUMTEXT NULL;
