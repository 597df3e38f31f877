//! Serving a started node until a signal or its executor's end: the
//! executor runs every write of the node, so once it ends the API would
//! refuse every call as "shutting down" until someone restarted the node.
//! Serving stops instead, and `merod run` exits non-zero.

use std::future::Future;
use std::io::Write as _;

use anyhow::bail;
use mero_node::Node;
use tokio::net::TcpListener;

/// Serves `node`'s API on `listeners` until `signal` resolves (then the
/// node finishes its queued work and stops) or its executor ends (then it
/// says why, loudly, and fails).
pub(crate) async fn serve_until_stopped(
    node: Node,
    listeners: Vec<TcpListener>,
    options: mero_server::ServerOptions,
    signal: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (died_tx, mut died) = tokio::sync::oneshot::channel();
    let exec = node.executor().clone();
    let stop = async move {
        tokio::select! {
            () = signal => {}
            why = exec.ended() => {
                let _ = died_tx.send(why);
            }
        }
    };
    mero_server::serve(node.clone(), listeners, options, stop).await?;
    if let Ok(why) = died.try_recv() {
        tracing::error!(reason = %why, "the executor stopped: this node cannot serve calls; exiting");
        // The log may be what failed: say it where an operator looks too.
        let _ = writeln!(
            std::io::stderr(),
            "merod: the executor stopped ({why}); exiting"
        );
        let _ = node.shutdown().await;
        bail!("the executor stopped: {why}");
    }
    tracing::info!("stopping: finishing queued work");
    node.shutdown().await?;
    drop(node);
    tracing::info!("stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests fail fast")]

    use std::time::Duration;

    use mero_config::ConfigFile;
    use mero_node::NodeOptions;

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    async fn started() -> (tempfile::TempDir, Node, mero_server::ServerOptions) {
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigFile::generate(1, 0).unwrap();
        let node = Node::start(NodeOptions {
            dir: dir.path().into(),
            config: config.clone(),
        })
        .unwrap();
        let options = mero_server::ServerOptions::from_config(dir.path(), &config).unwrap();
        (dir, node, options)
    }

    async fn health(addr: std::net::SocketAddr) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            b"GET /admin-api/health HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    }

    /// The executor ending while the API answers (here it is stopped
    /// behind the server's back; a panic ends it the same way, see the
    /// executor's `an_executor_that_panics_says_why_it_ended`) stops
    /// serving and fails with the reason: `merod run` exits non-zero.
    #[tokio::test]
    async fn an_ended_executor_stops_serving_and_fails() {
        let (_dir, node, options) = started().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = tokio::spawn(serve_until_stopped(
            node.clone(),
            vec![listener],
            options,
            std::future::pending(),
        ));
        let alive = health(addr).await.unwrap();
        assert!(alive.contains("\"alive\""), "{alive}");

        node.executor().shutdown().await.unwrap();
        let out = tokio::time::timeout(WAIT, serving).await.unwrap().unwrap();
        let err = out.unwrap_err().to_string();
        assert!(err.contains("the executor stopped"), "{err}");
        assert!(health(addr).await.is_err(), "still serving");
    }

    /// A signal stops serving cleanly: the node's work is finished and the
    /// run succeeds.
    #[tokio::test]
    async fn a_signal_stops_serving_cleanly() {
        let (_dir, node, options) = started().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(serve_until_stopped(
            node.clone(),
            vec![listener],
            options,
            async move {
                let _ = rx.await;
            },
        ));
        tx.send(()).unwrap();
        tokio::time::timeout(WAIT, serving)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(node.executor().has_ended().is_some());
    }
}
