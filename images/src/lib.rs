//! Container images for embedded mode: a service's image pulled from its OCI registry and
//! unpacked into a root file system its jobs run in.
//!
//! The cache lives in one directory: `blobs/` holds layers by digest (shared by every image
//! that has them, verified as they arrive), `roots/` one unpacked root per image manifest
//! (shared by every service on that image), `index.json` what is there, how big and when it
//! was last used. Pulls of one image are coalesced; a tag is re-resolved at most every
//! `tag_refresh` (a digest never is) and, when its registry cannot be reached, the last digest
//! it named is used. Beyond `limit` bytes, the least recently used images no job is using are
//! evicted.

mod registry;
pub mod unpack;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oci_client::Reference;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

pub use registry::{Credentials, Mirror, registry_host, registry_of, repository_of};
use registry::{Registries, Source};

/// Largest image configuration read (they are a few kilobytes).
const MAX_CONFIG: u64 = 4 << 20;

/// How the cache is set up (`OSCAR_IMAGE_*`, `OSCAR_REGISTRY_MIRRORS`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub dir: PathBuf,
    /// Bytes of layers and roots kept; least recently used images beyond it are evicted.
    pub limit: u64,
    /// How long a tag's digest is trusted before the registry is asked again.
    pub tag_refresh: Duration,
    pub mirrors: Vec<Mirror>,
    /// Registries (`host[:port]`) spoken to over plain HTTP besides those on loopback.
    pub insecure: Vec<String>,
}

/// An image ready to run: its root file system and what its configuration asks of processes.
/// The image is not evicted while this value lives.
#[derive(Debug)]
pub struct Image {
    pub digest: String,
    pub root: PathBuf,
    pub config: ImageConfig,
    _in_use: InUse,
}

/// What the image's configuration says about the processes it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `NAME=value` entries (`PATH` among them).
    pub env: Vec<String>,
    /// The image's own command (an exposed service with `default_command`): entrypoint, then
    /// its arguments, in the working directory. Empty in caches written before they were kept.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
}

impl ImageConfig {
    /// What a container of the image runs when nothing overrides it.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

pub struct Images {
    settings: Settings,
    registries: Registries,
    state: Mutex<State>,
    /// One lock per image reference: a second pull of it waits for the first.
    pulls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Pulls under way: bytes of layers received and expected.
    progress: Mutex<HashMap<String, Arc<Progress>>>,
}

#[derive(Default)]
struct State {
    index: Index,
    /// Jobs using each image (by digest), which eviction skips.
    in_use: HashMap<String, usize>,
    /// When each tag was last resolved by its registry.
    resolved: HashMap<String, Instant>,
    /// Layers being pulled, not in the index yet, which eviction leaves alone.
    pending: HashMap<String, usize>,
    /// Private images (by digest) the registry let these credentials have.
    granted: std::collections::HashSet<(String, Credentials)>,
}

/// What `index.json` records.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    /// By manifest digest.
    images: BTreeMap<String, Entry>,
    /// The digest each tag named when last resolved.
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    layers: Vec<String>,
    config: ImageConfig,
    /// Bytes of the unpacked root.
    size: u64,
    /// Pulled with credentials: served from the cache only to callers the registry let have
    /// it, never to another tenant who merely names it.
    #[serde(default)]
    private: bool,
    /// Seconds since the epoch.
    last_used: u64,
}

#[derive(Default)]
struct Progress {
    received: AtomicU64,
    expected: AtomicU64,
}

/// Keeps an image from eviction while a job uses it.
#[derive(Debug)]
struct InUse {
    images: Arc<Images>,
    digest: String,
}

impl Drop for InUse {
    fn drop(&mut self) {
        let mut state = self.images.state();
        if let Some(count) = state.in_use.get_mut(&self.digest) {
            *count -= 1;
            if *count == 0 {
                state.in_use.remove(&self.digest);
            }
        }
    }
}

/// Marks a pull's layers as wanted until its image is in the index.
struct Pending {
    images: Arc<Images>,
    layers: Vec<String>,
}

impl Pending {
    fn new(images: Arc<Images>, layers: Vec<String>) -> Self {
        let mut state = images.state();
        for layer in &layers {
            *state.pending.entry(layer.clone()).or_default() += 1;
        }
        drop(state);
        Self { images, layers }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut state = self.images.state();
        for layer in &self.layers {
            if let Some(count) = state.pending.get_mut(layer) {
                *count -= 1;
                if *count == 0 {
                    state.pending.remove(layer);
                }
            }
        }
    }
}

impl std::fmt::Debug for Images {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Images")
            .field("dir", &self.settings.dir)
            .finish()
    }
}

impl Images {
    /// Opens the cache in `settings.dir`, dropping what an interrupted pull or eviction left.
    pub fn open(settings: Settings) -> std::io::Result<Arc<Self>> {
        for dir in ["blobs", "roots"] {
            std::fs::create_dir_all(settings.dir.join(dir))?;
        }
        let index: Index = match std::fs::read(settings.dir.join("index.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(%e, "the image cache's index is unreadable; starting empty");
                Index::default()
            }),
            Err(_) => Index::default(),
        };
        let images = Arc::new(Self {
            registries: Registries::new(settings.mirrors.clone(), settings.insecure.clone()),
            settings,
            state: Mutex::new(State {
                index,
                ..State::default()
            }),
            pulls: Mutex::default(),
            progress: Mutex::default(),
        });
        images.sweep()?;
        Ok(images)
    }

    /// How far the pull of `image` is, in percent, while one runs.
    pub fn pulling(&self, image: &str) -> Option<u8> {
        let progress = self.progress.lock().expect("progress").get(image)?.clone();
        let expected = progress.expected.load(Ordering::Relaxed).max(1);
        let received = progress.received.load(Ordering::Relaxed).min(expected);
        Some((received * 100 / expected) as u8)
    }

    /// The image named `image`, pulled first unless the cache has it.
    pub async fn prepare(
        self: &Arc<Self>,
        image: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Image, String> {
        let reference: Reference = image
            .parse()
            .map_err(|e| format!("{image:?} is not an image reference: {e}"))?;
        let lock = self
            .pulls
            .lock()
            .expect("pulls")
            .entry(reference.whole())
            .or_default()
            .clone();
        let _pulling = lock.lock().await;
        if let Some(digest) = self.cached_digest(&reference, credentials) {
            return Ok(self.take(&digest).expect("cached image"));
        }
        let sources = self.registries.sources(&reference, credentials);
        let (source, manifest, digest) = match self.manifest(&reference, &sources).await {
            Ok(found) => found,
            Err(why) => {
                // Offline (an edge box): the digest the tag last named, if it is here.
                let last = self.state().index.tags.get(&reference.whole()).cloned();
                let usable = last.filter(|digest| self.may_use(digest, credentials));
                if let Some(image) = usable.and_then(|digest| self.take(&digest)) {
                    tracing::warn!(image = %reference, %why, "using the image the tag last named");
                    return Ok(image);
                }
                return Err(why);
            }
        };
        self.remember_tag(&reference, &digest);
        if let Some(credentials) = credentials {
            self.state()
                .granted
                .insert((digest.clone(), credentials.clone()));
        }
        if let Some(image) = self.take(&digest) {
            return Ok(image);
        }
        let progress = Arc::new(Progress::default());
        self.progress
            .lock()
            .expect("progress")
            .insert(image.to_string(), progress.clone());
        let private = credentials.is_some();
        let pulled = self
            .pull(source, &manifest, &digest, private, &progress)
            .await;
        self.progress.lock().expect("progress").remove(image);
        pulled?;
        Ok(self.take(&digest).expect("pulled image"))
    }

    /// The digest to use without asking the registry: a digest reference's own, or a tag's
    /// resolved recently enough; None when the image is not cached or is private and these
    /// credentials were not shown to give it.
    fn cached_digest(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Option<String> {
        let digest = self.known_digest(reference)?;
        self.may_use(&digest, credentials).then_some(digest)
    }

    /// Whether the cached image `digest` may serve a caller with `credentials`.
    fn may_use(&self, digest: &str, credentials: Option<&Credentials>) -> bool {
        let state = self.state();
        let Some(entry) = state.index.images.get(digest) else {
            return false;
        };
        !entry.private
            || credentials.is_some_and(|c| state.granted.contains(&(digest.to_string(), c.clone())))
    }

    fn known_digest(&self, reference: &Reference) -> Option<String> {
        let state = self.state();
        let digest = match reference.digest() {
            Some(digest) => digest.to_string(),
            None => {
                let whole = reference.whole();
                let fresh = state
                    .resolved
                    .get(&whole)
                    .is_some_and(|at| at.elapsed() < self.settings.tag_refresh);
                state.index.tags.get(&whole).filter(|_| fresh)?.clone()
            }
        };
        state.index.images.contains_key(&digest).then_some(digest)
    }

    fn remember_tag(&self, reference: &Reference, digest: &str) {
        if reference.digest().is_some() {
            return;
        }
        let mut state = self.state();
        let whole = reference.whole();
        state.resolved.insert(whole.clone(), Instant::now());
        state.index.tags.insert(whole, digest.to_string());
        self.save(&state.index);
    }

    /// The image's manifest for this platform, from the first source that has it.
    async fn manifest<'s>(
        &self,
        reference: &Reference,
        sources: &'s [Source],
    ) -> Result<(&'s Source, OciImageManifest, String), String> {
        let mut why = String::new();
        for source in sources {
            match source
                .client
                .pull_image_manifest(&source.reference, &source.auth)
                .await
            {
                Ok((manifest, digest)) => return Ok((source, manifest, digest)),
                Err(e) => {
                    why = registry_error(&source.reference, e);
                    tracing::debug!(image = %source.reference, %why, "no manifest here");
                }
            }
        }
        Err(format!("cannot pull {reference}: {why}"))
    }

    async fn pull(
        self: &Arc<Self>,
        source: &Source,
        manifest: &OciImageManifest,
        digest: &str,
        private: bool,
        progress: &Progress,
    ) -> Result<(), String> {
        let image = &source.reference;
        let config = self.config(source, &manifest.config).await?;
        let compressed: u64 = manifest.layers.iter().map(|l| l.size.max(0) as u64).sum();
        if compressed > self.settings.limit {
            return Err(format!(
                "{image} has {} MB of layers, more than the image cache holds ({} MB, OSCAR_IMAGE_CACHE_LIMIT)",
                compressed >> 20,
                self.settings.limit >> 20
            ));
        }
        progress.expected.store(compressed, Ordering::Relaxed);
        let layers: Vec<String> = manifest.layers.iter().map(|l| l.digest.clone()).collect();
        let _pending = Pending::new(self.clone(), layers.clone());
        for layer in &manifest.layers {
            self.fetch_blob(source, layer, progress).await?;
        }
        let (root, dir) = (self.root(digest)?, self.settings.dir.clone());
        let blobs = layers
            .iter()
            .map(|layer| self.blob(layer))
            .collect::<Result<Vec<_>, _>>()?;
        let limit = self.settings.limit;
        let size = tokio::task::spawn_blocking(move || unpack_root(&dir, &root, &blobs, limit))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::FileTooLarge => format!(
                    "cannot unpack {image}: {e}, the image cache's limit (OSCAR_IMAGE_CACHE_LIMIT)"
                ),
                _ => format!("cannot unpack {image}: {e}"),
            })?;
        let mut state = self.state();
        state.index.images.insert(
            digest.to_string(),
            Entry {
                layers,
                config,
                size,
                private,
                last_used: now(),
            },
        );
        self.evict(&mut state, digest);
        self.save(&state.index);
        tracing::info!(%image, %digest, size, "image pulled");
        Ok(())
    }

    /// The image's configuration, refused when it is for another platform.
    async fn config(
        &self,
        source: &Source,
        descriptor: &OciDescriptor,
    ) -> Result<ImageConfig, String> {
        if descriptor.size > MAX_CONFIG as i64 {
            return Err(format!(
                "{}'s configuration is {} bytes, more than the {MAX_CONFIG} an image's may be",
                source.reference, descriptor.size
            ));
        }
        let mut bytes = Vec::new();
        let capped = Counted {
            inner: &mut bytes,
            progress: None,
            written: 0,
            declared: descriptor.size.max(0) as u64,
        };
        source
            .client
            .pull_blob(&source.reference, descriptor, capped)
            .await
            .map_err(|e| registry_error(&source.reference, e))?;
        let file: ConfigFile = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}'s configuration is unreadable: {e}", source.reference))?;
        let (os, architecture) = platform();
        if file.os != os || file.architecture != architecture {
            return Err(format!(
                "{} is built for {}/{}, and this machine is {os}/{architecture}",
                source.reference, file.os, file.architecture
            ));
        }
        let config = file.config.unwrap_or_default();
        Ok(ImageConfig {
            env: config.env.unwrap_or_default(),
            entrypoint: config.entrypoint.unwrap_or_default(),
            cmd: config.cmd.unwrap_or_default(),
            working_dir: config.working_dir.unwrap_or_default(),
        })
    }

    /// A layer into `blobs/`, unless it is there: written under a temporary name, verified by
    /// oci-client against its digest, then renamed.
    async fn fetch_blob(
        &self,
        source: &Source,
        layer: &OciDescriptor,
        progress: &Progress,
    ) -> Result<(), String> {
        let path = self.blob(&layer.digest)?;
        if path.exists() {
            progress
                .received
                .fetch_add(layer.size.max(0) as u64, Ordering::Relaxed);
            return Ok(());
        }
        let partial = path.with_extension(format!("partial-{}", unique()));
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(|e| format!("cannot write to the image cache: {e}"))?;
        let counted = Counted {
            inner: file,
            progress: Some(progress),
            written: 0,
            declared: layer.size.max(0) as u64,
        };
        let pulled = source
            .client
            .pull_blob(&source.reference, layer, counted)
            .await;
        if let Err(e) = pulled {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(registry_error(&source.reference, e));
        }
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| format!("cannot write to the image cache: {e}"))
    }

    /// The cached image `digest`, marked used now; None when it is not cached.
    fn take(self: &Arc<Self>, digest: &str) -> Option<Image> {
        let mut state = self.state();
        let entry = state.index.images.get_mut(digest)?;
        entry.last_used = now();
        let config = entry.config.clone();
        *state.in_use.entry(digest.to_string()).or_default() += 1;
        Some(Image {
            digest: digest.to_string(),
            root: self.root(digest).ok()?,
            config,
            _in_use: InUse {
                images: self.clone(),
                digest: digest.to_string(),
            },
        })
    }

    /// Evicts the least recently used images no job uses (never `keep`) until the cache is
    /// within its limit, with the layers no other image has.
    fn evict(&self, state: &mut State, keep: &str) {
        let mut used = self.usage(&state.index);
        while used > self.settings.limit {
            let victim = state
                .index
                .images
                .iter()
                .filter(|(digest, _)| *digest != keep && !state.in_use.contains_key(*digest))
                .min_by_key(|(_, entry)| entry.last_used)
                .map(|(digest, _)| digest.clone());
            let Some(victim) = victim else {
                tracing::warn!(
                    used,
                    limit = self.settings.limit,
                    "the image cache is over its limit; every image in it is in use"
                );
                return;
            };
            let entry = state.index.images.remove(&victim).expect("a cached image");
            state.index.tags.retain(|_, digest| *digest != victim);
            tracing::info!(image = %victim, "evicted from the image cache");
            if let Ok(root) = self.root(&victim) {
                remove_tree(&root);
            }
            used = used.saturating_sub(entry.size + self.drop_unused_blobs(state));
        }
    }

    /// Bytes the cache holds: every root, and every blob once.
    fn usage(&self, index: &Index) -> u64 {
        let roots: u64 = index.images.values().map(|e| e.size).sum();
        let blobs: u64 = std::fs::read_dir(self.settings.dir.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| entry.metadata().ok())
            .map(|meta| meta.len())
            .sum();
        roots + blobs
    }

    /// Removes layers no cached image has, except those of pulls under way (and their
    /// partial files).
    /// Returns the bytes removed.
    fn drop_unused_blobs(&self, state: &State) -> u64 {
        let used: std::collections::HashSet<PathBuf> = state
            .index
            .images
            .values()
            .flat_map(|entry| &entry.layers)
            .chain(state.pending.keys())
            .filter_map(|layer| self.blob(layer).ok())
            .collect();
        let mut freed = 0;
        for entry in std::fs::read_dir(self.settings.dir.join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let path = entry.path();
            let partial = path
                .extension()
                .is_some_and(|e| e.to_string_lossy().starts_with("partial"));
            // A partial file is some pull's, under way while any is.
            let pulling = partial && !state.pending.is_empty();
            if !used.contains(&path) && !pulling {
                let size = entry.metadata().map_or(0, |m| m.len());
                if std::fs::remove_file(&path).is_ok() {
                    freed += size;
                }
            }
        }
        freed
    }

    /// Drops roots and blobs the index does not know: an interrupted pull's or eviction's.
    fn sweep(&self) -> std::io::Result<()> {
        let state = self.state();
        let known: std::collections::HashSet<PathBuf> = state
            .index
            .images
            .keys()
            .filter_map(|digest| self.root(digest).ok())
            .collect();
        for entry in std::fs::read_dir(self.settings.dir.join("roots"))? {
            let path = entry?.path();
            if !known.contains(&path) {
                remove_tree(&path);
            }
        }
        self.drop_unused_blobs(&state);
        Ok(())
    }

    fn save(&self, index: &Index) {
        let path = self.settings.dir.join("index.json");
        let partial = path.with_extension("json.partial");
        let written = serde_json::to_vec(index)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&partial, bytes))
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(e) = written {
            tracing::warn!(%e, "cannot save the image cache's index");
        }
    }

    fn blob(&self, digest: &str) -> Result<PathBuf, String> {
        Ok(self.settings.dir.join("blobs").join(file_name(digest)?))
    }

    fn root(&self, digest: &str) -> Result<PathBuf, String> {
        Ok(self.settings.dir.join("roots").join(file_name(digest)?))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("image cache state")
    }
}

/// A digest as a file name: `sha256-<hex>`. Anything else (a path) is refused.
fn file_name(digest: &str) -> Result<String, String> {
    match digest.split_once(':') {
        Some((algorithm, hex))
            if !algorithm.is_empty()
                && algorithm.chars().all(|c| c.is_ascii_alphanumeric())
                && !hex.is_empty()
                && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Ok(format!("{algorithm}-{hex}"))
        }
        _ => Err(format!("{digest:?} is not a digest")),
    }
}

/// Unpacks `blobs` in order into a new root of at most `limit` bytes of files, renamed to
/// `root` once whole. Returns its size.
fn unpack_root(dir: &Path, root: &Path, blobs: &[PathBuf], limit: u64) -> std::io::Result<u64> {
    let partial = dir.join("roots").join(format!(".partial-{}", unique()));
    std::fs::create_dir(&partial)?;
    let unpacked = (|| {
        let mut written = 0;
        for blob in blobs {
            let budget = limit.saturating_sub(written);
            written += unpack::apply_layer(&partial, std::fs::File::open(blob)?, budget)?;
        }
        make_mount_points(&partial)
    })();
    if let Err(e) = unpacked {
        remove_tree(&partial);
        return Err(e);
    }
    let size = disk_usage(&partial);
    if std::fs::rename(&partial, root).is_err() {
        // Another pull of the same manifest under another name finished first.
        remove_tree(&partial);
    }
    Ok(size)
}

/// What the sandbox mounts over, made real (a symlink there could point anywhere) and present
/// (the root is bound read-only, so nothing can be created in it at run time).
fn make_mount_points(root: &Path) -> std::io::Result<()> {
    for dir in ["proc", "dev", "tmp", "etc", "oscar"] {
        let path = root.join(dir);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_file(&path);
            std::fs::create_dir(&path)?;
        }
    }
    for file in ["etc/resolv.conf", "etc/hosts"] {
        let path = root.join(file);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&path)?;
            } else {
                let _ = std::fs::remove_file(&path);
            }
            std::fs::write(&path, "")?;
        }
    }
    Ok(())
}

/// Bytes a tree takes on disk, each hard-linked file once.
fn disk_usage(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if seen.insert((meta.dev(), meta.ino())) {
            total += meta.blocks() * 512;
        }
        if meta.is_dir() {
            pending.extend(
                std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    total
}

/// Removes a root, whose directories the image may have made read-only.
fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
            pending.extend(
                std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
    }
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %e, "cannot remove from the image cache");
    }
}

/// The OCI names of this machine's OS and architecture.
fn platform() -> (&'static str, &'static str) {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    ("linux", architecture)
}

/// A registry's failure as a user reads it: what was refused or missing, by whom.
fn registry_error(image: &Reference, error: oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::AuthenticationFailure(why) => {
            format!(
                "{} refused the credentials: {why}",
                image.resolve_registry()
            )
        }
        E::UnauthorizedError { .. } => format!(
            "{} needs credentials for {image} (image_pull_secrets)",
            image.resolve_registry()
        ),
        E::ImageManifestNotFoundError(why) if why.contains("platform") => {
            let (os, architecture) = platform();
            format!("{image} has no variant for {os}/{architecture}")
        }
        E::ImageManifestNotFoundError(_) => format!("{image} does not exist"),
        E::RegistryError { envelope, .. } => format!(
            "{} answered: {}",
            image.resolve_registry(),
            envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ")
        ),
        // Not the body: a reference can name any host, and its answer is not the user's to
        // read. The server's log has it.
        E::ServerError { code, url, message } => {
            tracing::warn!(%image, %url, code, %message, "the registry answered with an error");
            format!("{} answered HTTP {code}", image.resolve_registry())
        }
        other => format!("{}: {other}", image.resolve_registry()),
    }
}

/// The parts of an image configuration (OCI image-spec `config.json`) jobs need.
#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    config: Option<ProcessConfig>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessConfig {
    env: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    working_dir: Option<String>,
}

/// Counts bytes into a pull's progress as they are written, and refuses more than the
/// manifest declared: a registry cannot fill the disk or memory by sending more.
struct Counted<'p, W> {
    inner: W,
    progress: Option<&'p Progress>,
    written: u64,
    declared: u64,
}

impl<W: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<'_, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.written + buf.len() as u64 > self.declared {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the registry sent more than the {} bytes the manifest declares",
                self.declared
            ))));
        }
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(written)) = poll {
            self.written += written as u64;
            if let Some(progress) = self.progress {
                progress
                    .received
                    .fetch_add(written as u64, Ordering::Relaxed);
            }
        }
        poll
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_file_names_and_nothing_else() {
        assert_eq!(file_name("sha256:00ff").unwrap(), "sha256-00ff");
        for bad in ["sha256:../x", "../x", "sha256:", ":00", "sha/256:00"] {
            assert!(file_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_points_replace_links_an_image_put_there() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path();
        std::fs::create_dir(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/run/resolv.conf", root.join("etc/resolv.conf")).unwrap();
        std::os::unix::fs::symlink("/var/tmp", root.join("tmp")).unwrap();
        make_mount_points(root).unwrap();
        assert!(
            std::fs::symlink_metadata(root.join("etc/resolv.conf"))
                .unwrap()
                .is_file()
        );
        assert!(
            std::fs::symlink_metadata(root.join("tmp"))
                .unwrap()
                .is_dir()
        );
        assert!(root.join("oscar").is_dir() && root.join("proc").is_dir());
    }
}
