-- Metadata databases of the three Milvus nodes (each Milvus creates its own tables at start).
CREATE DATABASE IF NOT EXISTS short_term;
CREATE DATABASE IF NOT EXISTS local_engine;
CREATE DATABASE IF NOT EXISTS long_term;
