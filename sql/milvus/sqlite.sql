-- Milvus 1.1.1 metadata schema, SQLite (<storage.path>/db/meta.sqlite), as SqliteMetaImpl::Initialize()
-- creates it, in its order. Milvus checks the declared types at start: never alter these tables.
-- milvus-tier's own tables live in sql/migrations/.
CREATE TABLE IF NOT EXISTS Environment (global_lsn INTEGER DEFAULT (0) NOT NULL);
CREATE TABLE IF NOT EXISTS Tables (id INTEGER PRIMARY KEY NOT NULL,table_id TEXT UNIQUE NOT NULL,state INTEGER NOT NULL,dimension INTEGER NOT NULL,created_on INTEGER NOT NULL,flag INTEGER DEFAULT (0) NOT NULL,index_file_size INTEGER NOT NULL,engine_type INTEGER NOT NULL,index_params TEXT NOT NULL,metric_type INTEGER NOT NULL,owner_table TEXT DEFAULT ('') NOT NULL,partition_tag TEXT DEFAULT ('') NOT NULL,version TEXT DEFAULT ('1.1.1') NOT NULL,flush_lsn INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS TableFiles (id INTEGER PRIMARY KEY NOT NULL,table_id TEXT NOT NULL,segment_id TEXT DEFAULT ('') NOT NULL,engine_type INTEGER NOT NULL,file_id TEXT NOT NULL,file_type INTEGER NOT NULL,file_size INTEGER DEFAULT (0) NOT NULL,row_count INTEGER DEFAULT (0) NOT NULL,updated_time INTEGER NOT NULL,created_on INTEGER NOT NULL,date INTEGER NOT NULL,flush_lsn INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS Fields (collection_id TEXT NOT NULL,field_name TEXT NOT NULL,field_type INTEGER NOT NULL,field_params TEXT NOT NULL);
