//! Where the CLI may write: output folders it recognises as its own, and relative file paths
//! that cannot leave their folder.
//!
//! The tool recognises a folder as its own when every entry in it is a file the tool writes:
//! `report.json`, `summary.md`, `junit.xml`, `index.html`, `compare.md`, `sweep.json`,
//! `plots/*.svg`, the `a/` and `b/` run folders of a comparison (by the same rule), an
//! exploration's `explore.json` and `seed-N.toml` files, and the
//! `.NAME.tmp-PID` files an interrupted atomic write leaves behind. No marker file is needed,
//! so the committed reference reports and any folder a previous run filled qualify. `--out` into
//! an existing folder that is neither empty nor the tool's own is refused unless `--force`.

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

/// `seed-N.toml`: a failing seed's scenario written by `simulate explore`.
fn is_seed_scenario(name: &str) -> bool {
    name.strip_prefix("seed-")
        .and_then(|rest| rest.strip_suffix(".toml"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
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
                    OWN_FILES.contains(&name.as_str()) || (depth == 0 && is_seed_scenario(&name))
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
