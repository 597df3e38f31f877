//! `meroctl app`: install, list, inspect and uninstall applications.

use std::path::PathBuf;

use clap::Subcommand;
use comfy_table::Table;
use mero_api::outcome::Uninstalled;
use mero_api::upgrade::ApplicationVersion;
use mero_api::{Application, ApplicationData, ApplicationIdData, ApplicationList, Data};

use crate::client::{Client, ClientError};
use crate::output::{Output, Report, kv, list, table};

#[derive(Subcommand)]
pub(super) enum AppCmd {
    /// Installs a component from a file: its bytes are uploaded, so this
    /// works whichever machine the node runs on.
    #[command(
        after_help = "Example:\n  meroctl --node node1 app install --path target/wasm32-wasip2/release/kv_store.wasm"
    )]
    Install {
        /// Path of the .wasm component.
        #[arg(long)]
        path: PathBuf,
        /// The package the component must declare (the node refuses another).
        #[arg(long)]
        package: Option<String>,
        /// The version the component must declare.
        #[arg(long)]
        version: Option<String>,
        /// Metadata (stored as bytes).
        #[arg(long, short = 'm')]
        metadata: Option<String>,
    },
    /// Lists installed applications.
    Ls,
    /// Shows an application and its methods.
    Get {
        /// Application id.
        id: String,
    },
    /// Uninstalls an application no context runs.
    Uninstall {
        /// Application id.
        id: String,
    },
    /// Lists the installed versions of an application's package.
    Versions {
        /// Application id (of any version).
        id: String,
    },
}

pub(super) async fn run(client: &Client, out: &Output, cmd: AppCmd) -> Result<(), ClientError> {
    match cmd {
        AppCmd::Install {
            path,
            package,
            version,
            metadata,
        } => {
            let bytes = std::fs::read(&path)
                .map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))?;
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            // Only what was asked for: the node checks it against what the
            // component declares.
            if let Some(p) = &package {
                query.append_pair("package", p);
            }
            if let Some(v) = &version {
                query.append_pair("version", v);
            }
            let query = query
                .append_pair("metadata", &metadata.unwrap_or_default())
                .finish();
            let installed: Data<ApplicationIdData> = client
                .post_bytes(
                    &format!("/admin-api/install-application?{query}"),
                    "application/wasm",
                    bytes,
                )
                .await?;
            out.write(&installed.data)
        }
        AppCmd::Ls => {
            let list: Data<ApplicationList> = client.get("/admin-api/applications").await?;
            out.write(&list.data.apps)
        }
        AppCmd::Get { id } => {
            let app: Data<ApplicationData> =
                client.get(&format!("/admin-api/applications/{id}")).await?;
            out.write(&app.data.application)
        }
        AppCmd::Versions { id } => {
            let versions: Data<Vec<ApplicationVersion>> = client
                .get(&format!("/admin-api/applications/{id}/versions"))
                .await?;
            out.write(&versions.data)
        }
        AppCmd::Uninstall { id } => {
            let gone: Data<ApplicationIdData> = client
                .delete(&format!("/admin-api/applications/{id}"))
                .await?;
            out.write(&Uninstalled {
                application_id: gone.data.application_id,
            })
        }
    }
}

/// `app install`'s answer.
impl Report for ApplicationIdData {
    fn table(&self) -> Table {
        let mut t = table(&["Application Installed"]);
        t.add_row(vec![format!(
            "Successfully installed application '{}'",
            self.application_id
        )]);
        t
    }
}

impl Report for Vec<Application> {
    fn table(&self) -> Table {
        list(
            &["ID", "Package", "Version", "Source", "Size", "Blob"],
            self,
            |a| {
                vec![
                    a.id.clone(),
                    a.package.clone(),
                    a.version.clone().unwrap_or_default(),
                    a.source.clone(),
                    a.size.to_string(),
                    format!("Blob: {}", a.blob.bytecode),
                ]
            },
        )
    }
}

impl Report for Application {
    fn table(&self) -> Table {
        let methods = self
            .methods
            .iter()
            .map(|m| format!("{} ({})", m.name, m.intent))
            .collect::<Vec<_>>()
            .join("\n");
        kv(&[
            ("ID", self.id.clone()),
            ("Package", self.package.clone()),
            ("Version", self.version.clone().unwrap_or_default()),
            ("Source", self.source.clone()),
            ("Size", self.size.to_string()),
            ("Blob", self.blob.bytecode.clone()),
            ("Methods", methods),
        ])
    }
}

impl Report for Vec<ApplicationVersion> {
    fn table(&self) -> Table {
        list(
            &["Version", "State", "Application ID", "Package", "Size"],
            self,
            |v| {
                vec![
                    v.version.clone(),
                    v.state_version.to_string(),
                    v.application_id.clone(),
                    v.package.clone(),
                    v.size.to_string(),
                ]
            },
        )
    }
}

impl Report for Uninstalled {
    fn table(&self) -> Table {
        kv(&[("Uninstalled", self.application_id.clone())])
    }
}

#[cfg(test)]
mod tests {
    use mero_api::{ApplicationBlob, MethodInfo};

    use super::*;

    fn app() -> Application {
        Application {
            id: "App1".into(),
            blob: ApplicationBlob {
                bytecode: "Blob1".into(),
                compiled: "1111".into(),
            },
            size: 42,
            source: "file:///a.wasm".into(),
            metadata: Vec::new(),
            package: "kv".into(),
            version: Some("1.0.0".into()),
            methods: vec![MethodInfo {
                name: "get".into(),
                intent: "readOnly".into(),
            }],
        }
    }

    #[test]
    fn an_application_list_is_one_row_per_app() {
        let shown = vec![app()].human();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 5, "{shown}");
        assert!(lines[1].starts_with("│ ID ") && lines[1].contains("┆ Blob "));
        assert_eq!(
            lines[3],
            "│ App1 ┆ kv      ┆ 1.0.0   ┆ file:///a.wasm ┆ 42   ┆ Blob: Blob1 │"
        );
        assert_eq!(
            serde_json::to_value(vec![app()]).unwrap()[0]["id"],
            "App1",
            "JSON is the list itself"
        );
    }

    #[test]
    fn an_installed_app_says_so() {
        let shown = ApplicationIdData {
            application_id: "App1".into(),
        }
        .human();
        assert!(
            shown.contains("│ Application Installed")
                && shown.contains("│ Successfully installed application 'App1' │"),
            "{shown}"
        );
    }
}
