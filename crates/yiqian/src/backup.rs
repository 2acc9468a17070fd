//! `yiqian restore`: a backup (see `yiqian_store::backup`) into this node's empty database and
//! blob store, once the keys this node holds are shown to be the ones the backup's data was
//! sealed with (a backup carries their check values, never the keys).

use crate::config::Config;
use crate::server::{StartError, blob_store, storage};
use crate::shared_keys::{self, NodeKey};
use std::path::Path;
use yiqian_store::backup::{Manifest, open_backup};
use yiqian_store::copy::CopyReport;
use yiqian_store::{Store, Vault};

/// Why a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// This node's keys or storage are not right for it.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The backup is damaged, or the target not empty, or the copy does not match.
    #[error(transparent)]
    Backup(#[from] yiqian_store::backup::BackupError),
}

/// Restores the backup in `from` into the database and blob store `config` names (which must
/// be empty), with the keys `config` gives; `progress` hears of each table and of the blobs.
pub async fn restore(
    config: &Config,
    from: &Path,
    progress: impl Fn(&str),
) -> Result<(Manifest, CopyReport), RestoreError> {
    let master = NodeKey::resolve(&shared_keys::MASTER, config)?;
    let opened = open_backup(from, Vault::new(master.key())).await?;
    let recorded = |name: &str| opened.manifest.keys.check_values.get(name);
    if let Some(expected) = recorded(shared_keys::MASTER.name) {
        master.matches_recorded(expected)?;
    }
    for spec in [&shared_keys::PIN_ESCROW, &shared_keys::SANDBOX_GATEWAY] {
        if let Some(expected) = recorded(spec.name) {
            NodeKey::resolve(spec, config)?.matches_recorded(expected)?;
        }
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| StartError::Storage {
        what: format!("creating {}", config.data_dir.display()),
        source: e.into(),
    })?;
    let target = Store::open(&config.database_url(), Vault::new(master.key()), blob_store(config)?)
        .await
        .map_err(storage("opening the database to restore into"))?;
    let report = opened.restore_into(&target, progress).await;
    target.close().await;
    opened.store.close().await;
    Ok((opened.manifest.clone(), report?))
}
