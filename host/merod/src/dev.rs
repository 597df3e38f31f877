//! `merod dev`: installs the bundled kv-store, makes sure a namespace runs
//! it, and prints command lines that call it, ready to paste.

use std::path::{Path, PathBuf};

use mero_api::ids::{b58, hex32};
use mero_node::{InstallSource, Node};

/// Where the dev node lives, for the printed lines.
pub(crate) struct DevInfo {
    pub(crate) home: PathBuf,
    pub(crate) name: String,
}

/// What `meroctl` is when it is not built beside `merod`: run from the
/// repository root, cargo builds it first.
const CARGO_MEROCTL: &str = "cargo run -q --release -p meroctl --";

/// Lifetime of the token `merod dev` prints.
const DEV_TOKEN_SECS: u64 = 24 * 3_600;

/// Installs the bundled kv-store, makes sure a namespace runs it, and prints
/// how to call it.
pub(crate) async fn prepare(
    node: &Node,
    dev: &DevInfo,
    api: &str,
    auth: &mero_server::Auth,
) -> anyhow::Result<()> {
    let app = node
        .install_application(
            InstallSource::Bytes(mero_fixtures::KV_STORE_BYTES.to_vec()),
            Vec::new(),
            Some("kv-store".into()),
            Some("0.1.0".into()),
        )
        .await?;
    let existing = node
        .namespaces()?
        .into_iter()
        .find(|n| n.group.application == app && !n.contexts.is_empty());
    let (ns, ctx) = match existing {
        Some(n) => (n.group.id, n.contexts[0].id),
        None => {
            node.create_namespace(&app, Some("dev".into()), None, Vec::new())
                .await?
        }
    };
    let ctx = b58(&ctx.0);
    let home = std::path::absolute(&dev.home).unwrap_or_else(|_| dev.home.clone());
    let meroctl = meroctl_command(std::env::current_exe().ok().as_deref());
    let name = &dev.name;
    println!();
    println!(
        "Node `{name}` is running at {api} (home {}).",
        home.display()
    );
    println!(
        "kv-store is application {}; namespace {} runs context {ctx}.",
        b58(&app),
        hex32(&ns)
    );
    println!();
    println!("Call it from another terminal:");
    let ctl = format!(
        "{meroctl} --home {} --node {}",
        quote(&home.display().to_string()),
        quote(name)
    );
    println!("  {ctl} call set --context {ctx} --args '{{\"key\":\"hello\",\"value\":\"world\"}}'");
    println!("  {ctl} call get --context {ctx} --args '{{\"key\":\"hello\"}}'");
    // meroctl reads the node's root credential; curl and browser apps need
    // a token: an admin one for a day, minted for this run.
    let bearer = match auth.mode() {
        mero_config::AuthMode::Embedded => {
            let token = auth.mint_token("merod-dev", &["admin".to_string()], DEV_TOKEN_SECS)?;
            println!("  API {api}  token (admin, 24 h): {token}");
            format!(" -H 'authorization: Bearer {token}'")
        }
        mero_config::AuthMode::Proxy => String::new(),
    };
    println!(
        "  curl -s {api}/jsonrpc -H 'content-type: application/json'{bearer} -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"execute\",\"params\":{{\"contextId\":\"{ctx}\",\"method\":\"get\",\"argsJson\":{{\"key\":\"hello\"}}}}}}'"
    );
    println!();
    println!("Press Ctrl-C to stop.");
    Ok(())
}

/// How the printed lines run meroctl: the binary beside `merod` (the dev
/// script builds both) by its absolute path, so the line pastes anywhere
/// and starts at once; otherwise through cargo.
fn meroctl_command(merod: Option<&Path>) -> String {
    let beside = merod
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("meroctl{}", std::env::consts::EXE_SUFFIX)))
        .filter(|p| p.is_file())
        .and_then(|p| std::path::absolute(p).ok());
    match beside {
        Some(path) => quote(&path.display().to_string()),
        None => CARGO_MEROCTL.to_string(),
    }
}

/// `word` as one POSIX shell word: as is when nothing in it is special,
/// otherwise single-quoted.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_plain_paths_and_wraps_the_rest() {
        assert_eq!(quote("/home/a/.calimero"), "/home/a/.calimero");
        assert_eq!(quote("/tmp/my home"), "'/tmp/my home'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn meroctl_beside_merod_is_named_by_path_else_cargo_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let merod = dir.path().join("merod");
        assert_eq!(meroctl_command(Some(&merod)), CARGO_MEROCTL);
        assert_eq!(meroctl_command(None), CARGO_MEROCTL);
        let meroctl = dir
            .path()
            .join(format!("meroctl{}", std::env::consts::EXE_SUFFIX));
        std::fs::write(&meroctl, b"").unwrap();
        assert_eq!(
            meroctl_command(Some(&merod)),
            quote(&meroctl.display().to_string())
        );
    }
}
