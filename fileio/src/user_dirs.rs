//! Where this tool keeps files per user.

use std::path::PathBuf;

/// The directory for files this tool keeps per user (`$XDG_CACHE_HOME/charrnn-fast`, else
/// `~/.cache/charrnn-fast`), when one can be named.
pub fn user_cache_dir() -> Option<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("XDG_CACHE_HOME")
        .or_else(|| from_env("HOME").map(|home| home.join(".cache")))
        .map(|d| d.join("charrnn-fast"))
}
