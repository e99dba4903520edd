//! Sealing of credentials and the external ID with AES-SIV (R14).
//!
//! A sealed value reads `siv1:<key id>:<base64 of nonce and ciphertext>`; the key id lets a
//! key ring holding old and new keys open values sealed before a rotation. The key file holds
//! one base64 key per line, the last being the one that seals.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use aes_siv::aead::{Aead, KeyInit};
use aes_siv::{Aes256SivAead, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "siv1";

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    KeyFile {
        /// The key file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The key file is there but holds no usable key.
    #[error("key file {0}: expected one base64-encoded 64-byte key per line")]
    MalformedKeyFile(String),
    /// A sealed value names a key this ring does not have.
    #[error("sealed with key {0}, which is not in the key file")]
    UnknownKey(String),
    /// A sealed value is damaged or was sealed under a different key.
    #[error("sealed value cannot be opened")]
    Corrupt,
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself; call only where it is about to be used.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

/// What every redacted value prints.
const REDACTED: &str = "[redacted]";

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `Debug` for a type that holds role ARNs or session names, which are stored only sealed
/// (R14) and so never printed either: `Name([redacted])`.
pub fn debug_redacted(f: &mut fmt::Formatter<'_>, name: &str) -> fmt::Result {
    write!(f, "{name}({REDACTED})")
}

/// A sealed value as stored in events and tables.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a stored form read back from the store.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    /// The id of the key it is sealed under.
    pub fn key_id(&self) -> Option<&str> {
        let mut parts = self.0.splitn(3, ':');
        (parts.next() == Some(PREFIX))
            .then(|| parts.next())
            .flatten()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({})", self.key_id().unwrap_or("?"))
    }
}

struct SealingKey {
    id: String,
    cipher: Aes256SivAead,
}

impl SealingKey {
    fn new(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            id: hex::encode(&Sha256::digest(bytes)[..4]),
            cipher: Aes256SivAead::new(&Key::<Aes256SivAead>::try_from(bytes).ok()?),
        })
    }
}

/// The keys that open sealed values; the last one seals new ones.
///
/// A ring loaded from a file follows it: when `orgsync rotate-key` has changed the file, the
/// next seal uses the new key and a value sealed under a key not yet loaded is opened after
/// reading the file again, so a running daemon keeps working through a rotation.
pub struct KeyRing {
    file: Option<PathBuf>,
    keys: RwLock<Loaded>,
}

struct Loaded {
    modified: Option<SystemTime>,
    keys: Vec<SealingKey>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CryptoError + '_ {
    move |source| CryptoError::KeyFile {
        path: path.display().to_string(),
        source,
    }
}

fn new_key_line() -> String {
    let mut key = [0u8; 64];
    OsRng.fill_bytes(&mut key);
    format!("{}\n", B64.encode(key))
}

impl KeyRing {
    /// Creates the key file with one fresh key (mode 0600) and loads it; fails if it exists.
    pub fn create(path: &Path) -> Result<Self, CryptoError> {
        write_private(path, new_key_line().as_bytes()).map_err(io_error(path))?;
        Self::load(path)
    }

    /// Loads the key file.
    pub fn load(path: &Path) -> Result<Self, CryptoError> {
        Ok(Self {
            file: Some(path.to_path_buf()),
            keys: RwLock::new(Self::read(path)?),
        })
    }

    fn read(path: &Path) -> Result<Loaded, CryptoError> {
        let modified = modified(path);
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let keys = Self::parse(&text)
            .ok_or_else(|| CryptoError::MalformedKeyFile(path.display().to_string()))?;
        Ok(Loaded { modified, keys })
    }

    fn parse(text: &str) -> Option<Vec<SealingKey>> {
        let keys = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| {
                B64.decode(line)
                    .ok()
                    .and_then(|bytes| SealingKey::new(&bytes))
            })
            .collect::<Option<Vec<_>>>()?;
        (!keys.is_empty()).then_some(keys)
    }

    /// Reads the key file again if it changed since it was loaded. A file that cannot be
    /// read keeps the keys in memory: they still open and seal correctly.
    fn refresh(&self) {
        let Some(path) = &self.file else { return };
        if modified(path) == self.keys.read().expect("key ring poisoned").modified {
            return;
        }
        match Self::read(path) {
            Ok(mut loaded) => {
                let mut current = self.keys.write().expect("key ring poisoned");
                // Keys dropped from the file stay usable in memory until the process ends.
                for old in current.keys.drain(..) {
                    if !loaded.keys.iter().any(|k| k.id == old.id) {
                        loaded.keys.insert(0, old);
                    }
                }
                *current = loaded;
            }
            Err(e) => tracing::warn!(error = %e, "cannot reload the key file"),
        }
    }

    /// The id of the key that seals now.
    pub fn current_key_id(&self) -> String {
        self.refresh();
        let loaded = self.keys.read().expect("key ring poisoned");
        loaded
            .keys
            .last()
            .expect("a key ring holds at least one key")
            .id
            .clone()
    }

    /// Seals `plaintext` under the current key.
    pub fn seal(&self, plaintext: &[u8]) -> Sealed {
        self.refresh();
        let loaded = self.keys.read().expect("key ring poisoned");
        let key = loaded
            .keys
            .last()
            .expect("a key ring holds at least one key");
        let mut nonce = Nonce::default();
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = key
            .cipher
            .encrypt(&nonce, plaintext)
            .expect("AES-SIV encryption does not fail on in-memory input");
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Sealed(format!("{PREFIX}:{}:{}", key.id, B64.encode(blob)))
    }

    /// Opens a value sealed under any key of the ring.
    pub fn open(&self, sealed: &Sealed) -> Result<Secret<Vec<u8>>, CryptoError> {
        match self.open_loaded(sealed) {
            Err(CryptoError::UnknownKey(_)) => {
                self.refresh();
                self.open_loaded(sealed)
            }
            other => other,
        }
    }

    fn open_loaded(&self, sealed: &Sealed) -> Result<Secret<Vec<u8>>, CryptoError> {
        let mut parts = sealed.0.splitn(3, ':');
        let (Some(PREFIX), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CryptoError::Corrupt);
        };
        let loaded = self.keys.read().expect("key ring poisoned");
        let key = loaded
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        let blob = B64.decode(body).map_err(|_| CryptoError::Corrupt)?;
        if blob.len() < 16 {
            return Err(CryptoError::Corrupt);
        }
        let (nonce, ciphertext) = blob.split_at(16);
        let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Corrupt)?;
        key.cipher
            .decrypt(&nonce, ciphertext)
            .map(Secret::new)
            .map_err(|_| CryptoError::Corrupt)
    }

    /// Opens `sealed` and seals it again under the current key; `None` when it already is.
    pub fn reseal(&self, sealed: &Sealed) -> Result<Option<Sealed>, CryptoError> {
        if sealed.key_id() == Some(self.current_key_id().as_str()) {
            return Ok(None);
        }
        Ok(Some(self.seal(self.open(sealed)?.expose())))
    }

    /// Seals a value serialized as JSON.
    pub fn seal_json<T: Serialize>(&self, value: &T) -> Sealed {
        self.seal(&serde_json::to_vec(value).expect("sealed values serialize"))
    }

    /// Opens a value sealed with [`KeyRing::seal_json`].
    pub fn open_json<T: for<'de> Deserialize<'de>>(
        &self,
        sealed: &Sealed,
    ) -> Result<Secret<T>, CryptoError> {
        let bytes = self.open(sealed)?;
        serde_json::from_slice(bytes.expose())
            .map(Secret::new)
            .map_err(|_| CryptoError::Corrupt)
    }
}

/// Adds a fresh key to the key file; it seals from now on. Returns its id.
pub fn add_key(path: &Path) -> Result<String, CryptoError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let text = format!("{}\n{}", text.trim_end(), new_key_line());
    replace_private(path, text.as_bytes()).map_err(io_error(path))?;
    Ok(KeyRing::load(path)?.current_key_id())
}

/// Keeps only the current (last) key in the key file.
pub fn drop_old_keys(path: &Path) -> Result<(), CryptoError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .ok_or_else(|| CryptoError::MalformedKeyFile(path.display().to_string()))?;
    replace_private(path, format!("{last}\n").as_bytes()).map_err(io_error(path))
}

/// Replaces a private file atomically: write a sibling, then rename over.
fn replace_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let staging = path.with_extension("rotating");
    let _ = std::fs::remove_file(&staging);
    write_private(&staging, contents)?;
    std::fs::rename(&staging, path)
}

/// Creates `dir` and its missing parents so that only their owner can enter them (0700);
/// existing ones are left as they are.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes a file only its owner can read, replacing none: fails if the file exists. Its
/// missing directories are made private.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A random string of `len` letters and digits from the operating system's CSPRNG.
pub fn random_token(len: usize) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut OsRng, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing {
            file: None,
            keys: RwLock::new(Loaded {
                modified: None,
                keys: KeyRing::parse(&B64.encode([7u8; 64])).unwrap(),
            }),
        }
    }

    #[test]
    fn sealed_values_open_and_hide_the_plaintext() {
        let ring = ring();
        let sealed = ring.seal(b"arn:aws:iam::111122223333:role/Secret");
        assert!(!sealed.as_str().contains("Secret"));
        assert!(sealed.as_str().starts_with("siv1:"));
        assert_eq!(
            ring.open(&sealed).unwrap().expose(),
            b"arn:aws:iam::111122223333:role/Secret"
        );
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let ring = ring();
        assert_ne!(ring.seal(b"x").as_str(), ring.seal(b"x").as_str());
    }

    #[test]
    fn tampered_values_are_refused() {
        let ring = ring();
        let mut stored = ring.seal(b"secret").as_str().to_owned();
        let last = stored.pop().unwrap();
        stored.push(if last == 'A' { 'B' } else { 'A' });
        assert!(ring.open(&Sealed::from_stored(stored)).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
    }

    #[test]
    fn key_file_is_created_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orgsync.key");
        let first = KeyRing::create(&path).unwrap();
        assert!(
            KeyRing::create(&path).is_err(),
            "an existing key file is kept"
        );
        let again = KeyRing::load(&path).unwrap();
        let sealed = first.seal(b"v");
        assert_eq!(again.open(&sealed).unwrap().expose(), b"v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn r14_a_rotated_key_seals_and_old_values_still_open_until_resealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orgsync.key");
        let daemon = KeyRing::create(&path).unwrap();
        let before = daemon.seal(b"secret");
        let old_id = daemon.current_key_id();

        let new_id = add_key(&path).unwrap();
        assert_ne!(new_id, old_id);
        // The running ring follows the file: it seals under the new key…
        assert_eq!(daemon.current_key_id(), new_id);
        let resealed = daemon
            .reseal(&before)
            .unwrap()
            .expect("sealed under the old key");
        assert_eq!(resealed.key_id(), Some(new_id.as_str()));
        assert!(daemon.reseal(&resealed).unwrap().is_none());
        // …and once the old key is dropped from the file, a fresh ring opens only new values.
        drop_old_keys(&path).unwrap();
        let fresh = KeyRing::load(&path).unwrap();
        assert_eq!(fresh.open(&resealed).unwrap().expose(), b"secret");
        assert!(matches!(
            fresh.open(&before),
            Err(CryptoError::UnknownKey(_))
        ));
        // The daemon, which loaded the old key before, still opens what it sealed with it.
        assert_eq!(daemon.open(&before).unwrap().expose(), b"secret");
    }
}
