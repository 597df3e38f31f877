//! `meroctl group metadata`: read and replace the metadata record of a
//! group, of one of its members (`--member`) or of one of its contexts
//! (`--context`).

use clap::{Args, Subcommand};
use comfy_table::Table;
use mero_api::metadata::{GetMetadataResponse, MetadataRecord, SetMetadataRequest};
use serde::de::IgnoredAny;

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv, or_dash};

#[derive(Subcommand)]
pub(crate) enum MetadataCmd {
    /// Shows the record.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group metadata get <GROUP_ID> --member <MEMBER>"
    )]
    Get(Which),
    /// Replaces the record: its name and all of its properties.
    #[command(
        after_help = "Example:\n  meroctl --node node1 group metadata set <GROUP_ID> --name team --data colour=blue"
    )]
    Set {
        #[command(flatten)]
        which: Which,
        /// Display name (at most 64 bytes); left out, the name is unset.
        #[arg(long)]
        name: Option<String>,
        /// A property, `key=value`; repeat for more.
        #[arg(long = "data", value_parser = key_value)]
        data: Vec<(String, String)>,
    },
}

/// Whose record.
#[derive(Args)]
pub(crate) struct Which {
    /// Group (namespace) id, hex.
    group: String,
    /// A member's record (its hex key) instead of the group's.
    #[arg(long, conflicts_with = "context")]
    member: Option<String>,
    /// A context's record (its id) instead of the group's.
    #[arg(long)]
    context: Option<String>,
}

impl Which {
    fn path(&self) -> String {
        let g = &self.group;
        match (&self.member, &self.context) {
            (Some(m), _) => format!("/admin-api/groups/{g}/members/{m}/metadata"),
            (_, Some(c)) => format!("/admin-api/groups/{g}/contexts/{c}/metadata"),
            _ => format!("/admin-api/groups/{g}/metadata"),
        }
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}

/// What `get` prints when no record was ever set.
#[derive(serde::Serialize)]
struct NoRecord;

impl Report for NoRecord {
    fn table(&self) -> Table {
        kv(&[("Metadata", "none set".into())])
    }
}

impl Report for MetadataRecord {
    fn table(&self) -> Table {
        let mut rows = vec![("Name", or_dash(self.name.as_deref()))];
        let data: Vec<String> = self.data.iter().map(|(k, v)| format!("{k}={v}")).collect();
        rows.push(("Data", data.join("\n")));
        rows.push(("Updated by", self.updated_by.clone()));
        rows.push(("Updated at (ms)", self.updated_at.to_string()));
        kv(&rows)
    }
}

pub(crate) async fn run(
    client: &Client,
    out: &Output,
    cmd: MetadataCmd,
) -> Result<(), ClientError> {
    match cmd {
        MetadataCmd::Get(which) => {
            let got: GetMetadataResponse = client.get(&which.path()).await?;
            match got.data {
                Some(record) => out.write(&record),
                None => out.write(&NoRecord),
            }
        }
        MetadataCmd::Set { which, name, data } => {
            let body = SetMetadataRequest {
                name,
                data: data.into_iter().collect(),
            };
            let _: IgnoredAny = client.put(&which.path(), &body).await?;
            let got: GetMetadataResponse = client.get(&which.path()).await?;
            match got.data {
                Some(record) => out.write(&record),
                None => out.write(&NoRecord),
            }
        }
    }
}
