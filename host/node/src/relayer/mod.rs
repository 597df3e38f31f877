//! Relayers: what a chain says, asked of the chain itself (issue #23).
//!
//! One trait, [`Relayer`], answers "what does the chain say" queries at a
//! block it names; one module per chain implements it. Ethereum is real
//! ([`ethereum`], JSON-RPC to the node in `[chains.ethereum] rpc_url`);
//! NEAR, ICP and Stellar have no relayer in this build and say so in every
//! answer ([`Unsupported`]). Answers become [`attestation`]s: claims this
//! node signs, which other nodes trust as far as they trust its key.

pub mod attestation;
pub mod ethereum;
pub mod gate;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use futures::future::BoxFuture;
use mero_chains::Chain;

/// Why a relayer could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayerError {
    /// This node has no relayer configured for the chain.
    #[error(
        "no relayer for {0} is configured on this node: set [chains.{0}] rpc_url in its config.toml"
    )]
    NotConfigured(Chain),
    /// This build has no relayer for the chain (or not for this query).
    #[error("{0}")]
    Unsupported(String),
    /// A query's input is wrong (an address, a key).
    #[error("{0}")]
    BadInput(String),
    /// The chain's RPC endpoint could not be reached or answered badly
    /// at the HTTP level.
    #[error("the {chain} RPC endpoint {url} failed: {message}")]
    Transport {
        /// The chain.
        chain: Chain,
        /// The endpoint.
        url: String,
        /// What failed.
        message: String,
    },
    /// The chain answered with a JSON-RPC error.
    #[error("the {chain} RPC endpoint refused {method}: {message} (code {code})")]
    Rpc {
        /// The chain.
        chain: Chain,
        /// The method called.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
    },
    /// The chain's answer is not what the method returns.
    #[error("the {chain} RPC endpoint answered {method} with something unexpected: {message}")]
    BadResponse {
        /// The chain.
        chain: Chain,
        /// The method called.
        method: String,
        /// What is wrong.
        message: String,
    },
}

/// A block of a chain: the answers of one query all read it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlockRef {
    /// Its height.
    pub number: u64,
    /// Its hash, as the chain prints it (`0x…` for Ethereum).
    pub hash: String,
}

/// An amount in the chain's smallest unit (wei, a token's base unit):
/// unsigned 256-bit, big-endian, so byte order is numeric order.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Amount(pub [u8; 32]);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount([0; 32]);

    /// From a small number.
    pub fn from_u128(v: u128) -> Amount {
        let mut b = [0; 32];
        b[16..].copy_from_slice(&v.to_be_bytes());
        Amount(b)
    }

    /// Parses a decimal number (digits only, up to 2^256 - 1).
    pub fn from_decimal(text: &str) -> Result<Amount, RelayerError> {
        let bad = || {
            RelayerError::BadInput(format!(
                "`{text}` is not an amount: decimal digits in the smallest unit, below 2^256"
            ))
        };
        if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let mut b = [0u8; 32];
        for d in text.bytes() {
            // b = b * 10 + d, from the least significant byte up.
            let mut carry = u32::from(d - b'0');
            for byte in b.iter_mut().rev() {
                let v = u32::from(*byte) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            if carry != 0 {
                return Err(bad());
            }
        }
        Ok(Amount(b))
    }

    /// Parses an Ethereum JSON-RPC quantity or data word: `0x` and at most
    /// 64 hex digits (`0x` alone is not a number).
    pub fn from_hex(text: &str) -> Result<Amount, String> {
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| format!("`{text}` does not start with 0x"))?;
        if digits.is_empty() || digits.len() > 64 {
            return Err(format!(
                "`{text}` is not a 256-bit hex number (1 to 64 digits)"
            ));
        }
        let padded = format!("{digits:0>64}");
        let mut b = [0u8; 32];
        hex::decode_to_slice(&padded, &mut b).map_err(|e| format!("`{text}`: {e}"))?;
        Ok(Amount(b))
    }

    /// The decimal digits.
    pub fn to_decimal(&self) -> String {
        let mut n = self.0;
        let mut digits = Vec::new();
        loop {
            // n, r = n / 10, n % 10, from the most significant byte down.
            let mut rem = 0u32;
            for byte in n.iter_mut() {
                let v = (rem << 8) | u32::from(*byte);
                *byte = (v / 10) as u8;
                rem = v % 10;
            }
            digits.push(b'0' + rem as u8);
            if n.iter().all(|b| *b == 0) {
                break;
            }
        }
        digits.reverse();
        String::from_utf8(digits).unwrap_or_default()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_decimal())
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

/// What a chain said, and at which block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading<T> {
    /// The answer.
    pub value: T,
    /// The block it was read at.
    pub block: BlockRef,
    /// Which network of the chain (`eip155:<chain id>` for Ethereum).
    pub network: String,
}

/// The "what does the chain say" queries. Every answer names the block it
/// was read at; a relayer that cannot answer one says why.
pub trait Relayer: Send + Sync {
    /// The chain it asks.
    fn chain(&self) -> Chain;

    /// The native balance of `account` (wei for Ethereum).
    fn balance<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>>;

    /// `account`'s balance of token `token` (an ERC-20 contract for
    /// Ethereum), in the token's base unit.
    fn token_balance<'a>(
        &'a self,
        token: &'a str,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>>;

    /// Whether `public_key` is an access key of NEAR account `account`.
    fn near_access_key<'a>(
        &'a self,
        account: &'a str,
        public_key: &'a str,
    ) -> BoxFuture<'a, Result<Reading<bool>, RelayerError>>;
}

/// The relayer of a chain this build has none for: every query is refused
/// saying so, rather than answered with a guess.
#[derive(Debug, Clone, Copy)]
pub struct Unsupported(pub Chain);

impl Unsupported {
    fn refuse<T>(&self) -> BoxFuture<'static, Result<T, RelayerError>>
    where
        T: Send + 'static,
    {
        let chain = self.0;
        Box::pin(async move {
            Err(RelayerError::Unsupported(format!(
                "no relayer for {chain} in this build: only Ethereum (JSON-RPC) is implemented"
            )))
        })
    }
}

impl Relayer for Unsupported {
    fn chain(&self) -> Chain {
        self.0
    }

    fn balance<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>> {
        self.refuse()
    }

    fn token_balance<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>> {
        self.refuse()
    }

    fn near_access_key<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Reading<bool>, RelayerError>> {
        self.refuse()
    }
}

/// The relayers this node has, one per configured chain.
#[derive(Clone, Default)]
pub struct Relayers {
    by_chain: BTreeMap<Chain, Arc<dyn Relayer>>,
}

impl fmt::Debug for Relayers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_chain.keys()).finish()
    }
}

impl Relayers {
    /// From the `[chains]` section: Ethereum's when it has an `rpc_url`.
    pub fn from_config(chains: &mero_config::ChainsSection) -> Result<Relayers, RelayerError> {
        let mut by_chain: BTreeMap<Chain, Arc<dyn Relayer>> = BTreeMap::new();
        if let Some(eth) = &chains.ethereum {
            let relayer = ethereum::EthereumRelayer::new(&eth.rpc_url, eth.timeout_ms)?;
            by_chain.insert(Chain::Ethereum, Arc::new(relayer));
        }
        Ok(Relayers { by_chain })
    }

    /// The relayer for `chain`: refused when this build has none for it,
    /// or when this node has none configured.
    pub fn get(&self, chain: Chain) -> Result<Arc<dyn Relayer>, RelayerError> {
        if chain != Chain::Ethereum {
            return Ok(Arc::new(Unsupported(chain)));
        }
        self.by_chain
            .get(&chain)
            .cloned()
            .ok_or(RelayerError::NotConfigured(chain))
    }
}

impl From<RelayerError> for crate::error::NodeError {
    fn from(e: RelayerError) -> Self {
        use crate::error::NodeError;
        let message = e.to_string();
        match e {
            RelayerError::NotConfigured(_) => NodeError::BadRequest {
                kind: "RelayerNotConfigured",
                message,
            },
            RelayerError::Unsupported(_) => NodeError::BadRequest {
                kind: "RelayerUnsupported",
                message,
            },
            RelayerError::BadInput(_) => NodeError::BadRequest {
                kind: "InvalidRelayerQuery",
                message,
            },
            RelayerError::Rpc { .. } => NodeError::BadRequest {
                kind: "ChainRpcError",
                message,
            },
            RelayerError::Transport { .. } | RelayerError::BadResponse { .. } => {
                NodeError::Unreachable {
                    kind: "ChainUnreachable",
                    message,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn amounts_round_trip_through_decimal_and_hex() {
        for text in [
            "0",
            "1",
            "255",
            "256",
            "1000000000000000000",
            "340282366920938463463374607431768211456",
            // 2^256 - 1
            "115792089237316195423570985008687907853269984665640564039457584007913129639935",
        ] {
            assert_eq!(Amount::from_decimal(text).unwrap().to_decimal(), text);
        }
        assert_eq!(Amount::from_hex("0x0").unwrap(), Amount::ZERO);
        assert_eq!(
            Amount::from_hex("0xde0b6b3a7640000").unwrap(),
            Amount::from_u128(1_000_000_000_000_000_000)
        );
        assert_eq!(
            Amount::from_hex(&format!("0x{}", "f".repeat(64)))
                .unwrap()
                .to_decimal(),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert!(Amount::from_u128(10) > Amount::from_u128(9));
        assert!(
            Amount::from_hex("0x1").unwrap()
                < Amount::from_hex(&format!("0x1{}", "0".repeat(32))).unwrap()
        );
    }

    #[test]
    fn bad_amounts_are_refused() {
        // 2^256
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        for text in ["", "-1", "1.5", "1e18", "0x10", " 1", over] {
            assert!(Amount::from_decimal(text).is_err(), "{text:?}");
        }
        for text in ["", "0x", "10", "0xg", &format!("0x{}", "1".repeat(65))] {
            assert!(Amount::from_hex(text).is_err(), "{text:?}");
        }
    }

    #[tokio::test]
    async fn chains_without_a_relayer_say_so() {
        let relayers = Relayers::default();
        for chain in [Chain::Near, Chain::Icp, Chain::Stellar] {
            let r = relayers.get(chain).unwrap();
            let e = r.balance("x").await.unwrap_err().to_string();
            assert!(
                e.contains(&format!("no relayer for {chain} in this build")),
                "{e}"
            );
            let e = r
                .near_access_key("a.near", "k")
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("in this build"), "{e}");
        }
        let e = relayers.get(Chain::Ethereum).err().unwrap().to_string();
        assert!(e.contains("[chains.ethereum] rpc_url"), "{e}");
    }
}
