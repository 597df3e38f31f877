//! `meroctl token`: mint scoped tokens for apps and scripts, revoke them,
//! rotate the node's signing keys.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::Data;
use mero_api::auth::{
    CreateTokenRequest, CreatedToken, KeyRotation, RevokeRequest, RotateKeysRequest,
};

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv};

#[derive(Subcommand)]
pub(super) enum TokenCmd {
    /// Mints a token with the given permissions (at most the caller's own).
    #[command(
        after_help = "Examples:\n  meroctl --node node1 token create --scope 'context:execute[<CONTEXT_ID>]' --expires 1h\n  meroctl --node node1 token create --scope application:list --scope context:list --expires 7d --name dashboard"
    )]
    Create {
        /// A permission, e.g. `admin`, `context:execute[<ctx>]`,
        /// `context:execute[<ctx>,,get]`, `application:list` (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Lifetime: seconds, or a number with s, m, h or d.
        #[arg(long, default_value = "1h")]
        expires: String,
        /// A label for the token (its subject).
        #[arg(long)]
        name: Option<String>,
    },
    /// Revokes a token (its whole session) or a token id.
    Revoke {
        /// The token, or with --jti its id. (Not named `token`: that is the
        /// global `--token` flag's id, which would take this value as the
        /// caller's own credential.)
        #[arg(value_name = "TOKEN")]
        revoked: String,
        /// The argument is a token id (`jti`), not a token.
        #[arg(long)]
        jti: bool,
    },
    /// Starts signing tokens with a new key.
    RotateKeys {
        /// Also stop accepting every token signed before (the root
        /// credential keeps working).
        #[arg(long)]
        retire_previous: bool,
    },
}

/// Seconds in `text`: `90`, `90s`, `15m`, `1h`, `7d`.
fn seconds(text: &str) -> Result<u64, ClientError> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => 0,
    };
    num.parse::<u64>()
        .ok()
        .filter(|n| *n > 0 && factor > 0)
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| {
            ClientError::Usage(format!(
                "--expires `{text}` is not a duration like 3600, 30m, 1h or 7d"
            ))
        })
}

pub(super) async fn run(client: &Client, out: &Output, cmd: TokenCmd) -> Result<(), ClientError> {
    match cmd {
        TokenCmd::Create {
            scopes,
            expires,
            name,
        } => {
            let body = CreateTokenRequest {
                permissions: scopes,
                expires_in_secs: seconds(&expires)?,
                name,
            };
            let made: Data<CreatedToken> = client.post("/admin-api/auth/tokens", &body).await?;
            out.write(&made.data)
        }
        TokenCmd::Revoke { revoked, jti } => {
            let body = if jti {
                RevokeRequest {
                    jti: Some(revoked),
                    ..RevokeRequest::default()
                }
            } else {
                RevokeRequest {
                    token: Some(revoked),
                    ..RevokeRequest::default()
                }
            };
            let _: Data<serde_json::Value> = client.post("/admin-api/auth/revoke", &body).await?;
            out.write(&Revoked)
        }
        TokenCmd::RotateKeys { retire_previous } => {
            let body = RotateKeysRequest { retire_previous };
            let done: Data<KeyRotation> = client.post("/admin-api/auth/rotate-keys", &body).await?;
            out.write(&done.data)
        }
    }
}

impl Report for CreatedToken {
    fn table(&self) -> Table {
        kv(&[
            ("Token", self.access_token.clone()),
            ("Id", self.jti.clone()),
            ("Expires at", self.expires_at.to_string()),
            ("Permissions", self.permissions.join(", ")),
        ])
    }
}

/// `token revoke`'s answer.
#[derive(serde::Serialize)]
struct Revoked;

impl Report for Revoked {
    fn table(&self) -> Table {
        kv(&[("Revoked", "yes".to_string())])
    }
}

impl Report for KeyRotation {
    fn table(&self) -> Table {
        kv(&[
            ("Signing key", self.current.clone()),
            ("Accepted keys", self.accepted.join(", ")),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_units() {
        assert_eq!(seconds("90").unwrap(), 90);
        assert_eq!(seconds("15m").unwrap(), 900);
        assert_eq!(seconds("1h").unwrap(), 3_600);
        assert_eq!(seconds("7d").unwrap(), 604_800);
        for bad in ["", "0", "h", "1y", "-1h", "1.5h"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
