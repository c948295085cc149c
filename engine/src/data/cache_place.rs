//! Where a prepared corpus is cached when no `--cache` is given: beside the input
//! (`FILE.charrnn/`) when the input's folder is the user's and writable, else in the user's
//! cache directory. A system folder (`/usr/bin`, `/dev`, …) is never the user's: a run as root,
//! which owns and may write them, does not leave caches there.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use charrnn_fileio::chunks::sha256_hex;
use charrnn_fileio::user_dirs::user_cache_dir;

/// Where the cache of an input goes, and why it is not beside the input when it is not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachePlace {
    /// The cache directory.
    pub dir: PathBuf,
    /// Set when `dir` is in the user's cache directory: why the input's folder was not used.
    pub moved: Option<String>,
}

/// The cache directory beside the input: `<input>.charrnn`, or `<input>.charrnn-bytes` in
/// bytes mode (e.g. `data/tinyshakespeare/input.txt.charrnn/`).
pub fn beside_input(input: &Path, bytes: bool) -> PathBuf {
    let mut s = input.as_os_str().to_owned();
    s.push(suffix(bytes));
    PathBuf::from(s)
}

fn suffix(bytes: bool) -> &'static str {
    if bytes {
        ".charrnn-bytes"
    } else {
        ".charrnn"
    }
}

/// Beside the input when its folder belongs to this process's effective user, its owner may
/// write it and it is not a system folder; otherwise `<user cache>/prepared/<hash of the input's absolute path>-<name>.charrnn`.
/// Where neither ownership nor a user cache directory can be told, beside the input.
pub fn default_cache_place(input: &Path, bytes: bool) -> CachePlace {
    let beside = CachePlace { dir: beside_input(input, bytes), moved: None };
    let folder = input.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(meta) = fs::metadata(folder) else { return beside };
    let why = match effective_uid() {
        Some(uid) if meta.uid() != uid => {
            format!("'{}' belongs to another user (uid {}, this process runs as {uid})", folder.display(), meta.uid())
        }
        _ if meta.permissions().mode() & 0o200 == 0 => format!("'{}' is not writable", folder.display()),
        // Root may write anywhere and owns the system's folders: those are never the user's.
        _ if is_system_folder(folder) => format!("'{}' is a system folder", folder.display()),
        _ => return beside,
    };
    let Some(cache) = user_cache_dir() else { return beside };
    let absolute = fs::canonicalize(input).or_else(|_| std::path::absolute(input)).unwrap_or(input.to_path_buf());
    let key = sha256_hex(absolute.as_os_str().as_encoded_bytes()).map_or_else(|_| String::new(), |(_, sha)| sha);
    let name = input.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
    let dir = cache.join("prepared").join(format!("{}-{name}{}", &key[..key.len().min(16)], suffix(bytes)));
    CachePlace { dir, moved: Some(why) }
}

/// Folders of the system, where a run as root would otherwise leave caches (`/usr/bin`, `/dev`).
/// Not `/opt`, `/srv` or `/var`, where projects and CI workspaces live.
const SYSTEM_FOLDERS: &[&str] =
    &["/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr"];

/// Whether `folder` (resolved) is `/` or lies in one of [`SYSTEM_FOLDERS`].
fn is_system_folder(folder: &Path) -> bool {
    let Ok(folder) = fs::canonicalize(folder) else { return false };
    folder == Path::new("/") || SYSTEM_FOLDERS.iter().any(|system| folder.starts_with(system))
}

/// The effective user id, from `/proc/self/status` (its `Uid:` line: real, effective, saved,
/// file system), where that can be read.
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_effective_uid_is_the_owner_of_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(effective_uid(), Some(fs::metadata(dir.path()).unwrap().uid()));
    }

    #[test]
    fn system_folders_are_told_apart() {
        assert!(is_system_folder(Path::new("/usr/bin")) && is_system_folder(Path::new("/dev")));
        assert!(is_system_folder(Path::new("/")) && !is_system_folder(Path::new("/var/tmp")));
        assert!(!is_system_folder(Path::new("/opt")));
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_system_folder(dir.path()));
    }

    #[test]
    fn an_own_writable_folder_keeps_the_cache_beside_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("c.txt");
        let place = default_cache_place(&input, true);
        assert_eq!(place, CachePlace { dir: dir.path().join("c.txt.charrnn-bytes"), moved: None });
    }
}
