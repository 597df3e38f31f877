//! The Ethereum relayer: JSON-RPC over HTTP to the node in
//! `[chains.ethereum] rpc_url` (a local Hardhat node in the tests).
//!
//! Each query first reads the latest block (`eth_getBlockByNumber`), then
//! asks at that block's number, so the answer and the block it names go
//! together even while the chain moves. Balances are `eth_getBalance`;
//! ERC-20 balances are `eth_call` of `balanceOf(address)`, ABI-encoded here
//! (selector and one left-padded word: nothing else is needed).

use std::time::Duration;

use futures::future::BoxFuture;
use mero_chains::Chain;
use serde_json::{Value, json};

use super::{Amount, BlockRef, Reading, Relayer, RelayerError};

/// `keccak256("balanceOf(address)")[..4]`.
pub const BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];

/// A relayer over one Ethereum JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct EthereumRelayer {
    url: String,
    http: reqwest::Client,
}

impl EthereumRelayer {
    /// A relayer asking `url`. Only `http://` works in this build: the
    /// node's HTTP client has no TLS, so an `https://` endpoint is refused
    /// here rather than failing at the first query.
    pub fn new(url: &str, timeout_ms: Option<u64>) -> Result<EthereumRelayer, RelayerError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            RelayerError::BadInput(format!("[chains.ethereum] rpc_url `{url}`: {e}"))
        })?;
        if parsed.scheme() != "http" {
            return Err(RelayerError::BadInput(format!(
                "[chains.ethereum] rpc_url `{url}`: only http:// endpoints work in this build (no TLS in the node's HTTP client); run a local node or a proxy on 127.0.0.1"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms.unwrap_or(10_000).max(1)))
            .no_proxy()
            .build()
            .map_err(|e| RelayerError::BadInput(format!("HTTP client: {e}")))?;
        Ok(EthereumRelayer {
            url: url.to_owned(),
            http,
        })
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, RelayerError> {
        let transport = |message: String| RelayerError::Transport {
            chain: Chain::Ethereum,
            url: self.url.clone(),
            message,
        };
        let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let response = self
            .http
            .post(&self.url)
            .json(&request)
            .send()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport(e.to_string()))?;
        // JSON-RPC servers put errors in a 200 body; some use 4xx/5xx with
        // a JSON-RPC body too. Anything else is a transport failure.
        match parse_response(method, &body) {
            Err(RelayerError::BadResponse { .. }) if !status.is_success() => {
                Err(transport(format!("HTTP {status}")))
            }
            other => other,
        }
    }

    async fn network(&self) -> Result<String, RelayerError> {
        let id = self.call("eth_chainId", json!([])).await?;
        let id = quantity("eth_chainId", &id)?;
        Ok(format!("eip155:{id}"))
    }

    async fn latest_block(&self) -> Result<BlockRef, RelayerError> {
        let method = "eth_getBlockByNumber";
        let block = self.call(method, json!(["latest", false])).await?;
        let field = |name: &str| {
            block
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(method, format!("no `{name}` in the block")))
        };
        let number = quantity(method, &Value::String(field("number")?.to_owned()))?;
        let hash = field("hash")?;
        if hash.len() != 66 || !hash.starts_with("0x") {
            return Err(bad(method, format!("`{hash}` is not a block hash")));
        }
        Ok(BlockRef {
            number,
            hash: hash.to_owned(),
        })
    }

    /// The network and latest block, then `f` at that block.
    async fn at_latest<T>(
        &self,
        method: &'static str,
        params: impl FnOnce(String) -> Value,
        parse: impl FnOnce(&Value) -> Result<T, RelayerError>,
    ) -> Result<Reading<T>, RelayerError> {
        let network = self.network().await?;
        let block = self.latest_block().await?;
        let answer = self
            .call(method, params(format!("0x{:x}", block.number)))
            .await?;
        Ok(Reading {
            value: parse(&answer)?,
            block,
            network,
        })
    }
}

fn bad(method: &str, message: impl Into<String>) -> RelayerError {
    RelayerError::BadResponse {
        chain: Chain::Ethereum,
        method: method.to_owned(),
        message: message.into(),
    }
}

/// The `result` of a JSON-RPC response, or its `error` as
/// [`RelayerError::Rpc`]; anything else is a bad response.
pub fn parse_response(method: &str, body: &[u8]) -> Result<Value, RelayerError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let shown: String = String::from_utf8_lossy(body).chars().take(200).collect();
        bad(method, format!("not JSON ({e}): {shown}"))
    })?;
    if let Some(error) = value.get("error") {
        return Err(RelayerError::Rpc {
            chain: Chain::Ethereum,
            method: method.to_owned(),
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
                .to_owned(),
        });
    }
    value
        .get("result")
        .cloned()
        .ok_or_else(|| bad(method, "neither `result` nor `error`"))
}

/// A JSON-RPC quantity that fits 64 bits (a block number, a chain id).
pub fn quantity(method: &str, v: &Value) -> Result<u64, RelayerError> {
    let text = v
        .as_str()
        .ok_or_else(|| bad(method, format!("{v} is not a hex quantity")))?;
    let digits = text
        .strip_prefix("0x")
        .filter(|d| !d.is_empty() && d.len() <= 16)
        .ok_or_else(|| bad(method, format!("`{text}` is not a 64-bit hex quantity")))?;
    u64::from_str_radix(digits, 16).map_err(|e| bad(method, format!("`{text}`: {e}")))
}

/// A 20-byte address from its `0x` hex (any case; an EIP-55 mixed-case
/// one must carry a valid checksum).
pub fn address(text: &str) -> Result<[u8; 20], RelayerError> {
    let canonical = mero_chains::canonical_account(Chain::Ethereum, text)
        .map_err(|e| RelayerError::BadInput(format!("`{text}` is not an Ethereum address: {e}")))?;
    let mut out = [0u8; 20];
    hex::decode_to_slice(canonical.trim_start_matches("0x"), &mut out)
        .map_err(|e| RelayerError::BadInput(format!("`{text}`: {e}")))?;
    Ok(out)
}

/// The calldata of `balanceOf(owner)`: the selector, then the address
/// left-padded to one 32-byte word.
pub fn balance_of_calldata(owner: &[u8; 20]) -> Vec<u8> {
    let mut data = Vec::with_capacity(36);
    data.extend_from_slice(&BALANCE_OF);
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(owner);
    data
}

/// The `uint256` an `eth_call` of `balanceOf` returns: exactly one word.
/// Empty data is what a call to an address without code returns.
pub fn decode_uint256(method: &str, v: &Value) -> Result<Amount, RelayerError> {
    let text = v
        .as_str()
        .ok_or_else(|| bad(method, format!("{v} is not hex data")))?;
    if text == "0x" {
        return Err(bad(
            method,
            "empty data: the token address has no contract (or no balanceOf)",
        ));
    }
    if text.len() != 66 {
        return Err(bad(
            method,
            format!("`{text}` is not one 32-byte ABI word (uint256)"),
        ));
    }
    Amount::from_hex(text).map_err(|m| bad(method, m))
}

impl Relayer for EthereumRelayer {
    fn chain(&self) -> Chain {
        Chain::Ethereum
    }

    fn balance<'a>(
        &'a self,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>> {
        Box::pin(async move {
            let who = format!("0x{}", hex::encode(address(account)?));
            self.at_latest(
                "eth_getBalance",
                |block| json!([who, block]),
                |v| {
                    let text = v
                        .as_str()
                        .ok_or_else(|| bad("eth_getBalance", format!("{v} is not a quantity")))?;
                    Amount::from_hex(text).map_err(|m| bad("eth_getBalance", m))
                },
            )
            .await
        })
    }

    fn token_balance<'a>(
        &'a self,
        token: &'a str,
        account: &'a str,
    ) -> BoxFuture<'a, Result<Reading<Amount>, RelayerError>> {
        Box::pin(async move {
            let to = format!("0x{}", hex::encode(address(token)?));
            let data = format!("0x{}", hex::encode(balance_of_calldata(&address(account)?)));
            self.at_latest(
                "eth_call",
                |block| json!([{"to": to, "data": data}, block]),
                |v| decode_uint256("eth_call", v),
            )
            .await
        })
    }

    fn near_access_key<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Reading<bool>, RelayerError>> {
        Box::pin(async {
            Err(RelayerError::Unsupported(
                "near_access_key asks NEAR, not Ethereum: no relayer for near in this build".into(),
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail fast")]
    use super::*;

    #[test]
    fn balance_of_is_the_selector_and_one_padded_word() {
        let owner = address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap();
        let data = hex::encode(balance_of_calldata(&owner));
        assert_eq!(
            data,
            "70a08231000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        // The selector is keccak256 of the signature.
        use sha3::Digest as _;
        let hash = sha3::Keccak256::digest(b"balanceOf(address)");
        assert_eq!(hash[..4], BALANCE_OF);
    }

    #[test]
    fn addresses_are_checked() {
        // Lower case is fine; a mixed case with a wrong checksum is not.
        assert!(address("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266").is_ok());
        for bad in [
            "0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb9226",
            "f39fd6e51aad88f6f4ce6ab8827279cfffb92266zz",
            "",
        ] {
            let e = address(bad).unwrap_err();
            assert!(matches!(e, RelayerError::BadInput(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn json_rpc_results_and_errors() {
        assert_eq!(
            parse_response(
                "eth_chainId",
                br#"{"jsonrpc":"2.0","id":1,"result":"0x7a69"}"#
            )
            .unwrap(),
            json!("0x7a69")
        );
        let e = parse_response(
            "eth_call",
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"execution reverted"}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(&e, RelayerError::Rpc { code: -32000, message, .. } if message == "execution reverted"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("refused eth_call: execution reverted"),
            "{e}"
        );
        for body in [
            &b"<html>bad gateway</html>"[..],
            br#"{"jsonrpc":"2.0","id":1}"#,
            b"",
        ] {
            let e = parse_response("eth_getBalance", body).unwrap_err();
            assert!(matches!(e, RelayerError::BadResponse { .. }), "{e:?}");
        }
    }

    #[test]
    fn hex_answers_are_parsed_strictly() {
        assert_eq!(quantity("m", &json!("0x7a69")).unwrap(), 31337);
        assert_eq!(quantity("m", &json!("0x0")).unwrap(), 0);
        for v in [
            json!("0x"),
            json!("7a69"),
            json!(31337),
            json!("0x1ffffffffffffffff"),
            json!("0xzz"),
        ] {
            assert!(quantity("m", &v).is_err(), "{v}");
        }
        let word = format!("0x{:064x}", 1_000u32);
        assert_eq!(
            decode_uint256("eth_call", &json!(word)).unwrap(),
            Amount::from_u128(1000)
        );
        let e = decode_uint256("eth_call", &json!("0x")).unwrap_err();
        assert!(e.to_string().contains("no contract"), "{e}");
        for v in [
            json!("0x01"),
            json!(format!("0x{}", "0".repeat(128))),
            json!(null),
        ] {
            assert!(decode_uint256("eth_call", &v).is_err(), "{v}");
        }
    }

    #[test]
    fn only_http_endpoints_are_taken() {
        assert!(EthereumRelayer::new("http://127.0.0.1:8545", None).is_ok());
        for url in [
            "https://mainnet.example",
            "ws://127.0.0.1:8545",
            "127.0.0.1:8545",
        ] {
            let e = EthereumRelayer::new(url, None).unwrap_err().to_string();
            assert!(e.contains("rpc_url"), "{url}: {e}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_transport_error_naming_it() {
        // A port nobody listens on (bound, then closed).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let r = EthereumRelayer::new(&url, Some(2_000)).unwrap();
        let e = r
            .balance("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")
            .await
            .unwrap_err();
        assert!(matches!(e, RelayerError::Transport { .. }), "{e:?}");
        assert!(e.to_string().contains(&url), "{e}");
    }
}
