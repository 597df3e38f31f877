//! Reading a component by path for `install-dev-application`, which
//! upstream's meroctl relies on: only regular files (a FIFO or a device is
//! refused before a byte is read), at most the size limit plus one byte,
//! only under the install root when one is configured (`server.install_root`,
//! or `MEROD_DEV_INSTALL_ROOT`), and no error ever shows the file's bytes.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use mero_node::{MAX_COMPONENT_BYTES, NodeError};

use crate::error::{ApiError, ApiResult};

/// What an upload (`install-application` with the component as its body)
/// says about it, in the query.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct UploadQuery {
    pub(crate) package: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) metadata: Option<String>,
}

/// The configured install root, as handlers take it.
#[derive(Clone, Debug, Default)]
pub(crate) struct InstallRoot(pub(crate) Option<PathBuf>);

impl axum::extract::FromRef<crate::AppState> for InstallRoot {
    fn from_ref(s: &crate::AppState) -> InstallRoot {
        InstallRoot(s.install_root.clone())
    }
}

impl InstallRoot {
    fn effective(&self) -> Option<PathBuf> {
        self.0
            .clone()
            .or_else(|| std::env::var_os("MEROD_DEV_INSTALL_ROOT").map(PathBuf::from))
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::bad(
        "UnreadablePath",
        format!(
            "cannot read `{}` on the node's machine: {e}",
            path.display()
        ),
    )
}

/// Reads the component at `path`, within the rules above.
pub(crate) async fn read(path: &str, root: &InstallRoot) -> ApiResult<Vec<u8>> {
    let path = PathBuf::from(path);
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ApiError::bad(
            "InvalidPath",
            "the path must not contain `..`",
        ));
    }
    if !path.is_absolute() {
        return Err(ApiError::bad(
            "InvalidPath",
            format!(
                "`{}` is not an absolute path on the node's machine",
                path.display()
            ),
        ));
    }
    let root = root.effective();
    tokio::task::spawn_blocking(move || read_blocking(&path, root.as_deref()))
        .await
        .map_err(|e| ApiError::from(NodeError::Internal(e.to_string())))?
}

fn read_blocking(path: &Path, root: Option<&Path>) -> ApiResult<Vec<u8>> {
    // Symlinks are resolved first, so that one cannot lead out of the root.
    let real = std::fs::canonicalize(path).map_err(|e| unreadable(path, &e))?;
    if let Some(root) = root {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if !real.starts_with(&root) {
            return Err(ApiError::forbidden(
                "PathOutsideInstallRoot",
                format!("installs are confined to {}", root.display()),
            ));
        }
    }
    let mut file = open_nonblocking(&real).map_err(|e| unreadable(path, &e))?;
    let meta = file.metadata().map_err(|e| unreadable(path, &e))?;
    if !meta.is_file() {
        return Err(ApiError::bad(
            "NotARegularFile",
            format!("`{}` is not a regular file", path.display()),
        ));
    }
    let too_large = || {
        ApiError::bad(
            "ComponentTooLarge",
            format!(
                "`{}` is over the limit of {MAX_COMPONENT_BYTES} bytes",
                path.display()
            ),
        )
    };
    if meta.len() > MAX_COMPONENT_BYTES as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut file)
        .take(MAX_COMPONENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(path, &e))?;
    if bytes.len() > MAX_COMPONENT_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens without blocking on a FIFO that has no writer.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The node's answer to an install from a file, with the loader's words
/// (which quote the file's first bytes) replaced.
pub(crate) fn without_bytes(e: NodeError) -> ApiError {
    if e.kind() == "InvalidComponent" {
        ApiError::bad(
            "InvalidComponent",
            "the file is not a WebAssembly component of this node's app world",
        )
    } else {
        e.into()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_directories_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for p in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let e = read_blocking(p, None).unwrap_err();
            let text = format!("{e:?}");
            assert!(text.contains("NotARegularFile"), "{p:?}: {text}");
        }
    }

    #[test]
    fn the_install_root_confines_and_symlinks_do_not_escape() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.wasm");
        std::fs::write(&secret, b"SECRET").unwrap();
        let link = root.path().join("link.wasm");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let inside = root.path().join("app.wasm");
        std::fs::write(&inside, b"\0asm").unwrap();
        assert_eq!(read_blocking(&inside, Some(root.path())).unwrap(), b"\0asm");
        for p in [&secret, &link] {
            let text = format!("{:?}", read_blocking(p, Some(root.path())).unwrap_err());
            assert!(
                text.contains("PathOutsideInstallRoot") && !text.contains("SECRET"),
                "{text}"
            );
        }
    }
}
