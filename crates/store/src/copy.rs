//! Moving a deployment to another database and blob store without losing a byte: from the
//! embedded SQLite database and blob directory to PostgreSQL and an S3 bucket (the way up to
//! more than one node), or back. Rows are copied table by table as they are (sealed columns
//! stay sealed: both sides use the same master key), blobs byte for byte; then the copy is
//! verified — row counts, the audit chain and its head, and a sample of sealed values opened on
//! both sides. A target that holds anything is refused.

use crate::blobs::BlobStore;
use crate::{Backend, MIGRATOR, Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Tables the migrations fill (the audit chain's head at genesis): a new database has their
/// rows, which the copy replaces with the source's.
const SEEDED: &[&str] = &["audit_head"];

/// Rows of each table, in the order the tables were created (so referenced rows come first).
pub type RowCounts = Vec<(String, i64)>;

/// What [`Store::copy_to`] copied and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows per table, equal on both sides.
    pub rows: RowCounts,
    /// Blobs copied to the target's blob store (0 when it keeps the source's).
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Audit entries verified on the target (same head as the source).
    pub audit_entries: i64,
    /// Sealed values (orders, SMS, blobs) opened on both sides and found equal.
    pub sampled: usize,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target database already holds rows.
    #[error("the target database is not empty ({table} has {rows} rows): copy only into a new, empty database")]
    TargetNotEmpty {
        /// A table with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// The copy does not match its source.
    #[error("the copy does not match its source: {0}")]
    Mismatch(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The schema's tables in the order the migrations create them.
pub fn tables() -> Vec<String> {
    let mut out = Vec::new();
    for migration in MIGRATOR.iter() {
        for line in migration.sql.as_str().lines() {
            if let Some(rest) = line.trim().strip_prefix("CREATE TABLE ") {
                let name = rest.split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or_default();
                out.push(name.to_owned());
            }
        }
    }
    out
}

/// Whether a column holds integers (`BIGINT`) rather than text: every column is one or the other.
async fn integer_columns(store: &Store, table: &str) -> Result<Vec<(String, bool)>, StoreError> {
    let rows = match store.backend() {
        Backend::Sqlite => {
            sqlx::query("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(store.pool())
                .await?
        }
        Backend::Postgres => {
            sqlx::query(
                "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = current_schema() ORDER BY ordinal_position",
            )
            .bind(table)
            .fetch_all(store.pool())
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name")?;
            let kind: String = r.try_get("type")?;
            Ok((name, kind.to_ascii_lowercase().contains("int")))
        })
        .collect()
}

/// Rows written to the target per unit of work.
const COPY_CHUNK: usize = 1000;

/// Rows per INSERT statement: at most 100 × the widest table's 15 columns bound values, far
/// below both databases' limits on bound parameters.
const ROWS_PER_INSERT: usize = 100;

/// Inserts `rows` (read from the same columns) into `table` in one statement.
async fn insert_rows(
    tx: &mut crate::Tx,
    table: &str,
    columns: &[(String, bool)],
    rows: &[AnyRow],
) -> Result<(), StoreError> {
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let tuples: Vec<String> = (0..rows.len())
        .map(|r| {
            let slots: Vec<String> = (1..=names.len()).map(|c| format!("${}", r * names.len() + c)).collect();
            format!("({})", slots.join(", "))
        })
        .collect();
    let insert = format!("INSERT INTO {table} ({}) VALUES {}", names.join(", "), tuples.join(", "));
    let mut q = sqlx::query(sqlx::AssertSqlSafe(insert));
    for row in rows {
        for (i, (_, integer)) in columns.iter().enumerate() {
            q = if *integer {
                q.bind(row.try_get::<Option<i64>, _>(i)?)
            } else {
                q.bind(row.try_get::<Option<String>, _>(i)?)
            };
        }
    }
    q.execute(tx.conn()).await?;
    Ok(())
}

impl Store {
    /// Rows in each of the schema's tables.
    pub async fn row_counts(&self) -> Result<RowCounts, StoreError> {
        let mut out = Vec::new();
        for table in tables() {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
                .fetch_one(self.pool())
                .await?
                .try_get("n")?;
            out.push((table, n));
        }
        Ok(out)
    }

    /// Copies every row of this store's database into `target` (migrated, empty), then its
    /// blobs into `target`'s blob store unless both use the same one (`copy_blobs`), then
    /// verifies the copy. `progress` hears of each table and blob count as they are done.
    pub async fn copy_to(
        &self,
        target: &Store,
        copy_blobs: bool,
        progress: impl Fn(&str),
    ) -> Result<CopyReport, CopyError> {
        prepare_target(target).await?;
        for table in tables() {
            let mut source = self.pool().acquire().await.map_err(StoreError::from)?;
            let copied = copy_table(&mut source, target, &table).await?;
            progress(&format!("{table}: {copied} rows"));
        }
        let (blobs, blob_bytes) = if copy_blobs { self.copy_blobs(target, &progress).await? } else { (0, 0) };
        let mut report = self.verify_copy(target).await?;
        report.blobs = blobs;
        report.blob_bytes = blob_bytes;
        Ok(report)
    }

    /// Copies the sealed bytes of every recorded blob to `target`'s blob store, as they are.
    async fn copy_blobs(&self, target: &Store, progress: &impl Fn(&str)) -> Result<(u64, u64), StoreError> {
        let ids = self.ids("SELECT id FROM blobs WHERE erased_at IS NULL ORDER BY id").await?;
        let (mut count, mut bytes) = (0u64, 0u64);
        for id in &ids {
            bytes += copy_sealed(self.blob_store(), target.blob_store(), id).await?;
            count += 1;
            if count % 100 == 0 {
                progress(&format!("blobs: {count} of {}", ids.len()));
            }
        }
        progress(&format!("blobs: {count} ({bytes} bytes)"));
        Ok((count, bytes))
    }

    /// The `id` column of the rows `sql` selects.
    async fn ids(&self, sql: &'static str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?)
    }

    /// Compares `target` with this store: row counts, the audit chain (intact, same head) and a
    /// sample of sealed values opened on both sides.
    pub async fn verify_copy(&self, target: &Store) -> Result<CopyReport, CopyError> {
        let (source_rows, target_rows) = (self.row_counts().await?, target.row_counts().await?);
        if source_rows != target_rows {
            let differ: Vec<String> = source_rows
                .iter()
                .zip(&target_rows)
                .filter(|(a, b)| a != b)
                .map(|((t, a), (_, b))| format!("{t} {a} → {b}"))
                .collect();
            return Err(CopyError::Mismatch(format!("row counts differ: {}", differ.join(", "))));
        }
        let audit_entries = match (self.verify_audit().await?, target.verify_audit().await?) {
            (
                crate::audit::AuditVerdict::Intact { head: a, .. },
                crate::audit::AuditVerdict::Intact { entries, head: b },
            ) if a == b => entries,
            (source, copy) => {
                return Err(CopyError::Mismatch(format!("audit chain: source {source:?}, copy {copy:?}")));
            }
        };
        let mut sampled = 0;
        for id in self.ids("SELECT id FROM orders ORDER BY created_at DESC LIMIT 20").await? {
            let id = yiqian_domain::OrderId::parse(&id)
                .ok_or_else(|| CopyError::Mismatch(format!("order id {id} is not an order id")))?;
            let (a, b) = (self.read().await?.load_order(&id).await?, target.read().await?.load_order(&id).await?);
            if a != b {
                return Err(CopyError::Mismatch(format!("order {id} reads differently")));
            }
            sampled += 1;
        }
        let (a, b) = (self.sandbox_sms(None, 20).await?, target.sandbox_sms(None, 20).await?);
        if a.iter().map(|m| &m.text).ne(b.iter().map(|m| &m.text)) {
            return Err(CopyError::Mismatch("sandbox SMS texts read differently".into()));
        }
        sampled += a.len();
        for id in self.ids("SELECT id FROM blobs WHERE erased_at IS NULL ORDER BY created_at DESC LIMIT 20").await? {
            let (a, b) = (self.get_blob(&id).await?, target.get_blob(&id).await?);
            if a != b {
                return Err(CopyError::Mismatch(format!("blob {id} opens differently")));
            }
            sampled += 1;
        }
        Ok(CopyReport { rows: target_rows, blobs: 0, blob_bytes: 0, audit_entries, sampled })
    }
}

/// Refuses a target database that holds anything, and empties the tables its migrations
/// seeded (the copy brings the source's rows).
pub(crate) async fn prepare_target(target: &Store) -> Result<(), CopyError> {
    let counts = target.row_counts().await?;
    if let Some((table, rows)) = counts.into_iter().find(|(t, n)| *n > 0 && !SEEDED.contains(&t.as_str())) {
        return Err(CopyError::TargetNotEmpty { table, rows });
    }
    for table in SEEDED {
        let mut tx = target.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
            .execute(tx.conn())
            .await
            .map_err(StoreError::from)?;
        tx.commit().await?;
    }
    Ok(())
}

/// Copies one table from `source` (a connection, perhaps inside a snapshot transaction) to
/// `target` as a stream: rows are read as they come and written in units of [`COPY_CHUNK`]
/// rows, several to a statement, so memory holds one chunk whatever the size of the table.
pub(crate) async fn copy_table(
    source: &mut sqlx::AnyConnection,
    target: &Store,
    table: &str,
) -> Result<u64, StoreError> {
    use futures::TryStreamExt;
    let columns = integer_columns(target, table).await?;
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let select = format!("SELECT {} FROM {table}", names.join(", "));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(select)).fetch(&mut *source);
    let mut chunk: Vec<AnyRow> = Vec::with_capacity(COPY_CHUNK);
    let mut copied = 0;
    loop {
        let row = rows.try_next().await?;
        let end = row.is_none();
        chunk.extend(row);
        if chunk.len() == COPY_CHUNK || (end && !chunk.is_empty()) {
            let mut tx = target.begin().await?;
            for rows in chunk.chunks(ROWS_PER_INSERT) {
                insert_rows(&mut tx, table, &columns, rows).await?;
            }
            tx.commit().await?;
            copied += chunk.len() as u64;
            chunk.clear();
        }
        if end {
            return Ok(copied);
        }
    }
}

/// Copies the sealed bytes stored under `id` from one blob store to another a few MiB at a
/// time; returns how many there were.
pub(crate) async fn copy_sealed(from: &dyn BlobStore, to: &dyn BlobStore, id: &str) -> Result<u64, StoreError> {
    const PIECE: u64 = 4 * 1024 * 1024;
    let size = from.size(id).await?;
    let mut sink = to.writer(id).await?;
    let mut at = 0;
    while at < size {
        let end = (at + PIECE).min(size);
        let piece = match from.get_range(id, at..end).await {
            Ok(p) => p,
            Err(e) => {
                sink.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = sink.write(&piece).await {
            sink.abort().await;
            return Err(e);
        }
        at = end;
    }
    sink.finish().await?;
    Ok(size)
}
