//! What makes a flush durable. sled 0.34's `Db::flush` writes its log with `pwrite` and ends in
//! `sync_file_range` on Linux, which persists neither a grown file's size nor the drive's write
//! cache; and it writes an item over a quarter of a segment (~128 KiB: a large record, a large
//! node) to a file of its own under `blobs/`, with no sync at all. After each of sled's flushes,
//! [`Files::sync`] fdatasyncs the log file, then every blob file it has not yet synced at its
//! current length, then the blob directory if it gained an entry. A store sled has just created
//! has its directory synced once, on open.
//!
//! **Invariant:** when [`Files::sync`] returns `Ok` after a flush, every byte sled wrote before
//! that flush began is on stable storage: the log, its length, each blob and each blob's
//! directory entry. (A blob still being written is synced again once its length changes; sled
//! writes each blob once, with `create_new`.)

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::{check_fault, FaultHook, FaultPoint};
use crate::error::Result;

/// sled's files in a store's directory, and which blobs are synced at which length.
pub(crate) struct Files {
    db: File,
    blobs: PathBuf,
    synced: Mutex<HashMap<OsString, u64>>,
    fault_hook: Option<FaultHook>,
}

impl Files {
    /// Opens the log file of the sled database in `dir` (which sled has opened already). For a
    /// store sled has just created (`new`), syncs `dir` too, so its files' entries outlive a
    /// power cut.
    pub(crate) fn open(dir: &Path, new: bool, fault_hook: Option<FaultHook>) -> Result<Files> {
        if new {
            sync_dir(dir)?;
        }
        Ok(Files {
            db: File::open(dir.join("db"))?,
            blobs: dir.join("blobs"),
            synced: Mutex::new(HashMap::new()),
            fault_hook,
        })
    }

    /// Makes what sled's last flush wrote durable (see the module's invariant). Each file's
    /// sync is a [`FaultPoint::Sync`].
    pub(crate) fn sync(&self) -> Result<()> {
        check_fault(&self.fault_hook, FaultPoint::Sync)?;
        self.db.sync_data()?;
        let entries = match std::fs::read_dir(&self.blobs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut synced = self.synced.lock();
        let mut now: HashMap<OsString, u64> = HashMap::with_capacity(synced.len());
        let mut new_entry = false;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let len = entry.metadata()?.len();
            match synced.get(&name) {
                Some(&done) if done == len => {}
                seen => {
                    new_entry |= seen.is_none();
                    check_fault(&self.fault_hook, FaultPoint::Sync)?;
                    File::open(entry.path())?.sync_data()?;
                }
            }
            now.insert(name, len);
        }
        if new_entry {
            sync_dir(&self.blobs)?;
        }
        // Blobs sled removed are forgotten with the rest.
        *synced = now;
        Ok(())
    }
}

/// Syncs a directory's entries. Unix only: elsewhere a directory cannot be opened as a file,
/// and its entries are the file system's to make durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}
