//! The node's signing keys and revoked token ids, kept in `<node>/auth/`
//! (files readable by the node's user only): `keys.json` holds the root key
//! (signs the root credential only, never rotates by itself) and the
//! rotating HS256 keys; `revoked.json` the ids of revoked tokens and
//! sessions until they would have expired anyway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AuthError;

/// The `kid` of the root key.
pub(crate) const ROOT_KID: &str = "root";

/// One HS256 key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Key {
    /// Its id, in the token header.
    pub(crate) kid: String,
    /// Hex of 32 random bytes.
    secret: String,
    /// When it was made, seconds since the epoch.
    pub(crate) created_at: u64,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key").field("kid", &self.kid).finish()
    }
}

impl Key {
    fn generate(kid: String, now: u64) -> Key {
        Key {
            kid,
            secret: hex::encode(rand::random::<[u8; 32]>()),
            created_at: now,
        }
    }

    /// A new root key.
    pub(crate) fn generate_root(now: u64) -> Key {
        Key::generate(ROOT_KID.into(), now)
    }

    /// The secret bytes.
    pub(crate) fn secret(&self) -> Vec<u8> {
        hex::decode(&self.secret).unwrap_or_default()
    }
}

/// What `keys.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Keyring {
    /// Signs the root credential.
    pub(crate) root: Key,
    /// Newest last; the last signs new tokens.
    pub(crate) signing: Vec<Key>,
}

impl Keyring {
    /// Fresh keys.
    pub(crate) fn generate(now: u64) -> Keyring {
        Keyring {
            root: Key::generate(ROOT_KID.into(), now),
            signing: vec![Key::generate(new_kid(), now)],
        }
    }

    /// The key that signs new tokens.
    pub(crate) fn current(&self) -> Option<&Key> {
        self.signing.last()
    }

    /// The key with id `kid`, if it is still accepted.
    pub(crate) fn find(&self, kid: &str) -> Option<&Key> {
        if kid == ROOT_KID {
            return Some(&self.root);
        }
        self.signing.iter().find(|k| k.kid == kid)
    }

    /// Starts signing with a new key. Earlier keys stay accepted for
    /// `keep_secs` after the rotation (so tokens they signed run out
    /// naturally) unless `retire` drops them now.
    pub(crate) fn rotate(&mut self, now: u64, keep_secs: u64, retire: bool) {
        if retire {
            self.signing.clear();
        }
        self.signing.push(Key::generate(new_kid(), now));
        self.prune(now, keep_secs);
    }

    /// Rotates (as [`rotate`](Self::rotate), keeping earlier keys) when the
    /// signing key is `rotate_after` seconds old at `now`; says whether it
    /// did.
    pub(crate) fn rotate_if_due(&mut self, now: u64, rotate_after: u64, keep_secs: u64) -> bool {
        let due = self
            .current()
            .is_none_or(|k| now.saturating_sub(k.created_at) >= rotate_after);
        if due {
            self.rotate(now, keep_secs, false);
        }
        due
    }

    /// Drops keys whose successor is older than `keep_secs`: nothing they
    /// signed is still valid.
    pub(crate) fn prune(&mut self, now: u64, keep_secs: u64) {
        let mut keep = Vec::new();
        let n = self.signing.len();
        for i in 0..n {
            let succeeded = self.signing.get(i + 1).map(|k| k.created_at);
            let expired = succeeded.is_some_and(|t| now.saturating_sub(t) > keep_secs);
            if !expired {
                keep.push(self.signing[i].clone());
            }
        }
        self.signing = keep;
    }
}

fn new_kid() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Revoked token ids (`jti`) and session ids (`sid`), each with the time
/// after which the token it names is expired anyway.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Revoked {
    /// Id → expiry.
    pub(crate) ids: BTreeMap<String, u64>,
}

impl Revoked {
    /// Whether `id` is revoked.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Revokes `id` until `until`; forgets ids already past.
    pub(crate) fn add(&mut self, id: &str, until: u64, now: u64) {
        self.ids.retain(|_, exp| *exp >= now);
        self.ids.insert(id.to_string(), until);
    }
}

/// Where the auth files of a node live.
#[derive(Clone, Debug)]
pub(crate) struct AuthDir(pub PathBuf);

impl AuthDir {
    /// `<node>/auth`.
    pub(crate) fn of(node_dir: &Path) -> AuthDir {
        AuthDir(node_dir.join("auth"))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>, AuthError> {
        let path = self.file(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| AuthError::Storage(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AuthError::Storage(format!("{}: {e}", path.display()))),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), AuthError> {
        let path = self.file(name);
        let io = |e: std::io::Error| AuthError::Storage(format!("{}: {e}", path.display()));
        create_private_dir(&self.0).map_err(io)?;
        let text =
            serde_json::to_string_pretty(value).map_err(|e| AuthError::Storage(e.to_string()))?;
        mero_config::write_private(&path, &text).map_err(io)
    }

    /// The keyring, made on first use.
    pub(crate) fn keyring(&self, now: u64) -> Result<(Keyring, bool), AuthError> {
        match self.read::<Keyring>("keys.json")? {
            Some(k) => Ok((k, false)),
            None => {
                let k = Keyring::generate(now);
                self.save_keyring(&k)?;
                Ok((k, true))
            }
        }
    }

    /// Writes the keyring.
    pub(crate) fn save_keyring(&self, k: &Keyring) -> Result<(), AuthError> {
        self.write("keys.json", k)
    }

    /// The revocation list.
    pub(crate) fn revoked(&self) -> Result<Revoked, AuthError> {
        Ok(self.read("revoked.json")?.unwrap_or_default())
    }

    /// Writes the revocation list.
    pub(crate) fn save_revoked(&self, r: &Revoked) -> Result<(), AuthError> {
        self.write("revoked.json", r)
    }

    /// The users of the `user_password` provider.
    pub(crate) fn users(&self) -> Result<super::users::Users, AuthError> {
        Ok(self.read("users.json")?.unwrap_or_default())
    }

    /// Writes the users.
    pub(crate) fn save_users(&self, u: &super::users::Users) -> Result<(), AuthError> {
        self.write("users.json", u)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_earlier_keys_until_their_tokens_run_out() {
        let mut k = Keyring::generate(1_000);
        let first = k.current().unwrap().kid.clone();
        k.rotate(2_000, 500, false);
        let second = k.current().unwrap().kid.clone();
        assert_ne!(first, second);
        assert!(k.find(&first).is_some() && k.find(&second).is_some());
        k.prune(2_400, 500);
        assert!(k.find(&first).is_some());
        k.prune(2_600, 500);
        assert!(k.find(&first).is_none() && k.find(&second).is_some());
        k.rotate(3_000, 500, true);
        assert!(k.find(&second).is_none());
        assert!(k.find(ROOT_KID).is_some(), "the root key does not rotate");
    }

    #[test]
    fn the_signing_key_rotates_once_it_is_due_and_not_before() {
        let day = 86_400;
        let mut k = Keyring::generate(1_000);
        let first = k.current().unwrap().kid.clone();
        assert!(!k.rotate_if_due(1_000 + day - 1, day, 3_600));
        assert_eq!(k.current().unwrap().kid, first, "not due yet");
        assert!(k.rotate_if_due(1_000 + day, day, 3_600));
        let second = k.current().unwrap().kid.clone();
        assert_ne!(second, first, "due: a new signing key");
        assert!(k.find(&first).is_some(), "the old key still verifies");
        // The new key's age counts from its own creation.
        assert!(!k.rotate_if_due(1_000 + 2 * day - 1, day, 3_600));
        assert!(k.rotate_if_due(1_000 + 2 * day, day, 3_600));
        assert!(
            k.find(&first).is_none(),
            "dropped once its successor is older than the tokens it signed"
        );
        assert!(k.find(&second).is_some());
    }
}
