//! Installed applications: installing a component (from a path, a
//! loopback URL, an upload, or a member that runs it), listing and
//! uninstalling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mero_network::PeerId;
use mero_runtime::{App, Intent};
use mero_store::ApplicationRecord;
use sha2::{Digest, Sha256};

use crate::blocking::blocking;
use crate::error::{NodeError, Result};
use crate::governance::AppInfo;
use crate::node::Node;
use crate::peers::unreachable;
use crate::sync::{Request, Response};

/// Largest component accepted at install.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Where an application's component comes from.
#[derive(Debug, Clone)]
pub enum InstallSource {
    /// A file on the node's machine.
    Path(PathBuf),
    /// A URL, which must be on loopback; `hash` is the expected SHA-256.
    Url {
        /// The URL.
        url: String,
        /// Expected SHA-256 of the bytes.
        hash: Option<[u8; 32]>,
    },
    /// Bytes uploaded by the client.
    Bytes(Vec<u8>),
}

/// An installed application with what its component declares.
#[derive(Debug, Clone)]
pub struct Application {
    /// The stored record.
    pub record: ApplicationRecord,
    /// Methods and their intent, if the component loads.
    pub methods: Vec<(String, Intent)>,
}

impl Node {
    /// Installs an application: reads the component, checks that it is a
    /// component implementing the app world (else 400), compiles it, and
    /// records it. Installing the same thing again gives the same id.
    pub async fn install_application(
        &self,
        source: InstallSource,
        metadata: Vec<u8>,
        package: Option<String>,
        version: Option<String>,
    ) -> Result<[u8; 32]> {
        let (bytes, source_text) = match source {
            InstallSource::Path(path) => read_component(&path).await?,
            InstallSource::Url { url, hash } => {
                let bytes = self.fetch(&url).await?;
                if let Some(expected) = hash
                    && sha256(&bytes) != expected
                {
                    return Err(NodeError::bad(
                        "HashMismatch",
                        "the downloaded component does not match `hash`",
                    ));
                }
                (bytes, url)
            }
            InstallSource::Bytes(bytes) => (bytes, "upload".to_string()),
        };
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(NodeError::bad(
                "ComponentTooLarge",
                format!(
                    "component of {} bytes is over the limit of {MAX_COMPONENT_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let app = self.load_component(&bytes).await?;
        let blob = app.hash();
        let size = bytes.len() as u64;
        let id = sha256(
            &[
                &blob[..],
                &size.to_le_bytes(),
                source_text.as_bytes(),
                &metadata,
            ]
            .concat(),
        );
        let declared = app.description();
        // The component says what it is; a client's flags may only confirm it.
        for (what, given, own) in [
            ("package", &package, &declared.package),
            ("version", &version, &declared.version),
        ] {
            if let Some(given) = given.as_deref().filter(|g| !g.is_empty())
                && given != own
            {
                return Err(NodeError::bad(
                    "VersionMismatch",
                    format!("the component declares {what} `{own}`, not `{given}`"),
                ));
            }
        }
        let record = ApplicationRecord {
            id,
            blob,
            size,
            source: source_text,
            metadata,
            package: declared.package.clone(),
            version: declared.version.clone(),
            state_version: declared.state_version,
            installed_at_millis: mero_crdt::hlc::wall_millis(),
        };
        self.store_application(record, bytes).await?;
        Ok(id)
    }

    async fn load_component(&self, bytes: &[u8]) -> Result<Arc<App>> {
        self.inner.runtime.load(bytes).await.map_err(|e| match e {
            mero_runtime::LoadError::Invalid(m) => {
                NodeError::bad("InvalidComponent", format!("invalid component: {m}"))
            }
            mero_runtime::LoadError::Host(m) => NodeError::Internal(m),
        })
    }

    async fn store_application(&self, record: ApplicationRecord, bytes: Vec<u8>) -> Result<()> {
        let (id, package, blob) = (record.id, record.package.clone(), record.blob);
        let store = self.inner.store.clone();
        blocking(move || {
            let mut w = store.write()?;
            w.put_blob(&blob, &bytes)?;
            w.put_application(&record)?;
            w.commit()?;
            Ok(())
        })
        .await?;
        tracing::info!(application = %bs58::encode(id).into_string(), %package, "application installed");
        Ok(())
    }

    /// Installs a namespace's application from bytes a member sent (their
    /// hash already checked against `app.blob`), under the namespace's
    /// application id.
    async fn install_replicated(&self, app: &AppInfo, bytes: Vec<u8>) -> Result<()> {
        let loaded = self.load_component(&bytes).await?;
        if loaded.hash() != app.blob {
            return Err(NodeError::bad(
                "HashMismatch",
                "the component fetched from a member is not the namespace's",
            ));
        }
        let record = ApplicationRecord {
            id: app.id,
            blob: app.blob,
            size: bytes.len() as u64,
            source: app.source.clone(),
            metadata: Vec::new(),
            package: app.package.clone(),
            version: app.version.clone(),
            state_version: loaded.description().state_version,
            installed_at_millis: mero_crdt::hlc::wall_millis(),
        };
        self.store_application(record, bytes).await
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| NodeError::bad("InvalidUrl", format!("invalid url `{url}`: {e}")))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(NodeError::bad(
                "InvalidUrl",
                "only http and https URLs can be installed from",
            ));
        }
        // This node never sends traffic beyond the machine: installs come
        // from loopback only.
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !loopback {
            return Err(NodeError::forbidden(
                "NonLoopbackUrl",
                format!(
                    "installing from `{url}` is refused: only loopback URLs (127.0.0.1, ::1, localhost) are allowed"
                ),
            ));
        }
        let fail = |e: reqwest::Error| {
            NodeError::bad("DownloadFailed", format!("cannot download `{url}`: {e}"))
        };
        let mut resp = self.inner.http.get(parsed).send().await.map_err(fail)?;
        if !resp.status().is_success() {
            return Err(NodeError::bad(
                "DownloadFailed",
                format!("`{url}` answered {}", resp.status()),
            ));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(fail)? {
            if bytes.len() + chunk.len() > MAX_COMPONENT_BYTES {
                return Err(NodeError::bad(
                    "ComponentTooLarge",
                    format!("`{url}` is over {MAX_COMPONENT_BYTES} bytes"),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    fn describe(&self, record: &ApplicationRecord) -> Application {
        let methods = self
            .inner
            .runtime
            .loaded(&record.blob)
            .map(|app: Arc<App>| {
                app.description()
                    .methods
                    .iter()
                    .map(|(m, i)| (m.clone(), *i))
                    .collect()
            })
            .unwrap_or_default();
        Application {
            record: record.clone(),
            methods,
        }
    }

    /// Every installed application.
    pub fn applications(&self) -> Result<Vec<Application>> {
        let apps = self.inner.store.snapshot()?.applications()?;
        Ok(apps.iter().map(|r| self.describe(r)).collect())
    }

    /// An installed application (404 if unknown).
    pub fn application(&self, id: &[u8; 32]) -> Result<Application> {
        let record = self
            .inner
            .store
            .snapshot()?
            .application(id)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        Ok(self.describe(&record))
    }

    /// Every installed version of the package `id` belongs to, oldest
    /// first (404 if `id` is unknown).
    pub fn application_versions(&self, id: &[u8; 32]) -> Result<Vec<Application>> {
        let package = self.application(id)?.record.package;
        let mut same: Vec<Application> = self
            .applications()?
            .into_iter()
            .filter(|a| a.record.package == package)
            .collect();
        same.sort_by(|a, b| {
            semver_key(&a.record.version)
                .cmp(&semver_key(&b.record.version))
                .then(
                    a.record
                        .installed_at_millis
                        .cmp(&b.record.installed_at_millis),
                )
        });
        Ok(same)
    }

    /// Uninstalls an application. Refused (409) while a context runs it.
    pub async fn uninstall_application(&self, id: &[u8; 32]) -> Result<()> {
        let snap = self.inner.store.snapshot()?;
        let record = snap
            .application(id)?
            .ok_or_else(|| NodeError::not_found("ApplicationNotFound", "Application not found"))?;
        let used = snap
            .contexts()?
            .iter()
            .filter(|c| c.application == *id)
            .count();
        if used > 0 {
            return Err(NodeError::conflict(
                "ApplicationInUse",
                format!("{used} context(s) run this application; delete them first"),
            ));
        }
        let shared = snap
            .applications()?
            .iter()
            .any(|a| a.id != *id && a.blob == record.blob)
            || snap.contexts()?.iter().any(|c| c.blob == record.blob);
        drop(snap);
        let store = self.inner.store.clone();
        let id = *id;
        blocking(move || {
            let mut w = store.write()?;
            w.delete_application(&id)?;
            if !shared {
                w.delete_blob(&record.blob)?;
            }
            w.commit()?;
            Ok(())
        })
        .await
    }

    /// Installs a namespace's application from a member if it is not
    /// installed here: fetched by content hash, the hash checked.
    pub(crate) async fn ensure_app(&self, app: &AppInfo, peers: &[PeerId]) -> Result<()> {
        if self.inner.store.snapshot()?.application(&app.id)?.is_some() {
            return Ok(());
        }
        for p in peers {
            match self
                .inner
                .peers
                .fetch(*p, &Request::Blob { hash: app.blob })
                .await
            {
                Ok(Response::Blob(bytes)) => {
                    if sha256(&bytes) != app.blob {
                        tracing::warn!("a peer sent a component whose hash does not match");
                        continue;
                    }
                    self.install_replicated(app, bytes).await?;
                    return Ok(());
                }
                Ok(other) => tracing::debug!(?other, "peer did not send the component"),
                Err(e) => tracing::debug!(error = %e, "fetching the component failed"),
            }
        }
        Err(unreachable(
            "could not fetch the context's application from any member",
        ))
    }
}

/// A version for ordering: semver precedence ("1.10.0" after "1.9.0");
/// a version that is not semver sorts first.
fn semver_key(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version).ok()
}

async fn read_component(path: &Path) -> Result<(Vec<u8>, String)> {
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(NodeError::bad(
            "InvalidPath",
            "the path must not contain `..`",
        ));
    }
    if !path.is_absolute() {
        return Err(NodeError::bad(
            "InvalidPath",
            format!(
                "`{}` is not an absolute path on the node's machine",
                path.display()
            ),
        ));
    }
    if let Some(root) = std::env::var_os("MEROD_DEV_INSTALL_ROOT")
        && !path.starts_with(Path::new(&root))
    {
        return Err(NodeError::forbidden(
            "PathOutsideInstallRoot",
            format!("installs are confined to {}", Path::new(&root).display()),
        ));
    }
    let bytes = tokio::fs::read(path).await.map_err(|e| {
        NodeError::bad(
            "UnreadablePath",
            format!(
                "cannot read `{}` on the node's machine: {e}",
                path.display()
            ),
        )
    })?;
    Ok((bytes, format!("file://{}", path.display())))
}
