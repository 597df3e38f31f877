//! Proofs signed by the chains' own libraries (see `interop/gen.py`), and
//! the checks each must pass: accepted as signed, refused once tampered
//! with. Shared by the crate's tests (over the committed fixtures) and the
//! `mero-chains-verify` binary (over freshly generated ones in CI).

use serde::Deserialize;

use crate::{
    Chain, Challenge, Error, Proof, Scheme, Scope, near, parse_public_key, parse_signature,
};

/// A fixture file.
#[derive(Debug, Deserialize)]
pub struct Fixtures {
    /// The libraries and versions that signed.
    pub generated_by: serde_json::Value,
    /// The proofs.
    pub cases: Vec<Case>,
}

/// One proof as a chain's library produced it, in the texts a user would
/// paste.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// What it is.
    pub name: String,
    /// `near`, `ethereum`, `icp` or `stellar`.
    pub chain: String,
    /// The scheme (see [`Scheme`]).
    pub scheme: String,
    /// `namespace:<hex>` or `context:<base58>`.
    pub scope: String,
    /// The member's key, base58.
    pub member: String,
    /// The account as the library printed it.
    pub account: String,
    /// Hex.
    pub nonce: String,
    /// Unix seconds.
    pub expires: u64,
    /// The message the generator built and signed (pins the format).
    pub message: String,
    /// The key, as the chain prints it, where the account does not give it.
    pub public_key: Option<String>,
    /// The signature as the library printed it.
    pub signature: String,
    /// `accept` or `reject`.
    pub expect: String,
}

fn bytes32(text: &str, what: &str) -> Result<[u8; 32], String> {
    let bytes = if let Ok(b) = hex::decode(text) {
        b
    } else {
        bs58::decode(text)
            .into_vec()
            .map_err(|e| format!("{what}: {e}"))?
    };
    bytes
        .try_into()
        .map_err(|_| format!("{what}: not 32 bytes"))
}

impl Case {
    /// Its challenge and proof, parsed as the node parses user input.
    pub fn parse(&self) -> Result<(Challenge, Proof), String> {
        let chain: Chain = self.chain.parse().map_err(|e: Error| e.to_string())?;
        let scheme: Scheme = self.scheme.parse().map_err(|e: Error| e.to_string())?;
        let scope = match self.scope.split_once(':') {
            Some(("namespace", id)) => Scope::Namespace(bytes32(id, "namespace")?),
            Some(("context", id)) => Scope::Context(bytes32(id, "context")?),
            _ => return Err(format!("bad scope {}", self.scope)),
        };
        let member = bs58::decode(&self.member)
            .into_vec()
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|_| "member: not 32 bytes".to_string())?;
        let nonce = bytes32(&self.nonce, "nonce")?;
        let challenge = Challenge::new(scope, member, chain, &self.account, nonce, self.expires)
            .map_err(|e| e.to_string())?;
        let public_key = match &self.public_key {
            Some(text) => Some(parse_public_key(chain, text).map_err(|e| e.to_string())?),
            None => None,
        };
        let proof = Proof {
            chain,
            account: self.account.clone(),
            scheme,
            public_key,
            signature: parse_signature(chain, &self.signature).map_err(|e| e.to_string())?,
        };
        Ok((challenge, proof))
    }

    /// Every check this case implies, by name: `Ok` where it held.
    pub fn checks(&self) -> Vec<(String, Result<(), String>)> {
        let (challenge, proof) = match self.parse() {
            Ok(parsed) => parsed,
            Err(e) if self.expect == "reject" => {
                return vec![(format!("{}: refused at parse ({e})", self.name), Ok(()))];
            }
            Err(e) => return vec![(format!("{}: parses", self.name), Err(e))],
        };
        let now = self.expires.saturating_sub(1);
        if self.expect == "reject" {
            let result = match crate::verify(&challenge, &proof, now) {
                Ok(_) => Err("accepted".to_string()),
                Err(_) => Ok(()),
            };
            return vec![(format!("{}: refused", self.name), result)];
        }
        let mut out = Vec::new();
        out.push((
            format!("{}: message format", self.name),
            if challenge.message() == self.message {
                Ok(())
            } else {
                Err(format!(
                    "ours:\n{}\ntheirs:\n{}",
                    challenge.message(),
                    self.message
                ))
            },
        ));
        out.push((
            format!("{}: accepted", self.name),
            crate::verify(&challenge, &proof, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        ));
        for (what, challenge, proof, now) in tampered(&challenge, &proof, now) {
            let result = match crate::verify(&challenge, &proof, now) {
                Ok(_) => Err("accepted".to_string()),
                Err(_) => Ok(()),
            };
            out.push((format!("{}: refused when {what}", self.name), result));
        }
        out
    }
}

/// Another valid account of the same chain.
fn other_account(chain: Chain, account: &str) -> String {
    let key = [7u8; 32];
    match chain {
        Chain::Ethereum => "0x000000000000000000000000000000000000dEaD".into(),
        Chain::Near if near::implicit_key(account).is_some() => hex::encode(key),
        Chain::Near => "mallory.near".into(),
        Chain::Icp => crate::icp::principal_to_text(&crate::icp::principal_of_key(&key)),
        Chain::Stellar => crate::stellar::encode_account(&key),
    }
}

type Tampered = (&'static str, Challenge, Proof, u64);

fn tampered(challenge: &Challenge, proof: &Proof, now: u64) -> Vec<Tampered> {
    let mut out = Vec::new();
    let mut p = proof.clone();
    if let Some(byte) = p.signature.get_mut(10) {
        *byte ^= 0x01;
    }
    out.push(("a signature bit flips", challenge.clone(), p, now));
    let mut c = challenge.clone();
    c.nonce[0] ^= 0xff;
    out.push(("the nonce differs", c, proof.clone(), now));
    let mut c = challenge.clone();
    c.member[0] ^= 0xff;
    out.push(("the member differs", c, proof.clone(), now));
    let mut c = challenge.clone();
    c.scope = match c.scope {
        Scope::Namespace(id) => Scope::Context(id),
        Scope::Context(id) => Scope::Namespace(id),
    };
    out.push(("the scope differs", c, proof.clone(), now));
    out.push((
        "it expired",
        challenge.clone(),
        proof.clone(),
        challenge.expires,
    ));
    let other = other_account(challenge.chain, &challenge.account);
    let mut c = challenge.clone();
    c.account = other.clone();
    let mut p = proof.clone();
    p.account = other;
    out.push(("another account claims it", c, p, now));
    let mut p = proof.clone();
    p.account = other_account(challenge.chain, &challenge.account);
    out.push(("the proof names another account", challenge.clone(), p, now));
    let mut p = proof.clone();
    p.chain = if p.chain == Chain::Near {
        Chain::Stellar
    } else {
        Chain::Near
    };
    out.push(("the chain differs", challenge.clone(), p, now));
    if challenge.chain == Chain::Ethereum {
        let mut p = proof.clone();
        p.scheme = if p.scheme == Scheme::Eip191 {
            Scheme::Eip712
        } else {
            Scheme::Eip191
        };
        out.push((
            "checked as the other Ethereum scheme",
            challenge.clone(),
            p,
            now,
        ));
    }
    out
}
