//! Backups of a live deployment, and their checking and restoring.
//!
//! A backup is a directory: `database.sqlite`, a complete yiqian database (the rows of every
//! table, read inside one snapshot transaction, so a backup taken while the service runs is
//! consistent: on SQLite a read transaction in WAL mode, on PostgreSQL `REPEATABLE READ`),
//! `blobs/`, the sealed bytes of every blob that snapshot records, as they are (a blob is
//! written before the transaction that records it and never changed, so the ones a snapshot
//! names are complete), `SHA256SUMS` (in `sha256sum -c` form) and `manifest.json`, written last.
//! Sealed columns and blobs stay sealed: the keys are **not** in a backup, and restoring needs
//! the deployment's master key (the manifest carries its check value, which does not reveal it).

use crate::blobs::{BlobStore, LocalBlobStore};
use crate::copy::{self, CopyError, CopyReport};
use crate::{Backend, Store, StoreError, Tx, Vault};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The format a backup's manifest names.
pub const FORMAT: &str = "yiqian-backup/1";
const MANIFEST: &str = "manifest.json";
const CHECKSUMS: &str = "SHA256SUMS";
const DATABASE: &str = "database.sqlite";
const BLOBS: &str = "blobs";

/// What a backup holds, written last: a directory without it did not finish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
    /// The yiqian that took it.
    pub yiqian_version: String,
    /// The database it was taken from: `sqlite` or `postgres`.
    pub source: String,
    /// Rows of each table.
    pub rows: BTreeMap<String, i64>,
    /// Entries of the audit chain, verified when the backup was taken.
    pub audit_entries: i64,
    /// The hash of the chain's last entry.
    pub audit_head: String,
    /// Blobs in `blobs/`.
    pub blobs: u64,
    /// Their sealed bytes.
    pub blob_bytes: u64,
    /// SHA-256 of `SHA256SUMS`, so an altered list is caught too.
    pub checksums_sha256: String,
    /// The keys, which are not in the backup.
    pub keys: KeysNote,
}

/// What a backup says about the keys it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysNote {
    /// Always `false`: a backup never holds a key.
    pub included: bool,
    /// What to keep beside it.
    pub note: String,
    /// The check value of each key the deployment recorded (`master`, `pin_escrow`, …).
    pub check_values: BTreeMap<String, String>,
}

/// Why a backup could not be taken, checked or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup directory already holds files.
    #[error("{0} is not empty: back up into a new directory")]
    NotEmpty(PathBuf),
    /// The backup is incomplete, altered or does not match its manifest.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    /// A file could not be read or written.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database or blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Restoring stopped (a target that is not empty, a copy that does not match).
    #[error(transparent)]
    Copy(#[from] CopyError),
}

impl From<sqlx::Error> for BackupError {
    fn from(e: sqlx::Error) -> BackupError {
        BackupError::Store(e.into())
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

impl Store {
    /// Starts a read-only transaction that sees one state of the whole database.
    async fn snapshot(&self) -> Result<Tx, StoreError> {
        let mut tx = self.read().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(tx.conn()).await?;
        }
        Ok(tx)
    }

    /// Closes the store's connections (a SQLite file is then whole, without its WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Takes a backup of this deployment into `dir` (new or empty) while it runs, and returns
    /// its manifest. `version` is the yiqian taking it; `progress` hears of each table and of
    /// the blobs as they are copied.
    pub async fn backup_to(&self, dir: &Path, version: &str, progress: impl Fn(&str)) -> Result<Manifest, BackupError> {
        if std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(BackupError::NotEmpty(dir.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
        let created_at = Utc::now();
        let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.join(BLOBS)));
        let target = Store::open_shared(&sqlite_url(&dir.join(DATABASE)), self.vault.clone(), blobs).await?;
        copy::prepare_target(&target).await?;
        let mut snapshot = self.snapshot().await?;
        for table in copy::tables() {
            let copied = copy::copy_table(snapshot.conn(), &target, &table).await?;
            progress(&format!("{table}: {copied} rows"));
        }
        let ids: Vec<String> = sqlx::query("SELECT id FROM blobs WHERE erased_at IS NULL ORDER BY id")
            .fetch_all(snapshot.conn())
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        drop(snapshot);
        let (mut blob_count, mut blob_bytes) = (0u64, 0u64);
        for id in &ids {
            blob_bytes += copy::copy_sealed(self.blob_store(), target.blob_store(), id).await.map_err(|e| match e {
                StoreError::NotFound(_) => BackupError::Damaged(format!(
                    "blob {id} is recorded but not in the blob store: the deployment has lost it (`yiqian backup` copies what the database records)"
                )),
                e => e.into(),
            })?;
            blob_count += 1;
            if blob_count % 100 == 0 {
                progress(&format!("blob files: {blob_count} of {}", ids.len()));
            }
        }
        progress(&format!("blob files: {blob_count} ({blob_bytes} bytes)"));
        let rows = target.row_counts().await?.into_iter().collect();
        let (audit_entries, audit_head) = match target.verify_audit().await? {
            crate::audit::AuditVerdict::Intact { entries, head } => (entries, head),
            crate::audit::AuditVerdict::Broken { seq, reason } => {
                return Err(BackupError::Damaged(format!(
                    "the deployment's audit chain is broken at entry {seq} ({reason}); run `yiqian audit verify`"
                )));
            }
        };
        let check_values = target.recorded_check_values().await?;
        target.close().await;
        let sums = checksum_lines(dir)?;
        std::fs::write(dir.join(CHECKSUMS), &sums).map_err(io("write SHA256SUMS"))?;
        let manifest = Manifest {
            format: FORMAT.into(),
            created_at,
            yiqian_version: version.into(),
            source: match self.backend {
                Backend::Sqlite => "sqlite".into(),
                Backend::Postgres => "postgres".into(),
            },
            rows,
            audit_entries,
            audit_head,
            blobs: blob_count,
            blob_bytes,
            checksums_sha256: hex::encode(Sha256::digest(sums.as_bytes())),
            keys: KeysNote {
                included: false,
                note: "The keys are not in this backup. Restoring it needs the deployment's master key (and its \
                       PIN-escrow key for keys not yet activated): keep them apart from the backups, as safely."
                    .into(),
                check_values,
            },
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| BackupError::Damaged(e.to_string()))?;
        let partial = dir.join(format!("{MANIFEST}.partial"));
        std::fs::write(&partial, text).map_err(io("write the manifest"))?;
        std::fs::rename(&partial, dir.join(MANIFEST)).map_err(io("write the manifest"))?;
        Ok(manifest)
    }
}

/// The `SHA256SUMS` lines of every file under `dir` but the manifest and the list itself,
/// sorted by path.
fn checksum_lines(dir: &Path) -> Result<String, BackupError> {
    let mut out = String::new();
    for path in files(dir)? {
        out.push_str(&format!("{}  {path}\n", file_sha256(&dir.join(&path))?));
    }
    Ok(out)
}

/// The files under `dir` (relative, `/`-separated, sorted), but the manifest and the list.
fn files(dir: &Path) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(sub) = pending.pop() {
        let listing = std::fs::read_dir(dir.join(&sub)).map_err(io(format!("list {}", dir.join(&sub).display())))?;
        for entry in listing {
            let entry = entry.map_err(io("list the backup"))?;
            let relative = sub.join(entry.file_name());
            if entry.file_type().map_err(io("list the backup"))?.is_dir() {
                pending.push(relative);
            } else {
                let name = relative.to_string_lossy().replace('\\', "/");
                if name != MANIFEST && name != CHECKSUMS {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

fn file_sha256(path: &Path) -> Result<String, BackupError> {
    let mut file = std::fs::File::open(path).map_err(io(format!("read {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io(format!("read {}", path.display())))?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..n]);
    }
}

/// A backup's database opened from a private copy (so nothing touches the backup itself),
/// with its blobs read from the backup's `blobs/`. The copy goes when this is dropped.
pub struct OpenedBackup {
    /// The store.
    pub store: Store,
    /// What the backup says of itself.
    pub manifest: Manifest,
    _copy: tempfile::TempDir,
}

/// Checks the backup in `dir` without restoring it and without any key: the manifest and the
/// checksum list agree, every file is there with its checksum and no file is unlisted, the
/// database's rows are what the manifest counts, its audit chain verifies to the recorded head,
/// and every blob it records is in `blobs/`. Returns the manifest.
pub async fn verify_backup(dir: &Path) -> Result<Manifest, BackupError> {
    // Nothing sealed is opened while checking: a throwaway key stands in for the deployment's.
    let opened = open_backup(dir, Vault::new(&crate::MasterKey::generate())).await?;
    let result = check_contents(&opened).await;
    opened.store.close().await;
    result.map(|()| opened.manifest)
}

async fn check_contents(opened: &OpenedBackup) -> Result<(), BackupError> {
    let (store, manifest) = (&opened.store, &opened.manifest);
    let rows: BTreeMap<String, i64> = store.row_counts().await?.into_iter().collect();
    if rows != manifest.rows {
        let differ: Vec<String> = manifest
            .rows
            .iter()
            .filter(|(t, n)| rows.get(*t) != Some(n))
            .map(|(t, n)| format!("{t}: {n} in the manifest, {} in the database", rows.get(t).copied().unwrap_or(0)))
            .collect();
        return Err(BackupError::Damaged(format!("row counts differ ({})", differ.join("; "))));
    }
    match store.verify_audit().await? {
        crate::audit::AuditVerdict::Intact { entries, head }
            if entries == manifest.audit_entries && head == manifest.audit_head => {}
        verdict => {
            return Err(BackupError::Damaged(format!(
                "the audit chain does not verify to the recorded head ({} entries): {verdict:?}",
                manifest.audit_entries
            )));
        }
    }
    let recorded =
        sqlx::query("SELECT id FROM blobs WHERE erased_at IS NULL ORDER BY id").fetch_all(store.pool()).await?;
    let (mut count, mut bytes) = (0u64, 0u64);
    for row in &recorded {
        let id: String = row.try_get("id")?;
        bytes += store.blob_store().size(&id).await.map_err(|e| match e {
            StoreError::NotFound(_) => BackupError::Damaged(format!("blob {id} is recorded but not in blobs/")),
            e => e.into(),
        })?;
        count += 1;
    }
    if (count, bytes) != (manifest.blobs, manifest.blob_bytes) {
        return Err(BackupError::Damaged(format!(
            "{count} blobs of {bytes} bytes, the manifest says {} of {}",
            manifest.blobs, manifest.blob_bytes
        )));
    }
    Ok(())
}

/// Opens the backup in `dir` under `vault` (the deployment's master key, to restore; any key,
/// to check) after checking its files against the manifest and `SHA256SUMS`.
pub async fn open_backup(dir: &Path, vault: Vault) -> Result<OpenedBackup, BackupError> {
    let manifest = read_manifest(dir)?;
    let sums = std::fs::read_to_string(dir.join(CHECKSUMS))
        .map_err(|e| BackupError::Damaged(format!("{CHECKSUMS} cannot be read: {e}")))?;
    if hex::encode(Sha256::digest(sums.as_bytes())) != manifest.checksums_sha256 {
        return Err(BackupError::Damaged(format!("{CHECKSUMS} is not the list the manifest recorded")));
    }
    let mut listed = Vec::new();
    for line in sums.lines() {
        let (hash, path) = line
            .split_once("  ")
            .ok_or_else(|| BackupError::Damaged(format!("{CHECKSUMS} has a line that is not `HASH  PATH`")))?;
        if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(BackupError::Damaged(format!("{CHECKSUMS} names a path outside the backup: {path}")));
        }
        let file = dir.join(path);
        if !file.is_file() {
            return Err(BackupError::Damaged(format!("{path} is missing")));
        }
        if file_sha256(&file)? != hash {
            return Err(BackupError::Damaged(format!(
                "{path} has changed since the backup was taken (its SHA-256 differs)"
            )));
        }
        listed.push(path.to_owned());
    }
    listed.sort();
    if let Some(extra) = files(dir)?.into_iter().find(|f| listed.binary_search(f).is_err()) {
        return Err(BackupError::Damaged(format!("{extra} is not in {CHECKSUMS}")));
    }
    let copy = tempfile::tempdir().map_err(io("make a working directory"))?;
    for name in [DATABASE.to_owned(), format!("{DATABASE}-wal")] {
        if dir.join(&name).exists() {
            std::fs::copy(dir.join(&name), copy.path().join(&name)).map_err(io(format!("copy {name}")))?;
        }
    }
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::new(dir.join(BLOBS)));
    let store = Store::open_shared(&sqlite_url(&copy.path().join(DATABASE)), Arc::new(vault), blobs).await?;
    Ok(OpenedBackup { store, manifest, _copy: copy })
}

fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).map_err(|e| {
        BackupError::Damaged(format!(
            "{MANIFEST} cannot be read ({e}): the backup did not finish, or {} is not a backup",
            dir.display()
        ))
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).map_err(|e| BackupError::Damaged(format!("{MANIFEST} is not valid: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Damaged(format!(
            "{MANIFEST} names format {:?}; this yiqian reads {FORMAT}",
            manifest.format
        )));
    }
    Ok(manifest)
}

impl OpenedBackup {
    /// Restores the backup into `target` (a migrated, empty database and its blob store): every
    /// row and blob, then the copy is verified — row counts, the audit chain and its head, and
    /// a sample of sealed values (orders, SMS, blobs) opened on both sides with the key this
    /// backup was opened with.
    pub async fn restore_into(&self, target: &Store, progress: impl Fn(&str)) -> Result<CopyReport, BackupError> {
        check_contents(self).await?;
        Ok(self.store.copy_to(target, true, progress).await?)
    }
}
