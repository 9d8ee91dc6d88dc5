-- Milvus 1.1.1 metadata schema, MySQL/MariaDB, exactly as MySQLMetaImpl::Initialize() issues it
-- (fields joined with "," in TABLES_SCHEMA order; no ENGINE/CHARSET clause).
-- Milvus compares these columns (DESC) at start and refuses a different schema: never alter them.
-- milvus-tier's own tables live in sql/migrations/.
CREATE TABLE IF NOT EXISTS Tables (id BIGINT PRIMARY KEY AUTO_INCREMENT,table_id VARCHAR(255) UNIQUE NOT NULL,state INT NOT NULL,dimension SMALLINT NOT NULL,created_on BIGINT NOT NULL,flag BIGINT DEFAULT 0 NOT NULL,index_file_size BIGINT DEFAULT 1024 NOT NULL,engine_type INT DEFAULT 1 NOT NULL,index_params VARCHAR(512) NOT NULL,metric_type INT DEFAULT 1 NOT NULL,owner_table VARCHAR(255) NOT NULL,partition_tag VARCHAR(255) NOT NULL,version VARCHAR(64) DEFAULT '1.1.1',flush_lsn BIGINT DEFAULT 0 NOT NULL);
CREATE TABLE IF NOT EXISTS TableFiles (id BIGINT PRIMARY KEY AUTO_INCREMENT,table_id VARCHAR(255) NOT NULL,segment_id VARCHAR(255) NOT NULL,engine_type INT DEFAULT 1 NOT NULL,file_id VARCHAR(255) NOT NULL,file_type INT DEFAULT 0 NOT NULL,file_size BIGINT DEFAULT 0 NOT NULL,row_count BIGINT DEFAULT 0 NOT NULL,updated_time BIGINT NOT NULL,created_on BIGINT NOT NULL,date INT DEFAULT -1 NOT NULL,flush_lsn BIGINT DEFAULT 0 NOT NULL);
CREATE TABLE IF NOT EXISTS Environment (global_lsn BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS Fields (collection_id VARCHAR(255) NOT NULL,field_name VARCHAR(255) NOT NULL,field_type INT DEFAULT 0 NOT NULL,field_params VARCHAR(255) NOT NULL);
