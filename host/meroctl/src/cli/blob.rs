//! `meroctl blob`: upload, list, download, inspect and delete blobs
//! (upstream's `meroctl blob` verbs and flags).

use std::path::PathBuf;

use clap::Subcommand;
use comfy_table::Table;
use mero_api::Data;
use mero_api::blobs::{BlobDeleted, BlobInfo, BlobList};
use serde::Serialize;

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv, list};

/// The most a file uploaded in one go may hold (the node's cap).
const MAX_UPLOAD: u64 = 1 << 30;

#[derive(Subcommand)]
pub(super) enum BlobCmd {
    /// Uploads a file as a blob; with --context-id, that context's members
    /// may fetch it from this node.
    #[command(
        after_help = "Example:\n  meroctl --node node1 blob upload --file ./picture.png --context-id <CONTEXT_ID>"
    )]
    Upload {
        /// The file.
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// The context whose members may fetch it.
        #[arg(long, short = 'c')]
        context_id: Option<String>,
    },
    /// Lists the blobs on the node.
    Ls,
    /// Downloads a blob to a file; with --context-id, the node fetches it
    /// from that context's members if it does not have it.
    Download {
        /// Blob id.
        #[arg(long, short = 'b')]
        blob_id: String,
        /// Where to write it.
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// The context to fetch it from.
        #[arg(long, short = 'c')]
        context_id: Option<String>,
    },
    /// Shows a blob's size, type and hash.
    Info {
        /// Blob id.
        #[arg(long, short = 'b')]
        blob_id: String,
    },
    /// Deletes a blob from the node.
    Delete {
        /// Blob id.
        #[arg(long, short = 'b')]
        blob_id: String,
    },
}

/// What `blob info` reads from the headers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BlobHeaders {
    blob_id: String,
    size: u64,
    mime_type: String,
    hash: String,
}

/// What `blob download` wrote.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Downloaded {
    blob_id: String,
    size: u64,
    path: PathBuf,
}

fn with_context(path: String, context: Option<&str>) -> String {
    match context {
        Some(c) => format!("{path}?context_id={c}"),
        None => path,
    }
}

pub(super) async fn run(client: &Client, out: &Output, cmd: BlobCmd) -> Result<(), ClientError> {
    match cmd {
        BlobCmd::Upload { file, context_id } => {
            let size = tokio::fs::metadata(&file)
                .await
                .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", file.display())))?
                .len();
            if size > MAX_UPLOAD {
                return Err(ClientError::Usage(format!(
                    "{} is {size} bytes; a blob may be at most {MAX_UPLOAD}",
                    file.display()
                )));
            }
            let bytes = tokio::fs::read(&file)
                .await
                .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let path = with_context("/admin-api/blobs".into(), context_id.as_deref());
            let info: Data<BlobInfo> = client.put_bytes(&path, bytes).await?;
            out.write(&info.data)
        }
        BlobCmd::Ls => {
            let blobs: Data<BlobList> = client.get("/admin-api/blobs").await?;
            out.write(&blobs.data)
        }
        BlobCmd::Download {
            blob_id,
            output,
            context_id,
        } => {
            let mut file = tokio::fs::File::create(&output).await.map_err(|e| {
                ClientError::Usage(format!("cannot write {}: {e}", output.display()))
            })?;
            let path = with_context(format!("/admin-api/blobs/{blob_id}"), context_id.as_deref());
            let size = match client.download(&path, &mut file).await {
                Ok(n) => n,
                Err(e) => {
                    drop(file);
                    // Nothing half-written is left behind.
                    let _ = tokio::fs::remove_file(&output).await;
                    return Err(e);
                }
            };
            out.write(&Downloaded {
                blob_id,
                size,
                path: output,
            })
        }
        BlobCmd::Info { blob_id } => {
            let h = client.head(&format!("/admin-api/blobs/{blob_id}")).await?;
            let get = |name: &str| {
                h.get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            out.write(&BlobHeaders {
                size: get("content-length").parse().unwrap_or(0),
                mime_type: get("content-type"),
                hash: get("x-blob-hash"),
                blob_id,
            })
        }
        BlobCmd::Delete { blob_id } => {
            let deleted: BlobDeleted = client
                .delete(&format!("/admin-api/blobs/{blob_id}"))
                .await?;
            out.write(&deleted)
        }
    }
}

impl Report for BlobInfo {
    fn table(&self) -> Table {
        kv(&[
            ("Blob ID", self.blob_id.clone()),
            ("Size", self.size.to_string()),
        ])
    }
}

impl Report for BlobList {
    fn table(&self) -> Table {
        list(&["Blob ID", "Size"], &self.blobs, |b| {
            vec![b.blob_id.clone(), b.size.to_string()]
        })
    }
}

impl Report for BlobDeleted {
    fn table(&self) -> Table {
        kv(&[
            ("Blob ID", self.blob_id.clone()),
            ("Deleted", self.deleted.to_string()),
        ])
    }
}

impl Report for BlobHeaders {
    fn table(&self) -> Table {
        kv(&[
            ("Blob ID", self.blob_id.clone()),
            ("Size", self.size.to_string()),
            ("MIME Type", self.mime_type.clone()),
            ("Hash", self.hash.clone()),
        ])
    }
}

impl Report for Downloaded {
    fn table(&self) -> Table {
        kv(&[
            ("Blob ID", self.blob_id.clone()),
            ("Size", self.size.to_string()),
            ("Saved to", self.path.display().to_string()),
        ])
    }
}
