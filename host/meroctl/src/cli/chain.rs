//! `meroctl chain`: what a chain says through the node's relayer
//! (`[chains.ethereum] rpc_url`; no relayer for NEAR, ICP or Stellar in
//! this build), attestations the node signs of it, and their check.

use clap::Subcommand;
use comfy_table::Table;
use mero_api::Data;
use mero_api::relayer::{
    AttestRequest, Attestation, AttestationVerified, BalanceRequest, ChainReading, Statement,
};

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv};

#[derive(Subcommand)]
pub(crate) enum ChainCmd {
    /// An account's balance (native, or of a token) at the chain's latest block.
    #[command(after_help = "Example:
  meroctl --node node1 chain balance --chain ethereum --account 0x… --token-address 0x…")]
    Balance {
        /// near, ethereum, icp or stellar (only ethereum has a relayer).
        #[arg(long)]
        chain: String,
        /// The account.
        #[arg(long)]
        account: String,
        /// A token contract (ERC-20 for Ethereum): its balance instead.
        /// (Not `--token`: that is the bearer token.)
        #[arg(long = "token-address")]
        token_address: Option<String>,
    },
    /// Asks the chain whether an account holds at least an amount (of a
    /// token, or native) and prints the answer signed by the node, as JSON
    /// (`holds` true or false).
    #[command(after_help = "Example:
  meroctl --node node1 chain attest --chain ethereum --account 0x… --token-address 0x… --at-least 100 > attestation.json")]
    Attest {
        /// near, ethereum, icp or stellar (only ethereum has a relayer).
        #[arg(long)]
        chain: String,
        /// The account.
        #[arg(long)]
        account: String,
        /// A token contract; without it, the native balance.
        #[arg(long = "token-address")]
        token_address: Option<String>,
        /// The least amount, decimal, in the smallest unit (wei, the
        /// token's base unit).
        #[arg(long)]
        at_least: String,
    },
    /// Checks an attestation's signature (a file `chain attest` wrote, or
    /// `-` for stdin): whose claim it is and whether it held.
    VerifyAttestation {
        /// The attestation's JSON file, or `-`.
        file: String,
    },
}

pub(super) async fn run(client: &Client, out: &Output, cmd: ChainCmd) -> Result<(), ClientError> {
    match cmd {
        ChainCmd::Balance {
            chain,
            account,
            token_address: token,
        } => {
            let r: Data<ChainReading> = client
                .post(
                    &format!("/admin-api/chains/{chain}/balance"),
                    &BalanceRequest { account, token },
                )
                .await?;
            out.write(&r.data)
        }
        ChainCmd::Attest {
            chain,
            account,
            token_address: token,
            at_least,
        } => {
            let statement = match token {
                Some(token) => Statement::TokenBalance {
                    token,
                    account,
                    at_least,
                },
                None => Statement::Balance { account, at_least },
            };
            let a: Data<Attestation> = client
                .post(
                    &format!("/admin-api/chains/{chain}/attest"),
                    &AttestRequest { statement },
                )
                .await?;
            out.write(&a.data)
        }
        ChainCmd::VerifyAttestation { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&file)
            }
            .map_err(|e| ClientError::Usage(format!("cannot read {file}: {e}")))?;
            let a: Attestation = serde_json::from_str(&text)
                .map_err(|e| ClientError::Usage(format!("{file} is not an attestation: {e}")))?;
            let v: Data<AttestationVerified> =
                client.post("/admin-api/attestations/verify", &a).await?;
            out.write(&v.data)
        }
    }
}

impl Report for ChainReading {
    fn table(&self) -> Table {
        let mut rows = vec![
            ("Chain", self.chain.clone()),
            ("Network", self.network.clone()),
            (
                "Block",
                format!("{} {}", self.block_number, self.block_hash),
            ),
            ("Account", self.account.clone()),
        ];
        if let Some(t) = &self.token {
            rows.push(("Token", t.clone()));
        }
        rows.push(("Balance", self.balance.clone()));
        kv(&rows)
    }
}

impl Report for Attestation {
    fn table(&self) -> Table {
        kv(&[
            ("Chain", format!("{} ({})", self.chain, self.network)),
            (
                "Block",
                format!("{} {}", self.block_number, self.block_hash),
            ),
            ("Observed", self.observed.clone()),
            ("Holds", self.holds.to_string()),
            ("Attested by", self.attested_by.clone()),
        ])
    }

    /// JSON: it is meant to be kept and checked (`verify-attestation`).
    fn human(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

impl Report for AttestationVerified {
    fn table(&self) -> Table {
        kv(&[
            ("Valid", self.valid.to_string()),
            ("Attested by", self.attested_by.clone()),
            ("Holds", self.holds.to_string()),
        ])
    }
}
