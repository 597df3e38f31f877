//! Namespace invitations in the upstream wire shape.
//!
//! An invitation names the namespace, the role granted, an absolute expiry
//! and a random nonce. The inviter signs SHA-256 of the Borsh encoding of
//! the inner invitation with Ed25519, as upstream does, and the inner
//! invitation has exactly upstream's five fields: upstream's typed clients
//! decode it into their own struct and send it back re-encoded, dropping
//! whatever they do not know, so a signed field of ours would break the
//! signature. Where to reach the inviter is an unsigned hint beside it
//! (`inviter_addrs`), as upstream keeps its bootstrap hints: the joiner
//! trusts an address only if the peer it reaches there proves the signed
//! inviter key, and without the hint (a round trip through upstream's
//! model drops it too) it looks for the inviter among its connected peers.

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::digest::{EncodeError, digest};
use super::rights::Role;

/// Why an invitation is refused.
#[derive(Debug, thiserror::Error)]
pub enum InvitationError {
    /// It is for another namespace than the one being joined.
    #[error("invitation group_id does not match namespace_id in path")]
    Mismatch,
    /// The signature does not verify.
    #[error("the invitation's signature is not valid: it was forged or altered")]
    Forged,
    /// Its expiry has passed.
    #[error("the invitation expired at {0} (Unix seconds); ask for a new one")]
    Expired(u64),
    /// What was pasted is not an invitation.
    #[error("not an invitation as `namespace invite` prints it: {0}")]
    Unparseable(String),
    /// It could not be encoded to be signed or checked.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl InvitationError {
    /// A stable name of the error kind, as the API reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            InvitationError::Mismatch => "InvitationMismatch",
            InvitationError::Forged | InvitationError::Unparseable(_) => "InvalidInvitation",
            InvitationError::Expired(_) => "InvitationExpired",
            InvitationError::Encode(_) => "InternalError",
        }
    }
}

/// What the inviter signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct Invitation {
    /// The inviter's public key.
    pub inviter_identity: [u8; 32],
    /// The namespace.
    pub group_id: [u8; 32],
    /// Unix seconds after which it is refused.
    pub expiration_timestamp: u64,
    /// A random nonce.
    pub secret_salt: [u8; 32],
    /// The role granted (upstream's number in JSON).
    #[serde(default = "default_role")]
    pub invited_role: Role,
}

fn default_role() -> Role {
    Role::Member
}

/// An invitation with the inviter's signature (upstream's
/// `SignedGroupOpenInvitation`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
pub struct SignedInvitation {
    /// The signed part.
    pub invitation: Invitation,
    /// Ed25519 signature, hex.
    pub inviter_signature: String,
    /// The inviter's account (hex of its key); unsigned hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inviter_account: Option<String>,
    /// The namespace's application; unsigned hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<[u8; 32]>,
    /// The namespace's component hash; unsigned hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<[u8; 32]>,
    /// Where the inviter listens (multiaddrs); unsigned hint, trusted only
    /// as far as the peer reached there proves `inviter_identity`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inviter_addrs: Vec<String>,
}

/// What the inviter signs: SHA-256 of the inner invitation's Borsh
/// encoding, with no domain prefix (upstream's scheme).
fn signed_digest(inv: &Invitation) -> Result<[u8; 32], EncodeError> {
    digest("an invitation", &[], inv)
}

impl SignedInvitation {
    /// Signs `invitation` with `key`.
    pub fn sign(invitation: Invitation, key: &SigningKey) -> Result<SignedInvitation, EncodeError> {
        let sig = key.sign(&signed_digest(&invitation)?);
        Ok(SignedInvitation {
            inviter_account: Some(hex::encode(invitation.inviter_identity)),
            invitation,
            inviter_signature: hex::encode(sig.to_bytes()),
            application_id: None,
            app_key: None,
            inviter_addrs: Vec::new(),
        })
    }

    /// Checks the signature, the namespace and the expiry (`now` in Unix
    /// seconds). Says exactly what is wrong.
    pub fn verify(&self, namespace: &[u8; 32], now: u64) -> Result<(), InvitationError> {
        let inv = &self.invitation;
        if inv.group_id != *namespace {
            return Err(InvitationError::Mismatch);
        }
        let key =
            VerifyingKey::from_bytes(&inv.inviter_identity).map_err(|_| InvitationError::Forged)?;
        let sig: [u8; 64] = hex::decode(&self.inviter_signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(InvitationError::Forged)?;
        key.verify(&signed_digest(inv)?, &Signature::from_bytes(&sig))
            .map_err(|_| InvitationError::Forged)?;
        if inv.expiration_timestamp < now {
            return Err(InvitationError::Expired(inv.expiration_timestamp));
        }
        Ok(())
    }
}

/// Parses what a user pastes: the signed invitation itself, `{"invitation":
/// <signed>}`, or the whole response `invite` printed (`{"data":
/// {"invitation": <signed>, ...}}`).
pub fn parse_pasted(value: &serde_json::Value) -> Result<SignedInvitation, InvitationError> {
    let mut v = value;
    // Peel wrappers until `v` is the signed invitation, whose own
    // `invitation` is the inner one (it has `inviter_identity`).
    for _ in 0..4 {
        if let Some(data) = v.get("data") {
            v = data;
        } else if let Some(inner) = v.get("invitation")
            && inner.get("inviter_identity").is_none()
        {
            v = inner;
        } else {
            break;
        }
    }
    serde_json::from_value(v.clone()).map_err(|e| InvitationError::Unparseable(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    fn sample(key: &SigningKey, expiry: u64) -> SignedInvitation {
        SignedInvitation::sign(
            Invitation {
                inviter_identity: key.verifying_key().to_bytes(),
                group_id: [7; 32],
                expiration_timestamp: expiry,
                secret_salt: [1; 32],
                invited_role: Role::Member,
            },
            key,
        )
        .map(|mut s| {
            s.inviter_addrs = vec!["/ip4/127.0.0.1/tcp/1".into()];
            s
        })
        .unwrap()
    }

    #[test]
    fn verifies_and_refuses_each_defect() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let good = sample(&key, 2_000);
        good.verify(&[7; 32], 1_000).unwrap();
        assert_eq!(
            good.verify(&[8; 32], 1_000).unwrap_err().kind(),
            "InvitationMismatch"
        );
        assert_eq!(
            good.verify(&[7; 32], 3_000).unwrap_err().kind(),
            "InvitationExpired"
        );
        let mut tampered = good.clone();
        tampered.invitation.invited_role = Role::Admin;
        assert_eq!(
            tampered.verify(&[7; 32], 1_000).unwrap_err().kind(),
            "InvalidInvitation"
        );
        // The address hint is not signed: changing or dropping it keeps
        // the invitation valid (the joiner checks who answers there).
        let mut moved = good.clone();
        moved.inviter_addrs = vec!["/ip4/127.0.0.1/tcp/2".into()];
        moved.verify(&[7; 32], 1_000).unwrap();
        let forged = {
            let mut f = sample(&SigningKey::from_bytes(&[4; 32]), 2_000);
            f.invitation.inviter_identity = key.verifying_key().to_bytes();
            f
        };
        assert_eq!(
            forged.verify(&[7; 32], 1_000).unwrap_err().kind(),
            "InvalidInvitation"
        );
    }

    /// Upstream's typed model of an invitation
    /// (`SignedGroupOpenInvitation` around `GroupInvitationFromAdmin`):
    /// what its meroctl and client-py decode an invitation into and send
    /// back re-encoded.
    #[derive(Serialize, Deserialize)]
    struct UpstreamSigned {
        invitation: UpstreamInvitation,
        inviter_signature: String,
        inviter_account: Option<String>,
        application_id: Option<[u8; 32]>,
        app_key: Option<[u8; 32]>,
    }

    #[derive(Serialize, Deserialize)]
    struct UpstreamInvitation {
        inviter_identity: [u8; 32],
        group_id: [u8; 32],
        expiration_timestamp: u64,
        secret_salt: [u8; 32],
        invited_role: u8,
    }

    #[test]
    fn survives_a_round_trip_through_upstreams_typed_model() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut ours = sample(&key, 2_000);
        ours.invitation.invited_role = Role::ReadOnly;
        ours.application_id = Some([5; 32]);
        ours = SignedInvitation::sign(ours.invitation.clone(), &key)
            .map(|mut s| {
                s.application_id = Some([5; 32]);
                s.inviter_addrs = vec!["/ip4/127.0.0.1/tcp/1".into()];
                s
            })
            .unwrap();
        let json = serde_json::to_value(&ours).unwrap();
        let theirs: UpstreamSigned = serde_json::from_value(json).unwrap();
        assert_eq!(theirs.invitation.invited_role, 2, "upstream's ReadOnly");
        let back = serde_json::to_value(&theirs).unwrap();
        assert!(
            back.get("inviter_addrs").is_none(),
            "upstream drops the hint"
        );
        let parsed = parse_pasted(&back).unwrap();
        parsed.verify(&[7; 32], 1_000).unwrap();
        assert_eq!(parsed.invitation, ours.invitation);
        assert_eq!(parsed.application_id, Some([5; 32]));
    }

    #[test]
    fn accepts_every_pasted_form() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let signed = sample(&key, 2_000);
        let inner = serde_json::to_value(&signed).unwrap();
        let wrapped = serde_json::json!({ "invitation": inner });
        let whole = serde_json::json!({ "data": { "invitation": inner, "groupName": "x" } });
        let whole_wrapped = serde_json::json!({ "invitation": whole });
        for v in [&inner, &wrapped, &whole, &whole_wrapped] {
            assert_eq!(parse_pasted(v).unwrap(), signed);
        }
        assert!(parse_pasted(&serde_json::json!({"nope": 1})).is_err());
    }
}
