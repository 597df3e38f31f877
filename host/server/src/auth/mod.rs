//! Embedded authentication: the node signs and checks its own bearer
//! tokens (HS256 JWTs in upstream's claims), checks each route's permission,
//! and serves upstream's login routes.
//!
//! - [`keys`]: the root key, the rotating signing keys and the revocation
//!   list, on disk in `<node>/auth/`;
//! - [`token`]: the claims, signing and verifying;
//! - [`permissions`]: permission strings and what covers what;
//! - [`routes`]: which permission each route needs, and the layer that
//!   checks it;
//! - [`users`]: the `user_password` provider's users;
//! - [`login`]: `/auth/token`, `/auth/refresh`, `/auth/login`;
//! - [`manage`]: minting, revoking, key rotation, `is-authed`.
//!
//! In `proxy` mode nothing here checks a token: every request gets admin
//! grants, as a proxy in front is trusted to have checked.

pub(crate) mod keys;
pub(crate) mod login;
pub(crate) mod manage;
pub mod permissions;
pub(crate) mod routes;
pub(crate) mod token;
pub(crate) mod users;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use mero_api::ErrorBody;
use mero_config::{AuthMode, AuthSection};

use keys::{AuthDir, Keyring, Revoked};
pub(crate) use permissions::Bearer;
pub use permissions::{Grants, Permission};
use token::{Claims, TokenType};

/// The file in a node's directory that holds its root credential.
pub const CREDENTIAL_FILE: &str = "credential.json";

/// Lifetime of the root credential: it is the owner's key, as long-lived as
/// the node's own identity beside it; it is replaced with `merod auth
/// rotate-root`.
const ROOT_TTL_SECS: u64 = 100 * 365 * 24 * 3_600;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token.
    #[error("this route needs a bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// Not a token we signed, or not an access token.
    #[error("the token is not valid")]
    InvalidToken,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Revoked.
    #[error("the token has been revoked")]
    Revoked,
    /// Valid, without the permission needed.
    #[error("the token lacks the permission `{0}`")]
    Forbidden(String),
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed logins of one user, lately.
    #[error("too many failed logins; try again in a minute")]
    TooManyAttempts,
    /// A malformed request.
    #[error("{0}")]
    BadRequest(String),
    /// Reading or writing the auth files failed.
    #[error("auth storage: {0}")]
    Storage(String),
}

impl AuthError {
    /// Upstream's `X-Auth-Error` value, which clients act on.
    pub(crate) fn code(&self) -> Option<&'static str> {
        match self {
            AuthError::Missing => Some("missing_token"),
            AuthError::InvalidToken => Some("invalid_token"),
            AuthError::Expired => Some("token_expired"),
            AuthError::Revoked => Some("token_revoked"),
            _ => None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            AuthError::Missing
            | AuthError::InvalidToken
            | AuthError::Expired
            | AuthError::Revoked
            | AuthError::BadCredentials => StatusCode::UNAUTHORIZED,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            AuthError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AuthError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "Unauthenticated",
            AuthError::InvalidToken => "InvalidToken",
            AuthError::Expired => "TokenExpired",
            AuthError::Revoked => "TokenRevoked",
            AuthError::Forbidden(_) => "Forbidden",
            AuthError::BadCredentials => "BadCredentials",
            AuthError::TooManyAttempts => "TooManyAttempts",
            AuthError::BadRequest(_) => "InvalidRequest",
            AuthError::Storage(_) => "InternalError",
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let AuthError::Storage(m) = &self {
            tracing::error!(error = %m, "auth storage failed");
        }
        let mut resp = (
            self.status(),
            axum::Json(ErrorBody {
                error: self.to_string(),
                kind: self.kind().into(),
            }),
        )
            .into_response();
        if let Some(code) = self.code() {
            resp.headers_mut()
                .insert("x-auth-error", HeaderValue::from_static(code));
        }
        if self.status() == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's authentication: mode, keys, revocations, lifetimes.
#[derive(Clone)]
pub struct Auth(Arc<Inner>);

struct Inner {
    mode: AuthMode,
    dir: AuthDir,
    ttl: AuthSection,
    state: Mutex<State>,
    failures: Mutex<std::collections::HashMap<String, (u32, u64)>>,
    /// Bumped at every revocation and key rotation, so that live streams
    /// re-check their token then rather than polling.
    changes: tokio::sync::watch::Sender<u64>,
}

/// Failed logins of one user name after which its logins wait.
const MAX_FAILURES: u32 = 5;
/// How long they wait, in seconds.
const LOCKOUT_SECS: u64 = 60;
/// User names whose failures are remembered (a flood of names cannot grow it).
const MAX_TRACKED: usize = 1_024;

struct State {
    keys: Keyring,
    revoked: Revoked,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("mode", &self.0.mode).finish()
    }
}

/// An access and a refresh token.
pub(crate) struct Pair {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl Auth {
    /// Opens the auth state of the node in `node_dir` (making its keys on
    /// first use). Proxy mode keeps no state and reads no files.
    pub fn open(mode: AuthMode, node_dir: &Path, ttl: AuthSection) -> Result<Auth, AuthError> {
        let dir = AuthDir::of(node_dir);
        let (keys, revoked) = match mode {
            AuthMode::Embedded => (dir.keyring(now())?.0, dir.revoked()?),
            // Proxy mode checks nothing: keys in memory, never used.
            AuthMode::Proxy => (Keyring::generate(now()), Revoked::default()),
        };
        let auth = Auth(Arc::new(Inner {
            mode,
            dir,
            ttl,
            state: Mutex::new(State { keys, revoked }),
            failures: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
        }));
        if mode == AuthMode::Embedded {
            auth.rotate_if_due()?;
        }
        Ok(auth)
    }

    /// The mode.
    pub fn mode(&self) -> AuthMode {
        self.0.mode
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rotates the signing key when it is older than configured.
    fn rotate_if_due(&self) -> Result<(), AuthError> {
        self.rotate_if_due_at(now())
    }

    /// [`rotate_if_due`](Self::rotate_if_due) at time `now` (seconds since
    /// the epoch), so that a test need not wait a day.
    fn rotate_if_due_at(&self, now: u64) -> Result<(), AuthError> {
        let mut st = self.state();
        if st
            .keys
            .rotate_if_due(now, self.0.ttl.rotate_after_secs, self.keep_secs())
        {
            self.0.dir.save_keyring(&st.keys)?;
            drop(st);
            self.changed();
            tracing::info!("rotated the token signing key");
        }
        Ok(())
    }

    /// Tells live streams that tokens may have stopped being accepted.
    fn changed(&self) {
        self.0.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How long a retired signing key must still verify what it signed.
    fn keep_secs(&self) -> u64 {
        self.0.ttl.refresh_ttl_secs.max(self.0.ttl.access_ttl_secs)
    }

    /// The grants of a bearer `token` (access tokens only).
    pub fn authenticate(&self, token: &str) -> Result<Grants, AuthError> {
        let claims = self.verify(token, TokenType::Access, false)?;
        let permissions =
            permissions::parse_all(&claims.permissions).map_err(|_| AuthError::InvalidToken)?;
        Ok(Grants {
            subject: claims.sub,
            permissions,
            bearer: Some(Bearer {
                token: token.into(),
                exp: claims.exp,
            }),
        })
    }

    /// Resolves, with the reason, once the token `grants` came from is no
    /// longer accepted: revoked, expired, or signed by a retired key. A
    /// stream (a WebSocket, an SSE response) lives no longer than the token
    /// it was opened with. Never resolves for grants without a token (proxy
    /// mode).
    pub(crate) async fn ended(&self, grants: &Grants) -> AuthError {
        let Some(bearer) = grants.bearer.clone() else {
            return std::future::pending().await;
        };
        let mut changes = self.0.changes.subscribe();
        let mut notified = true;
        loop {
            if let Err(e) = self.authenticate(&bearer.token) {
                return e;
            }
            // A token is accepted through the second `exp`; wake just past
            // it. Timers far ahead are capped and re-armed (the root
            // credential lives a century).
            let expiry = std::time::UNIX_EPOCH + Duration::from_secs(bearer.exp.saturating_add(1));
            let wait = expiry
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .clamp(Duration::from_millis(10), Duration::from_secs(86_400));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = changes.changed(), if notified => {
                    // The sender lives as long as `self`; if it is gone,
                    // only the clock is left to wait on.
                    notified = changed.is_ok();
                }
            }
        }
    }

    /// Checks signature, type, expiry and revocation.
    fn verify(
        &self,
        token: &str,
        kind: TokenType,
        allow_expired: bool,
    ) -> Result<Claims, AuthError> {
        if self.0.mode == AuthMode::Proxy {
            return Err(AuthError::InvalidToken);
        }
        let kid = token::kid(token)?;
        let key = {
            let st = self.state();
            st.keys.find(&kid).cloned().ok_or(AuthError::InvalidToken)?
        };
        let claims = token::verify(token, &key, allow_expired)?;
        if claims.token_type != kind {
            return Err(AuthError::InvalidToken);
        }
        let st = self.state();
        if st.revoked.contains(&claims.jti)
            || (!claims.sid.is_empty() && st.revoked.contains(&claims.sid))
        {
            return Err(AuthError::Revoked);
        }
        Ok(claims)
    }

    fn sign_with_current(&self, claims: &Claims) -> Result<String, AuthError> {
        self.rotate_if_due()?;
        let key = self
            .state()
            .keys
            .current()
            .cloned()
            .ok_or_else(|| AuthError::Storage("no signing key".into()))?;
        token::sign(claims, &key)
    }

    fn claims(
        &self,
        sub: &str,
        aud: &str,
        perms: &[String],
        ttl: u64,
        sid: &str,
        kind: TokenType,
    ) -> Claims {
        let now = now();
        Claims {
            sub: sub.into(),
            iss: token::ISSUER.into(),
            aud: aud.into(),
            exp: now.saturating_add(ttl),
            iat: now,
            jti: token::new_id(),
            token_type: kind,
            permissions: perms.to_vec(),
            node_url: None,
            sid: sid.into(),
        }
    }

    /// A new access + refresh pair for `sub` in a new session (or `sid`'s).
    pub(crate) fn issue_pair(
        &self,
        sub: &str,
        aud: &str,
        perms: &[String],
        sid: Option<&str>,
    ) -> Result<Pair, AuthError> {
        let sid = sid.map_or_else(token::new_id, str::to_string);
        let t = &self.0.ttl;
        let access = self.claims(sub, aud, perms, t.access_ttl_secs, &sid, TokenType::Access);
        let refresh = self.claims(
            sub,
            aud,
            perms,
            t.refresh_ttl_secs,
            &sid,
            TokenType::Refresh,
        );
        Ok(Pair {
            access: self.sign_with_current(&access)?,
            refresh: self.sign_with_current(&refresh)?,
        })
    }

    /// Spends `refresh` (single use) for a new pair of the same session.
    /// The access token must be of the same subject and session; it may
    /// have expired.
    pub(crate) fn refresh(&self, access: &str, refresh: &str) -> Result<Pair, AuthError> {
        let a = self.verify(access, TokenType::Access, true)?;
        let r = self.verify(refresh, TokenType::Refresh, false)?;
        if a.sub != r.sub || a.sid != r.sid {
            return Err(AuthError::BadRequest(
                "the access and refresh tokens are not of one session".into(),
            ));
        }
        self.revoke_ids(&[(&r.jti, r.exp), (&a.jti, a.exp)])?;
        self.issue_pair(&r.sub, &r.aud, &r.permissions, Some(&r.sid))
    }

    /// An access token only, e.g. for a script (`meroctl token create`).
    pub(crate) fn mint(
        &self,
        sub: &str,
        perms: &[String],
        ttl: u64,
    ) -> Result<(String, Claims), AuthError> {
        let claims = self.claims(sub, sub, perms, ttl, &token::new_id(), TokenType::Access);
        Ok((self.sign_with_current(&claims)?, claims))
    }

    /// An access token for `name` with `perms`, living `ttl_secs` (e.g. the
    /// one `merod dev` prints). Fails in proxy mode.
    pub fn mint_token(
        &self,
        name: &str,
        perms: &[String],
        ttl_secs: u64,
    ) -> Result<String, AuthError> {
        if self.0.mode == AuthMode::Proxy {
            return Err(AuthError::BadRequest("proxy mode issues no tokens".into()));
        }
        Ok(self.mint(name, perms, ttl_secs)?.0)
    }

    fn revoke_ids(&self, ids: &[(&str, u64)]) -> Result<(), AuthError> {
        let now = now();
        let mut st = self.state();
        for (id, until) in ids {
            st.revoked.add(id, *until, now);
        }
        let saved = self.0.dir.save_revoked(&st.revoked);
        drop(st);
        // Refused from now on whether or not the file was written.
        self.changed();
        saved
    }

    /// Revokes the session of `token` (access or refresh, expired or not).
    pub(crate) fn revoke_token(&self, token: &str) -> Result<(), AuthError> {
        let claims = self
            .verify(token, TokenType::Access, true)
            .or_else(|_| self.verify(token, TokenType::Refresh, true))?;
        let until = claims.exp.max(now().saturating_add(self.keep_secs()));
        let mut ids = vec![(claims.jti.as_str(), until)];
        if !claims.sid.is_empty() {
            ids.push((claims.sid.as_str(), until));
        }
        self.revoke_ids(&ids)
    }

    /// Revokes the token (or session) with id `jti`.
    pub(crate) fn revoke_id(&self, jti: &str) -> Result<(), AuthError> {
        let until = now().saturating_add(ROOT_TTL_SECS);
        self.revoke_ids(&[(jti, until)])
    }

    /// Starts signing with a new key; with `retire`, earlier keys stop
    /// verifying. Returns the current and the accepted key ids.
    pub(crate) fn rotate(&self, retire: bool) -> Result<(String, Vec<String>), AuthError> {
        let mut st = self.state();
        st.keys.rotate(now(), self.keep_secs(), retire);
        self.0.dir.save_keyring(&st.keys)?;
        let current = st.keys.current().map(|k| k.kid.clone()).unwrap_or_default();
        let accepted = st.keys.signing.iter().map(|k| k.kid.clone()).collect();
        drop(st);
        self.changed();
        Ok((current, accepted))
    }

    /// Refuses a login of `user` while it is locked out by failures.
    pub(crate) fn check_lockout(&self, user: &str) -> Result<(), AuthError> {
        let f = self.0.failures.lock().unwrap_or_else(|p| p.into_inner());
        match f.get(user) {
            Some((n, since))
                if *n >= MAX_FAILURES && now().saturating_sub(*since) < LOCKOUT_SECS =>
            {
                Err(AuthError::TooManyAttempts)
            }
            _ => Ok(()),
        }
    }

    /// Records a failed (`ok` false) or successful login of `user`.
    pub(crate) fn record_login(&self, user: &str, ok: bool) {
        let mut f = self.0.failures.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            f.remove(user);
            return;
        }
        if f.len() >= MAX_TRACKED && !f.contains_key(user) {
            f.clear();
        }
        let now = now();
        let e = f.entry(user.chars().take(64).collect()).or_insert((0, now));
        if now.saturating_sub(e.1) >= LOCKOUT_SECS {
            *e = (0, now);
        }
        e.0 += 1;
        e.1 = now;
    }

    /// The `user_password` users, read afresh (the operator may set a
    /// password while the node runs).
    pub(crate) fn users(&self) -> Result<users::Users, AuthError> {
        self.0.dir.users()
    }
}

/// The permission `method` on route `route` (as the router names it, e.g.
/// `/admin-api/contexts/{id}`) needs for a request to `path`: `admin` for
/// an unlisted route, empty for a public one or one whose handler decides.
pub fn required_permission(method: &str, route: &str, path: &str) -> String {
    let method = method.parse().unwrap_or(axum::http::Method::GET);
    match routes::need(&method, route) {
        routes::Need::Perm(t) => routes::instantiate(t, route, path).to_string(),
        routes::Need::Public | routes::Need::Token => String::new(),
    }
}

/// What `credential.json` holds.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Credential {
    /// The root bearer token.
    pub access_token: String,
}

/// Makes sure the node in `node_dir` has its keys and a root credential
/// (`<node_dir>/credential.json`, readable by its user only); with `force`,
/// replaces the root key, so the old credential stops working. Returns the
/// credential's path.
pub fn provision(node_dir: &Path, force: bool) -> Result<PathBuf, AuthError> {
    let dir = AuthDir::of(node_dir);
    let (mut keys, created) = dir.keyring(now())?;
    let path = node_dir.join(CREDENTIAL_FILE);
    if force && !created {
        keys.root = keys::Key::generate_root(now());
        dir.save_keyring(&keys)?;
    } else if !created && path.is_file() {
        return Ok(path);
    }
    let now = now();
    let claims = Claims {
        sub: "root".into(),
        iss: token::ISSUER.into(),
        aud: "owner".into(),
        exp: now.saturating_add(ROOT_TTL_SECS),
        iat: now,
        jti: token::new_id(),
        token_type: TokenType::Access,
        permissions: vec!["admin".into()],
        node_url: None,
        sid: String::new(),
    };
    let credential = Credential {
        access_token: token::sign(&claims, &keys.root)?,
    };
    let text =
        serde_json::to_string_pretty(&credential).map_err(|e| AuthError::Storage(e.to_string()))?;
    mero_config::write_private(&path, &text)
        .map_err(|e| AuthError::Storage(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// Sets (or replaces) `user`'s password for the `user_password` provider,
/// with the permissions their tokens may carry.
pub fn set_password(
    node_dir: &Path,
    user: &str,
    password: &str,
    permissions: Vec<String>,
) -> Result<(), AuthError> {
    if user.is_empty() || password.len() < 8 {
        return Err(AuthError::BadRequest(
            "a user needs a name and a password of at least 8 characters".into(),
        ));
    }
    permissions::parse_all(&permissions).map_err(|e| AuthError::BadRequest(e.to_string()))?;
    let dir = AuthDir::of(node_dir);
    let mut all = dir.users()?;
    all.users
        .insert(user.into(), users::User::new(password, permissions));
    dir.save_users(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotating_every(secs: u64) -> AuthSection {
        AuthSection {
            rotate_after_secs: secs,
            ..AuthSection::default()
        }
    }

    fn current(auth: &Auth) -> (String, u64) {
        let st = auth.state();
        let k = st.keys.current().unwrap();
        (k.kid.clone(), k.created_at)
    }

    /// The clock is passed in: a day of key age costs nothing to test.
    #[test]
    fn the_signing_key_rotates_by_itself_when_due_and_the_rotation_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::open(AuthMode::Embedded, dir.path(), rotating_every(3_600)).unwrap();
        let (first, created) = current(&auth);
        let earlier = auth.mint_token("t", &["admin".into()], 600).unwrap();
        auth.rotate_if_due_at(created + 3_599).unwrap();
        assert_eq!(current(&auth).0, first, "not due yet");
        auth.rotate_if_due_at(created + 3_600).unwrap();
        let (second, _) = current(&auth);
        assert_ne!(second, first, "due: a new signing key");
        assert!(
            auth.authenticate(&earlier).is_ok(),
            "a token the previous key signed is still accepted"
        );
        let later = auth.mint_token("t", &["admin".into()], 600).unwrap();
        assert_eq!(token::kid(&later).unwrap(), second, "new tokens use it");
        let reopened = Auth::open(AuthMode::Embedded, dir.path(), rotating_every(3_600)).unwrap();
        assert_eq!(current(&reopened).0, second, "written to keys.json");
    }

    #[tokio::test]
    async fn a_stream_learns_at_once_that_its_token_was_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::open(AuthMode::Embedded, dir.path(), AuthSection::default()).unwrap();
        let token = auth.mint_token("t", &["admin".into()], 600).unwrap();
        let grants = auth.authenticate(&token).unwrap();
        let watcher = auth.clone();
        let ended = tokio::spawn(async move { watcher.ended(&grants).await });
        let other = auth.mint_token("u", &["admin".into()], 600).unwrap();
        auth.revoke_token(&other).unwrap();
        auth.revoke_token(&token).unwrap();
        let why = tokio::time::timeout(Duration::from_secs(30), ended)
            .await
            .expect("the revocation woke the stream")
            .unwrap();
        assert!(matches!(why, AuthError::Revoked), "{why}");
        // Proxy-mode grants carry no token and never end.
        let proxy = Grants::admin("proxy");
        let never = tokio::time::timeout(Duration::from_millis(50), auth.ended(&proxy)).await;
        assert!(never.is_err());
    }
}
