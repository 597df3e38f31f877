//! `meroctl peers`: how many peers the node is connected to.

use comfy_table::Table;
use mero_api::PeerCount;

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv};

pub(super) async fn run(client: &Client, out: &Output) -> Result<(), ClientError> {
    // Not wrapped in `data`, as upstream.
    let peers: PeerCount = client.get("/admin-api/peers").await?;
    out.write(&peers)
}

impl Report for PeerCount {
    fn table(&self) -> Table {
        kv(&[("Peers", self.count.to_string())])
    }
}
