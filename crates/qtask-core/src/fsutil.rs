//! Writing files whole or not at all: every file qtask writes (task lists, market data,
//! run files, tables, reports) goes through [`write_atomic`].

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What marks a temporary file of [`write_atomic`] in its name, so that readers listing a
/// folder can skip one left by a crash.
pub const TMP_MARK: &str = ".qtask-tmp-";

/// Whether `name` is a temporary file of [`write_atomic`].
pub fn is_tmp_name(name: &str) -> bool {
    name.contains(TMP_MARK)
}

/// A temporary name next to `path`, unique across processes and threads.
fn tmp_path(path: &Path) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    dir.join(format!(
        ".{name}{TMP_MARK}{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and then
/// renamed over `path`: readers see the old file or the new one, never a part. The folder must
/// exist; on error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.file_name().is_none() {
        return Err(std::io::Error::other("the path has no file name"));
    }
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("a.json");
        assert!(write_atomic(&p, b"x").is_err());
        assert!(!p.exists());
        assert!(is_tmp_name(
            &tmp_path(&p).file_name().unwrap().to_string_lossy()
        ));
    }
}
