//! Reading input files (scenarios, `report.json` for `replay`, `sweep.json` for `merge`):
//! regular files only, each kind with a size cap named in its error.
//!
//! A FIFO without a writer would block the command forever, a device such as `/dev/zero` would
//! fill memory, a terminal would wait for typing: anything that is not a regular file (after
//! following symbolic links) is refused before it is read. The file is opened non-blocking and
//! checked again once open, so a path swapped for a FIFO in between cannot block either. Pipes
//! are not an input: `simulate run /dev/stdin < x.toml` works (standard input is then the
//! file), `cat x.toml | simulate run /dev/stdin` is refused.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

use crate::model::replay::LogSource;
use crate::scenario::inputs::{Files, InputFiles};
use crate::scenario::limits::Limit;

/// What a file is, for the refusal message: "a FIFO", "a character device", "a folder".
pub fn kind_of(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, file_type: std::fs::FileType) -> String {
    format!(
        "error: cannot read {}: it is {}, not a regular file (tenantsim reads scenarios, \
         reports and sweep files only from regular files, so it never blocks on a pipe or reads \
         a device without end)",
        path.display(),
        kind_of(file_type)
    )
}

/// Opens `path` for reading if it is a regular file; returns the file and its size.
pub fn open_regular(path: &Path) -> Result<(File, u64), String> {
    let cannot = |e: std::io::Error| format!("error: cannot read {}: {e}", path.display());
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    if !metadata.is_file() {
        return Err(not_regular(path, metadata.file_type()));
    }
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading waits for a writer; non-blocking, it returns at once and
        // the check below refuses it. A regular file ignores the flag.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    if !metadata.is_file() {
        return Err(not_regular(path, metadata.file_type()));
    }
    Ok((file, metadata.len()))
}

/// The error for a file above `limit`, located at its first line like a scenario error.
fn too_large(path: &Path, limit: &Limit) -> String {
    format!(
        "error: {}:1:1: the file is too large: {}",
        path.display(),
        limit.exceeded(format!("more than {} bytes", limit.max_int()))
    )
}

/// Reads all of a regular file of at most `limit` bytes (refused before reading it all when it
/// says it is larger, and by what was read when it grows meanwhile).
pub fn read_capped(path: &Path, limit: &Limit) -> Result<Vec<u8>, String> {
    let (file, size) = open_regular(path)?;
    if size > limit.max_int() {
        return Err(too_large(path, limit));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.max_int() + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit.max_int() {
        return Err(too_large(path, limit));
    }
    Ok(bytes)
}

/// Parses a regular file of at most `limit` bytes as JSON while reading it, so a file that is
/// not JSON is refused at its first bytes however large it is. `what` names the format in the
/// error ("a sweep.json").
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    limit: &Limit,
    what: &str,
) -> Result<T, String> {
    let (file, size) = open_regular(path)?;
    if size > limit.max_int() {
        return Err(too_large(path, limit));
    }
    let mut capped = std::io::BufReader::new(file.take(limit.max_int() + 1));
    let parsed = serde_json::from_reader(&mut capped);
    if capped.into_inner().limit() == 0 {
        return Err(too_large(path, limit));
    }
    parsed.map_err(|e| {
        crate::text::printable(&format!("error: {} is not {what}: {e}", path.display()))
    })
}

/// The files a scenario names, read from the scenario's folder (a relative path is relative
/// to it, as a user expects when the scenario and its table sit side by side).
#[derive(Debug)]
pub struct Beside {
    folder: std::path::PathBuf,
}

/// File access for a scenario at `scenario`: its tables and logs resolve against its folder.
pub fn beside(scenario: impl AsRef<Path>) -> Option<Files> {
    let folder = scenario
        .as_ref()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Some(Files(std::sync::Arc::new(Beside { folder })))
}

impl Beside {
    fn resolve(&self, path: &str) -> std::path::PathBuf {
        self.folder.join(path)
    }
}

/// An error of this module without its `error: ` prefix (the loader places it after a
/// location and key).
fn bare(message: String) -> String {
    message
        .strip_prefix("error: ")
        .map(str::to_string)
        .unwrap_or(message)
}

impl InputFiles for Beside {
    fn read(&self, path: &str, limit: &Limit) -> Result<Vec<u8>, String> {
        read_capped(&self.resolve(path), limit).map_err(bare)
    }

    fn open(&self, path: &str, limit: &Limit) -> Result<Box<dyn LogSource>, String> {
        let resolved = self.resolve(path);
        let (file, size) = open_regular(&resolved).map_err(bare)?;
        if size > limit.max_int() {
            return Err(bare(too_large(&resolved, limit)));
        }
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 16, file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::limits::MAX_SCENARIO_BYTES;

    #[test]
    fn folders_and_missing_files_are_refused_with_their_kind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let error = read_capped(dir.path(), &MAX_SCENARIO_BYTES).expect_err("a folder");
        assert!(
            error.contains("it is a folder, not a regular file"),
            "{error}"
        );
        let error =
            read_capped(&dir.path().join("missing"), &MAX_SCENARIO_BYTES).expect_err("missing");
        assert!(error.starts_with("error: cannot read"), "{error}");
    }

    #[test]
    fn a_file_over_its_cap_is_refused_naming_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.json");
        std::fs::write(&path, "[1, 2, 3]").expect("write");
        let tiny = Limit {
            name: "MAX_TINY",
            max: 4.0,
            what: "bytes of a test file",
        };
        for error in [
            read_capped(&path, &tiny).expect_err("too large"),
            read_json::<Vec<u32>>(&path, &tiny, "a list").expect_err("too large"),
        ] {
            assert!(
                error.contains("(MAX_TINY)") && error.contains(":1:1:"),
                "{error}"
            );
        }
        let big = Limit { max: 9.0, ..tiny };
        assert_eq!(
            read_json::<Vec<u32>>(&path, &big, "a list"),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(read_capped(&path, &big).map(|b| b.len()), Ok(9));
    }
}
