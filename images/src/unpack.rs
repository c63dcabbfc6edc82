//! Applying image layers to a root file system, as a container runtime does: entries in
//! order, whiteouts remove what lower layers made, hard links and symlinks kept. Every path is
//! resolved inside the root, symlinks included (an absolute link means the image's root), so a
//! layer cannot write outside it however its links point.

use std::collections::HashSet;
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

/// A whiteout's name prefix: `.wh.name` removes `name` of lower layers.
const WHITEOUT: &str = ".wh.";
/// An opaque directory's marker: lower layers' contents of its directory are hidden.
const OPAQUE: &str = ".wh..wh..opq";
/// Links followed while resolving one path, as the kernel allows.
const MAX_LINKS: usize = 40;

/// Applies one layer, a tar stream compressed with gzip or not (told by its first bytes), to
/// `root`, writing at most `budget` bytes of files (a small layer can unpack to terabytes).
/// Returns the bytes of regular files written.
pub fn apply_layer(root: &Path, layer: impl Read, budget: u64) -> io::Result<u64> {
    let mut layer = io::BufReader::new(layer);
    let magic = io::BufRead::fill_buf(&mut layer)?;
    if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "zstd-compressed layers are not supported; push the image with gzip layers",
        ));
    }
    if magic.starts_with(&[0x1f, 0x8b]) {
        apply_tar(root, flate2::read::GzDecoder::new(layer), budget)
    } else {
        apply_tar(root, layer, budget)
    }
}

fn apply_tar(root: &Path, tar: impl Read, budget: u64) -> io::Result<u64> {
    let mut archive = tar::Archive::new(tar);
    // Paths this layer made: an opaque marker hides only what lower layers made.
    let mut made = HashSet::new();
    let mut written = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = relative(&entry.path()?)?;
        let Some(file_name) = name.file_name().map(OsStr::to_os_string) else {
            continue; // the root itself
        };
        let parent = resolve(root, name.parent().unwrap_or(Path::new("")))?;
        let file_name = file_name.to_string_lossy();
        if file_name == OPAQUE {
            clear_lower(&parent, &made)?;
            continue;
        }
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT) {
            remove(&parent.join(hidden))?;
            continue;
        }
        fs::create_dir_all(&parent)?;
        let path = parent.join(&*file_name);
        let mode = entry.header().mode().unwrap_or(0o755);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                    remove(&path)?;
                    fs::create_dir(&path)?;
                }
                // Kept writable by its owner, the server, which evicts it later.
                fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o777 | 0o700))?;
            }
            EntryType::Regular | EntryType::Continuous => {
                remove(&path)?;
                let mut file = fs::File::create(&path)?;
                let room = budget.saturating_sub(written);
                written += io::copy(&mut (&mut entry).take(room.saturating_add(1)), &mut file)?;
                if written > budget {
                    return Err(io::Error::new(
                        io::ErrorKind::FileTooLarge,
                        format!("it unpacks to more than {} MB", budget >> 20),
                    ));
                }
                // No set-id bits: jobs run in a user namespace, where they mean nothing.
                file.set_permissions(fs::Permissions::from_mode(mode & 0o777 | 0o400))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| invalid("a symlink without a target"))?;
                remove(&path)?;
                std::os::unix::fs::symlink(target, &path)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| invalid("a hard link without a target"))?;
                let target = relative(&target)?;
                let target_parent = resolve(root, target.parent().unwrap_or(Path::new("")))?;
                let target = target_parent.join(target.file_name().unwrap_or_default());
                remove(&path)?;
                fs::hard_link(&target, &path)?;
            }
            // Device nodes need privileges and come from the sandbox's own /dev; FIFOs and
            // sockets are made by programs at run time.
            _ => continue,
        }
        made.insert(path);
    }
    Ok(written)
}

/// A layer entry's path relative to the root: leading `/` and `.` dropped, `..` refused.
fn relative(path: &Path) -> io::Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(invalid(&format!(
                    "{} climbs out of the image",
                    path.display()
                )));
            }
        }
    }
    Ok(out)
}

/// `path` inside `root` with every symlink on it followed as if `root` were `/`: what the
/// path means to a process in the image. A link pointing above the root stops at it.
pub fn resolve(root: &Path, path: &Path) -> io::Result<PathBuf> {
    let mut pending: VecDeque<OsString> = names(path).collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = std::iter::once(root.as_os_str())
            .chain(resolved.iter().map(OsString::as_os_str))
            .chain(std::iter::once(name.as_os_str()))
            .collect();
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(invalid(&format!("too many links in {}", path.display())));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved.clear();
                }
                for (i, part) in names(&target).enumerate() {
                    pending.insert(i, part);
                }
            }
            _ => resolved.push(name),
        }
    }
    Ok(std::iter::once(root.as_os_str())
        .chain(resolved.iter().map(OsString::as_os_str))
        .collect())
}

/// A path's names and `..`, without roots and `.`.
fn names(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// Removes what is at `path` (not following a symlink there), if anything.
fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Empties `dir` of what lower layers put there.
fn clear_lower(dir: &Path, made: &HashSet<PathBuf>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if !made.contains(&path) {
            remove(&path)?;
        }
    }
    Ok(())
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("invalid layer: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A layer built entry by entry.
    struct Layer(tar::Builder<Vec<u8>>);

    impl Default for Layer {
        fn default() -> Self {
            Self(tar::Builder::new(Vec::new()))
        }
    }

    impl Layer {
        fn header(path: &str, kind: EntryType, mode: u32) -> tar::Header {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_mode(mode);
            header.set_size(0);
            // Set raw, so the tests can write what a hostile layer would.
            header.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            header
        }
        fn file(mut self, path: &str, content: &str) -> Self {
            let mut header = Self::header(path, EntryType::Regular, 0o644);
            header.set_size(content.len() as u64);
            header.set_cksum();
            self.0.append(&header, content.as_bytes()).unwrap();
            self
        }
        fn dir(mut self, path: &str) -> Self {
            let mut header = Self::header(path, EntryType::Directory, 0o755);
            header.set_cksum();
            self.0.append(&header, io::empty()).unwrap();
            self
        }
        fn link(mut self, kind: EntryType, path: &str, target: &str) -> Self {
            let mut header = Self::header(path, kind, 0o777);
            header.set_link_name(target).unwrap();
            header.set_cksum();
            self.0.append(&header, io::empty()).unwrap();
            self
        }
        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
        fn gzip(self) -> Vec<u8> {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&self.bytes()).unwrap();
            encoder.finish().unwrap()
        }
    }

    fn read(root: &Path, path: &str) -> Option<String> {
        fs::read_to_string(root.join(path)).ok()
    }

    #[test]
    fn layers_stack_and_whiteouts_remove_what_is_below() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let base = Layer::default()
            .dir("etc/")
            .file("etc/keep", "base")
            .file("etc/gone", "base")
            .dir("opt/")
            .file("opt/old", "base")
            .gzip();
        apply_layer(root, &base[..], u64::MAX).unwrap();
        let top = Layer::default()
            .file("etc/.wh.gone", "")
            .file("opt/new", "top")
            .file("opt/.wh..wh..opq", "")
            .file("etc/keep", "top")
            .bytes();
        apply_layer(root, &top[..], u64::MAX).unwrap();
        assert_eq!(read(root, "etc/keep").as_deref(), Some("top"));
        assert_eq!(read(root, "etc/gone"), None);
        // The opaque marker came after this layer's own file: only the lower one goes.
        assert_eq!(read(root, "opt/new").as_deref(), Some("top"));
        assert_eq!(read(root, "opt/old"), None);
        assert!(!root.join("etc/.wh.gone").exists());
    }

    #[test]
    fn links_are_kept_and_hard_links_share_the_file() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let layer = Layer::default()
            .dir("bin/")
            .file("bin/busybox", "#!")
            .link(EntryType::Symlink, "bin/sh", "/bin/busybox")
            .link(EntryType::Link, "bin/tr", "bin/busybox")
            .bytes();
        apply_layer(root, &layer[..], u64::MAX).unwrap();
        assert_eq!(
            fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("/bin/busybox")
        );
        assert_eq!(read(root, "bin/tr").as_deref(), Some("#!"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(root.join("bin/tr")).unwrap().ino(),
            fs::metadata(root.join("bin/busybox")).unwrap().ino()
        );
    }

    #[test]
    fn a_layer_cannot_write_outside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        let escape = outside.path().to_str().unwrap();
        // A link to a host directory, then files written through it by a later layer.
        let lower = Layer::default()
            .link(EntryType::Symlink, "escape", escape)
            .link(EntryType::Symlink, "up", "../../../../..")
            .bytes();
        apply_layer(root, &lower[..], u64::MAX).unwrap();
        let upper = Layer::default()
            .file("escape/planted", "x")
            .file("up/tmp/planted", "x")
            .bytes();
        apply_layer(root, &upper[..], u64::MAX).unwrap();
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
        // Both landed where the image sees them: under its own root.
        assert_eq!(
            read(root, &format!("{}/planted", &escape[1..])).as_deref(),
            Some("x")
        );
        assert_eq!(read(root, "tmp/planted").as_deref(), Some("x"));

        let climbing = Layer::default().file("../planted", "x").bytes();
        let err = apply_layer(root, &climbing[..], u64::MAX).unwrap_err();
        assert!(err.to_string().contains("climbs out"), "{err}");
        // A hard link to a host file is a link to the image's file of that name.
        let hard = Layer::default()
            .link(EntryType::Link, "passwd", "/etc/passwd")
            .bytes();
        assert!(apply_layer(root, &hard[..], u64::MAX).is_err());
    }

    #[test]
    fn a_layer_that_unpacks_past_the_budget_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 3 << 20];
        let bomb = Layer::default()
            .file("a", std::str::from_utf8(&zeros).unwrap())
            .gzip();
        assert!(bomb.len() < 64 << 10, "compressed to {} bytes", bomb.len());
        let err = apply_layer(root.path(), &bomb[..], 2 << 20).unwrap_err();
        assert!(err.to_string().contains("more than 2 MB"), "{err}");
        assert!(fs::metadata(root.path().join("a")).unwrap().len() <= (2 << 20) + 1);
        assert_eq!(
            apply_layer(root.path(), &bomb[..], 4 << 20).unwrap(),
            3 << 20
        );
    }

    #[test]
    fn zstd_layers_are_refused_with_a_reason() {
        let root = tempfile::tempdir().unwrap();
        let err = apply_layer(root.path(), &[0x28, 0xb5, 0x2f, 0xfd, 0][..], u64::MAX).unwrap_err();
        assert!(err.to_string().contains("zstd"), "{err}");
    }

    #[test]
    fn resolving_follows_links_within_the_root() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("/lib/../../..", root.join("loop")).unwrap();
        assert_eq!(
            resolve(root, Path::new("lib/x")).unwrap(),
            root.join("usr/lib/x")
        );
        assert_eq!(
            resolve(root, Path::new("loop/etc")).unwrap(),
            root.join("etc")
        );
        std::os::unix::fs::symlink("self", root.join("self")).unwrap();
        assert!(resolve(root, Path::new("self/x")).is_err());
    }
}
