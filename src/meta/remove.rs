//! Deletes of `Tables` and `TableFiles` rows: a scratch engine's collection tree, a day's
//! partitions (archive), and TO_DELETE file rows (gc). All with bound parameters.

use sqlx::{Any, Transaction};

use super::MetaDb;
use super::types::FileType;
use crate::error::Result;

impl MetaDb {
    /// Delete table `id`'s file rows and then its `Tables` row (a collection or a partition,
    /// whoever owns it). Not in one transaction: for a scratch engine's metadata only.
    pub async fn delete_table(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM TableFiles WHERE table_id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err(format!("clear the TableFiles rows of {id}")))?;
        sqlx::query("DELETE FROM Tables WHERE table_id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(self.err(format!("clear the Tables row {id}")))?;
        Ok(())
    }

    /// In `tx`: delete partition `id` of collection `owner` and its file rows.
    pub async fn delete_partition_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        owner: &str,
    ) -> Result<()> {
        sqlx::query("DELETE FROM TableFiles WHERE table_id = ?")
            .bind(id)
            .execute(&mut **tx)
            .await
            .map_err(self.err(format!("delete the file rows of partition {id}")))?;
        sqlx::query("DELETE FROM Tables WHERE table_id = ? AND owner_table = ?")
            .bind(id)
            .bind(owner)
            .execute(&mut **tx)
            .await
            .map_err(self.err(format!("delete partition {id}")))?;
        Ok(())
    }

    /// In `tx`: delete `TableFiles` row `id` if it is still TO_DELETE.
    pub async fn delete_to_delete_file_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM TableFiles WHERE id = ? AND file_type = ?")
            .bind(id)
            .bind(FileType::ToDelete.code())
            .execute(&mut **tx)
            .await
            .map_err(self.err(format!("delete TO_DELETE row id {id}")))?;
        Ok(())
    }
}
