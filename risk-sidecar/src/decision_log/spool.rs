//! The spool: an append-only file of log rows kept while PostgreSQL is down or slow,
//! replayed in order once it is back, then emptied.
//!
//! A record is `length (u32 LE) | CRC-32 of the payload (u32 LE) | payload`. Appends are
//! fsynced once per batch, so a SIGKILL leaves every batch that was acknowledged by
//! fsync intact; a torn last record (a crash mid-write) fails its length or checksum,
//! is reported and cut off when the spool is opened again. Blocking IO: only the
//! writer's own thread touches it.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::entry::SpooledHead;

const HEADER: u64 = 8;
/// No row comes near this; a larger length is a torn or foreign header.
const MAX_RECORD: u32 = 16 * 1024 * 1024;
pub const FILE_NAME: &str = "decisions.spool";

/// Transaction ids with a decision in the spool: the feedback endpoint asks it.
pub type SpooledIds = Arc<Mutex<HashSet<String>>>;

pub struct Spool {
    path: PathBuf,
    file: File,
    len: u64,
    /// Records before this were replayed into PostgreSQL.
    read_offset: u64,
    max_bytes: u64,
    ids: SpooledIds,
    /// `decided_at_ms` of the first record not yet replayed.
    oldest_ms: Option<i64>,
}

/// What opening found.
#[derive(Debug, Default, PartialEq)]
pub struct Recovered {
    pub records: usize,
    /// Bytes of a torn last record, cut off.
    pub torn_bytes: u64,
}

/// A row ready to spool.
pub struct Record<'a> {
    pub transaction_id: &'a str,
    pub decided_at_ms: i64,
    pub payload: &'a [u8],
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, checks every record, and cuts off a torn tail.
    pub fn open(dir: &Path, max_bytes: u64, ids: SpooledIds) -> std::io::Result<(Spool, Recovered)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new().read(true).append(true).create(true).open(&path)?;
        // One sidecar per spool: another's emptying the file would drop this one's rows.
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another process holds this spool (each sidecar needs its own spool_dir)",
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        let file_len = file.metadata()?.len();
        let mut spool = Spool {
            path,
            file,
            len: 0,
            read_offset: 0,
            max_bytes,
            ids,
            oldest_ms: None,
        };
        let mut recovered = Recovered::default();
        let mut offset = 0;
        while let Some((payload, next)) = spool.record_at(offset, file_len)? {
            if let Ok(head) = serde_json::from_slice::<SpooledHead>(&payload) {
                spool.oldest_ms.get_or_insert(head.decided_at_ms);
                spool.ids.lock().insert(head.transaction_id);
            }
            recovered.records += 1;
            offset = next;
        }
        if offset < file_len {
            recovered.torn_bytes = file_len - offset;
            spool.file.set_len(offset)?;
            spool.file.sync_all()?;
        }
        spool.len = offset;
        Ok((spool, recovered))
    }

    pub fn is_empty(&self) -> bool {
        self.read_offset >= self.len
    }

    pub fn len_bytes(&self) -> u64 {
        self.len
    }

    pub fn oldest_ms(&self) -> Option<i64> {
        if self.is_empty() { None } else { self.oldest_ms }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends what fits under the size bound and fsyncs once. Returns how many records
    /// were written; the rest did not fit. The bound is on rows not yet replayed; replayed
    /// ones are freed when the file empties, so while a replay catches up the file may
    /// reach twice the bound, never more.
    pub fn append(&mut self, records: &[Record<'_>]) -> std::io::Result<usize> {
        let mut buf = Vec::new();
        let mut written = 0;
        let mut len = self.len;
        for r in records {
            let size = HEADER + r.payload.len() as u64;
            let pending = len - self.read_offset;
            if pending + size > self.max_bytes
                || len + size > 2 * self.max_bytes
                || r.payload.len() > MAX_RECORD as usize
            {
                break;
            }
            buf.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(r.payload).to_le_bytes());
            buf.extend_from_slice(r.payload);
            len += size;
            written += 1;
        }
        if written == 0 {
            return Ok(0);
        }
        if let Err(e) = self.file.write_all(&buf).and_then(|()| self.file.sync_data()) {
            // Half a batch must not stay behind what comes next: cut back to the last
            // good record (a failure here too is left to the next open, which cuts a torn tail).
            let _ = self.file.set_len(self.len).and_then(|()| self.file.sync_all());
            return Err(e);
        }
        if self.is_empty() {
            self.oldest_ms = Some(records[0].decided_at_ms);
        }
        self.len = len;
        let mut ids = self.ids.lock();
        for r in &records[..written] {
            ids.insert(r.transaction_id.to_owned());
        }
        Ok(written)
    }

    /// Up to `max` records from the replay position, with the position after each.
    pub fn peek(&self, max: usize) -> std::io::Result<Vec<(Vec<u8>, u64)>> {
        let mut out = Vec::new();
        let mut offset = self.read_offset;
        while out.len() < max {
            let Some((payload, next)) = self.record_at(offset, self.len)? else {
                break;
            };
            out.push((payload, next));
            offset = next;
        }
        Ok(out)
    }

    /// Marks records up to `offset` (a position `peek` returned) as replayed; once all
    /// are, empties the file.
    pub fn advance(&mut self, offset: u64) -> std::io::Result<()> {
        self.read_offset = offset;
        self.oldest_ms = self
            .record_at(offset, self.len)?
            .and_then(|(payload, _)| serde_json::from_slice::<SpooledHead>(&payload).ok())
            .map(|head| head.decided_at_ms);
        if self.is_empty() {
            let emptied = self.file.set_len(0);
            if emptied.is_ok() {
                // The file is empty now, whatever the sync says: so is the spool.
                self.len = 0;
                self.read_offset = 0;
                self.oldest_ms = None;
                self.ids.lock().clear();
            }
            emptied?;
            self.file.sync_all()?;
        }
        Ok(())
    }

    /// The record at `offset`, or `None` at the end or at a record that fails its
    /// length or checksum (a torn write).
    fn record_at(&self, offset: u64, end: u64) -> std::io::Result<Option<(Vec<u8>, u64)>> {
        if offset + HEADER > end {
            return Ok(None);
        }
        let mut header = [0u8; HEADER as usize];
        self.file.read_exact_at(&mut header, offset)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let next = offset + HEADER + u64::from(len);
        if len > MAX_RECORD || next > end {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        self.file.read_exact_at(&mut payload, offset + HEADER)?;
        if crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        Ok(Some((payload, next)))
    }
}

#[cfg(test)]
mod tests;
