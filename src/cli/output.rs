//! Where the CLI may write: output folders it recognises as its own, relative file paths that
//! cannot leave their folder, and no writing through symbolic links or over special files.
//!
//! The tool recognises a folder as its own when every entry in it is a file the tool writes:
//! `report.json`, `summary.md`, `junit.xml`, `index.html`, `compare.md`, `sweep.json`,
//! `explore.json`, `plots/*.svg`, the `a/` and `b/` run folders of a comparison (by the same
//! rule), an exploration's `seed-N.toml` files (recognised by the line `simulate explore`
//! writes into them, so a `seed-7.toml` of your own is not the tool's), and the
//! `.NAME.tmp-PID` files an interrupted atomic write leaves behind. No marker file is needed,
//! so the committed reference reports and any folder a previous run filled qualify. `--out` into
//! an existing folder that is neither empty nor the tool's own is refused unless `--force`; a
//! default folder under `reports/` must be the tool's own.
//!
//! Inside an output folder nothing is followed: a symbolic link (or anything but a real folder)
//! where the tool writes a folder such as `plots/`, and anything but a regular file where it
//! writes a file, make the command refuse before it writes. The folder named by `--out` may
//! itself be a link (you chose it), as may `reports/`; `reports/<scenario>` and what is below
//! it may not.

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::report::plots::FILE_NAMES;

/// Files the tool writes at the top of an output folder.
const OWN_FILES: [&str; 7] = [
    "report.json",
    "summary.md",
    "junit.xml",
    "index.html",
    "compare.md",
    "sweep.json",
    "explore.json",
];

/// The seed of a `seed-N.toml` file name.
fn seed_of(name: &str) -> Option<u64> {
    name.strip_prefix("seed-")
        .and_then(|rest| rest.strip_suffix(".toml"))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
}

/// Whether `path` (named `seed-N.toml`) is a failing seed's scenario written by `simulate
/// explore`: a regular file that holds the line explore writes for that seed.
pub fn is_explored_seed_file(path: &Path) -> bool {
    let Some(seed) = path.file_name().and_then(|n| n.to_str()).and_then(seed_of) else {
        return false;
    };
    let regular = fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    let limit = crate::scenario::limits::MAX_SCENARIO_BYTES;
    regular
        && super::input::read_capped(path, &limit).is_ok_and(|bytes| {
            String::from_utf8_lossy(&bytes).contains(&crate::scenario::explore::marker(seed))
        })
}

/// The first entry under `dir` that the tool did not write, if any (None for a missing or
/// empty folder, or one the tool filled).
pub fn foreign_entry(dir: &Path) -> Result<Option<PathBuf>, String> {
    foreign_in(dir, 0)
}

fn foreign_in(dir: &Path, depth: usize) -> Result<Option<PathBuf>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("error: cannot read folder {}: {e}", dir.display())),
    };
    let in_plots = dir.file_name().is_some_and(|n| n == "plots");
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("error: cannot read folder {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Never follow links: a link is not something the tool writes.
        let kind = entry
            .file_type()
            .map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
        let is_temp = name.starts_with('.') && name.contains(".tmp-");
        let own = if kind.is_file() {
            is_temp
                || if in_plots {
                    FILE_NAMES.contains(&name.as_str())
                } else {
                    OWN_FILES.contains(&name.as_str())
                        || (depth == 0 && is_explored_seed_file(&path))
                }
        } else if kind.is_dir() && !in_plots && depth < 2 {
            let known_folder = name == "plots" || (depth == 0 && (name == "a" || name == "b"));
            if !known_folder {
                return Ok(Some(path));
            }
            if let Some(inner) = foreign_in(&path, depth + 1)? {
                return Ok(Some(inner));
            }
            true
        } else {
            false
        };
        if !own {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// Refuses `--out DIR` when DIR holds anything the tool did not write, unless `force`.
pub fn check_out_dir(dir: &Path, force: bool) -> Result<(), String> {
    if dir.exists() && !dir.is_dir() {
        return Err(format!(
            "error: --out {}: exists and is not a folder",
            dir.display()
        ));
    }
    if force {
        return Ok(());
    }
    match foreign_entry(dir)? {
        None => Ok(()),
        Some(entry) => Err(format!(
            "error: --out {}: the folder holds {}, which tenantsim did not write; refusing to \
             write report files into a folder it does not own (choose an empty or new folder, \
             or pass --force to write there anyway)",
            dir.display(),
            entry.display()
        )),
    }
}

/// Refuses a default output folder (`reports/<scenario>/...`, given as `root` = `reports` and
/// the path `below` it) that is reached through a symbolic link below `root`, or that holds
/// anything the tool did not write (there is no `--force` for a default folder).
pub fn check_default_dir(root: &Path, below: &Path) -> Result<(), String> {
    check_no_links(root, below)?;
    let dir = root.join(below);
    match foreign_entry(&dir)? {
        None => Ok(()),
        Some(entry) => Err(format!(
            "error: {} holds {}, which tenantsim did not write; refusing to write report files \
             there (move it away, or choose a folder with --out DIR [--force])",
            dir.display(),
            entry.display()
        )),
    }
}

/// Refuses a path below `root` (`reports/`) any part of which, `below` root, is a symbolic link
/// or anything but a folder (a default output path must not lead elsewhere).
pub fn check_no_links(root: &Path, below: &Path) -> Result<(), String> {
    let mut path = root.to_path_buf();
    for part in below.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) => {
                return Err(format!(
                    "error: {} is {}, not a folder; refusing to write the report \
                     files through it (remove it, or choose a folder with --out)",
                    path.display(),
                    super::input::kind_of(m.file_type())
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(format!("error: cannot read {}: {e}", path.display())),
        }
    }
    Ok(())
}

/// Checks, before anything is written, that every file of `relative` (`/`-separated paths)
/// can be written inside `dir` without following a link or replacing something that is not a
/// regular file: each folder on the way is a real folder or absent, each file a regular file or
/// absent. Returns the full paths.
pub fn check_write_paths(dir: &Path, relative: &[&str]) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::with_capacity(relative.len());
    let mut checked: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
    for file in relative {
        let path = inside(dir, file)?;
        let mut at = dir.to_path_buf();
        let parts: Vec<&str> = file.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let last = i + 1 == parts.len();
            if !last && !checked.insert(at.clone()) {
                continue;
            }
            match fs::symlink_metadata(&at) {
                Ok(m) if (last && m.is_file()) || (!last && m.is_dir()) => {}
                Ok(m) => {
                    return Err(format!(
                        "error: refusing to write {}: {} is {}, not a {} (tenantsim never \
                         follows a link out of an output folder nor replaces anything but its \
                         own regular files)",
                        path.display(),
                        at.display(),
                        super::input::kind_of(m.file_type()),
                        if last { "regular file" } else { "folder" }
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(format!("error: cannot read {}: {e}", at.display())),
            }
        }
        paths.push(path);
    }
    Ok(paths)
}

/// `dir` joined with a `/`-separated relative path that must stay inside `dir`: absolute
/// paths, `..`, and empty or `.` components are refused.
pub fn inside(dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let mut path = dir.to_path_buf();
    for part in relative.split('/') {
        let mut components = Path::new(part).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(c)), None) if !part.is_empty() && !part.contains('\\') => {
                path.push(c);
            }
            _ => {
                return Err(format!(
                    "error: refusing to write {relative:?}: not a plain path inside {}",
                    dir.display()
                ));
            }
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        let dir = Path::new("out");
        assert_eq!(
            inside(dir, "plots/latency.svg"),
            Ok(PathBuf::from("out/plots/latency.svg"))
        );
        for bad in [
            "../escape",
            "plots/../../x",
            "/etc/passwd",
            "",
            "a//b",
            ".",
            "a\\..\\b",
        ] {
            assert!(inside(dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_folders_are_recognised() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        assert_eq!(foreign_entry(&root.join("missing")), Ok(None));
        assert_eq!(foreign_entry(root), Ok(None));
        for file in [
            "report.json",
            "plots/latency.svg",
            "a/report.json",
            "b/plots/backlog.svg",
        ] {
            let path = root.join(file);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(&path, "x").expect("write");
        }
        fs::write(root.join(".report.json.tmp-123"), "x").expect("write");
        assert_eq!(foreign_entry(root), Ok(None));
        fs::write(root.join("a/notes.txt"), "mine").expect("write");
        assert_eq!(foreign_entry(root), Ok(Some(root.join("a/notes.txt"))));
        assert!(check_out_dir(root, false).is_err());
        assert!(check_out_dir(root, true).is_ok());
    }
}
