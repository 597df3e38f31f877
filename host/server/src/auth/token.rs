//! HS256 JWTs with upstream's claims (`sub, iss, aud, exp, iat, jti,
//! token_type, permissions, node_url?`) plus `sid`, the session an access
//! token and its refresh token share, so that revoking one revokes both.
//! The header's `kid` names the key that signed it.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::AuthError;
use super::keys::Key;

/// Our `iss`.
pub(crate) const ISSUER: &str = "mero-node";

/// Access or refresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TokenType {
    /// A bearer credential.
    Access,
    /// Spent once at `/auth/refresh` for a new pair.
    Refresh,
}

/// A token's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// Who: `root`, a user name, a label.
    pub(crate) sub: String,
    /// [`ISSUER`].
    pub(crate) iss: String,
    /// The client.
    pub(crate) aud: String,
    /// Expiry, seconds since the epoch.
    pub(crate) exp: u64,
    /// Issue time.
    pub(crate) iat: u64,
    /// This token's id.
    pub(crate) jti: String,
    /// Access or refresh.
    pub(crate) token_type: TokenType,
    /// What it may do.
    pub(crate) permissions: Vec<String>,
    /// The node it was issued for (upstream's claim; informative here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node_url: Option<String>,
    /// The session: shared by a pair and every pair refreshed from it.
    #[serde(default)]
    pub(crate) sid: String,
}

/// A fresh random id.
pub(crate) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Signs `claims` with `key`.
pub(crate) fn sign(claims: &Claims, key: &Key) -> Result<String, AuthError> {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret()))
        .map_err(|e| AuthError::Storage(format!("cannot sign a token: {e}")))
}

/// The `kid` a token names, before anything is trusted.
pub(crate) fn kid(token: &str) -> Result<String, AuthError> {
    jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .ok_or(AuthError::InvalidToken)
}

/// Verifies `token`'s signature with `key` and its expiry (unless
/// `allow_expired`), and returns its claims.
pub(crate) fn verify(token: &str, key: &Key, allow_expired: bool) -> Result<Claims, AuthError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = 0;
    v.validate_aud = false;
    v.validate_exp = !allow_expired;
    v.set_issuer(&[ISSUER]);
    v.set_required_spec_claims(&["exp", "iss", "sub"]);
    match jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&key.secret()), &v) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            Err(AuthError::Expired)
        }
        Err(_) => Err(AuthError::InvalidToken),
    }
}
