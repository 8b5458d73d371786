//! Files and folders only their owner may read: secrets (the admin token, signing keys, the
//! webhook secret) and captures of people's screens.
//!
//! A file is created new (`O_EXCL`: never over an existing file, never through a planted
//! link), 0600 whatever the umask, and synced before it is called written.

use std::io::Write;
use std::path::Path;

/// Creates `path` with `bytes`; fails if anything is already there.
pub fn create(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Puts `bytes` in `path`, owner-only, replacing what was there in one step (written beside
/// it, then renamed over it): for a setting the user changes (where the store lives).
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let new = path.with_file_name(format!(".{name}.{}.new", std::process::id()));
    match std::fs::remove_file(&new) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    create(&new, bytes)?;
    std::fs::rename(&new, path)
}

/// Makes an existing file owner-only (0600), whatever the umask made it: for files another
/// library creates (the SQLite database, a listening socket).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, owner-only.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` as a new owner-only file `name` in `dir` (made owner-only if missing), and
/// says which file failed when one does: captures of people's screens go through here.
pub fn save_in(dir: &Path, name: &str, bytes: &[u8]) -> Result<std::path::PathBuf, String> {
    create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    create(&path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_owner_only_and_never_replace_anything() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("a/b");
        create_dir(&dir).expect("dir");
        let path = dir.join("secret");
        create(&path, b"x").expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(&dir)), (0o600, 0o700));
        assert!(create(&path, b"y").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"x");
        // A link planted where the file goes is not followed.
        let target = root.path().join("target");
        std::os::unix::fs::symlink(&target, root.path().join("planted")).expect("link");
        assert!(create(&root.path().join("planted"), b"z").is_err());
        assert!(!target.exists());
    }
}
