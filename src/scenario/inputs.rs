//! Files a scenario names besides itself (tenant tables, a replayed request log): how the
//! loader, which does no I/O, gets their bytes, and the digests report.json records.
//!
//! The CLI supplies an [`InputFiles`] that resolves a path as written in the scenario against
//! the scenario's folder and reads regular files only, each kind under its size limit. Callers
//! that load scenarios without one (tests, in-memory pipelines) get a clear error for a
//! scenario that names a file.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::limits::Limit;
use crate::model::replay::LogSource;

/// Reads the files a scenario names.
pub trait InputFiles: Send + Sync {
    /// All of the file at `path` (as the scenario writes it), at most `limit` bytes.
    fn read(&self, path: &str, limit: &Limit) -> Result<Vec<u8>, String>;
    /// The file at `path` for streaming, from its start; at most `limit` bytes.
    fn open(&self, path: &str, limit: &Limit) -> Result<Box<dyn LogSource>, String>;
}

/// A shared [`InputFiles`] for [`super::LoadOptions`].
#[derive(Clone)]
pub struct Files(pub Arc<dyn InputFiles>);

impl fmt::Debug for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Files(..)")
    }
}

/// A file a run read, as report.json records it: `replay` refuses to rerun a report whose
/// files changed since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// The scenario key that names it (`tenants.customers.table`, `replay.log`).
    pub key: String,
    /// The path as the scenario writes it.
    pub path: String,
    /// `sha256:` and the hex SHA-256 of its bytes.
    pub digest: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The digest report.json records for a file: `sha256:` and the lowercase hex of `hash` (a
/// SHA-256 of its bytes).
pub fn digest_text(hash: &[u8]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(7 + 2 * hash.len());
    text.push_str("sha256:");
    for byte in hash {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Files held in memory, by the path a scenario writes: for library callers that build a
/// scenario and its tables in memory, and for tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles {
    files: std::collections::BTreeMap<String, Arc<Vec<u8>>>,
}

impl MemoryFiles {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// With `bytes` at `path` (replacing what was there).
    #[must_use]
    pub fn with(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.insert(path.to_string(), Arc::new(bytes.into()));
        self
    }

    /// As the [`Files`] of [`super::LoadOptions`].
    pub fn into_files(self) -> Files {
        Files(Arc::new(self))
    }

    fn get(&self, path: &str, limit: &Limit) -> Result<&Arc<Vec<u8>>, String> {
        let bytes = self
            .files
            .get(path)
            .ok_or_else(|| format!("cannot read {path}: no such file"))?;
        if bytes.len() as u64 > limit.max_int() {
            return Err(format!(
                "{path}:1:1: the file is too large: {}",
                limit.exceeded(format!("more than {} bytes", limit.max_int()))
            ));
        }
        Ok(bytes)
    }
}

/// A shared byte buffer as a reader (a `Cursor` over the `Arc`, so opening the log once per
/// run copies nothing).
struct SharedBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl InputFiles for MemoryFiles {
    fn read(&self, path: &str, limit: &Limit) -> Result<Vec<u8>, String> {
        self.get(path, limit).map(|bytes| bytes.as_ref().clone())
    }

    fn open(&self, path: &str, limit: &Limit) -> Result<Box<dyn LogSource>, String> {
        let bytes = self.get(path, limit)?;
        Ok(Box::new(std::io::Cursor::new(SharedBytes(Arc::clone(
            bytes,
        )))))
    }
}
