//! Compaction: the space of removed data given back to the file system, and every table's
//! pages filled again.

use super::tables::{
    CREATED_INDEX, DEAD_LETTERS, HISTORY, HISTORY_HEADS, INBOX, OUTBOX, RECORDS, STATUS_INDEX, TIMER_KEYS,
    TIMERS,
};
use super::{Db, RedbStore};
use crate::error::{Error, Result};
use redb::{Key, ReadableTable, TableDefinition, TableHandle, Value, WriteTransaction};

impl RedbStore {
    /// Gives the space of deleted data (processes removed by retention, published outbox
    /// rows, pruned inbox keys) back to the file system, shrinking the file as far as it goes;
    /// says whether any page moved. Needs the store to itself: no runtime on it, no snapshot
    /// held.
    ///
    /// Each table is written again in key order first, one transaction per table: a table
    /// whose entries were inserted out of order and updated in place keeps pages that are
    /// half empty, which moving pages alone cannot give back.
    pub fn compact(&mut self) -> Result<bool> {
        self.snapshots.invalidate();
        let path = self.path.clone();
        let Db::Write(db) = &mut self.db else {
            return Err(Error::Config(format!("{}: opened read-only, cannot compact", path.display())));
        };
        let failed = |e: redb::Error| Error::storage(format!("{}: compacting", path.display()), e);
        macro_rules! rewrite {
            ($($table:expr),*) => {$(
                let txn = db.begin_write().map_err(|e| failed(e.into()))?;
                rewrite(&txn, $table).map_err(failed)?;
                txn.commit().map_err(|e| failed(e.into()))?;
            )*};
        }
        super::tables::every_table!(rewrite);
        let mut moved = false;
        while db.compact().map_err(|e| failed(e.into()))? {
            moved = true;
        }
        Ok(moved)
    }
}

/// Copies `table` to a scratch table and back, each time in key order, so that its pages are
/// full. Within one transaction: a crash leaves the table as it was.
fn rewrite<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> std::result::Result<(), redb::Error> {
    let scratch_name = format!("{}.compacting", table.name());
    let scratch: TableDefinition<K, V> = TableDefinition::new(&scratch_name);
    copy(txn, table, scratch)?;
    txn.delete_table(table)?;
    copy(txn, scratch, table)?;
    txn.delete_table(scratch)?;
    Ok(())
}

fn copy<K: Key + 'static, V: Value + 'static>(
    txn: &WriteTransaction,
    from: TableDefinition<K, V>,
    to: TableDefinition<K, V>,
) -> std::result::Result<(), redb::Error> {
    let source = txn.open_table(from)?;
    let mut target = txn.open_table(to)?;
    for entry in source.iter()? {
        let (key, value) = entry?;
        target.insert(key.value(), value.value())?;
    }
    Ok(())
}
