//! Users of the `user_password` provider, set by the operator with
//! `merod auth set-password`: salted PBKDF2-HMAC-SHA256 hashes, and the
//! permissions each user's tokens may carry.

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// Iterations of PBKDF2 for new hashes.
const ITERATIONS: u32 = 100_000;

/// Every user, by name.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Users {
    /// Name → record.
    pub(crate) users: BTreeMap<String, User>,
}

/// One user.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct User {
    salt: String,
    hash: String,
    iterations: u32,
    /// What this user's tokens may do.
    pub(crate) permissions: Vec<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("permissions", &self.permissions)
            .finish()
    }
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password.as_bytes(),
        &mut out,
    );
    out
}

impl User {
    /// A user with `password` and `permissions`.
    pub(crate) fn new(password: &str, permissions: Vec<String>) -> User {
        let salt: [u8; 16] = rand::random();
        User {
            salt: hex::encode(salt),
            hash: hex::encode(derive(password, &salt, ITERATIONS)),
            iterations: ITERATIONS,
            permissions,
        }
    }

    /// Whether `password` is this user's, compared in constant time.
    pub(crate) fn verify(&self, password: &str) -> bool {
        let (Ok(salt), Ok(hash)) = (hex::decode(&self.salt), hex::decode(&self.hash)) else {
            return false;
        };
        let n = NonZeroU32::new(self.iterations).unwrap_or(NonZeroU32::MIN);
        ring::pbkdf2::verify(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            n,
            &salt,
            password.as_bytes(),
            &hash,
        )
        .is_ok()
    }
}

impl Users {
    /// The user `name` if `password` is theirs. An unknown name costs the
    /// same hashing as a wrong password, so timing does not tell them apart.
    pub(crate) fn check(&self, name: &str, password: &str) -> Option<&User> {
        match self.users.get(name) {
            Some(u) if u.verify(password) => Some(u),
            Some(_) => None,
            None => {
                let _ = derive(password, b"no such user....", ITERATIONS);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_wrong_ones_do_not() {
        let mut users = Users::default();
        users
            .users
            .insert("alice".into(), User::new("s3cret", vec!["admin".into()]));
        assert!(users.check("alice", "s3cret").is_some());
        assert!(users.check("alice", "S3cret").is_none());
        assert!(users.check("bob", "s3cret").is_none());
        let text = serde_json::to_string(&users).unwrap();
        assert!(!text.contains("s3cret"));
    }
}
