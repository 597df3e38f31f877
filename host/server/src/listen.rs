//! The accept loop: HTTP/1.1 with a header-read timeout and a cap on
//! connections. At the cap, a new connection takes the place of the oldest
//! one that has not yet sent a whole request head (a half-open socket
//! holds a descriptor and nothing else), and is refused if every
//! connection is busy; so a flood of half-open sockets can neither exhaust
//! descriptors nor lock out a real client. A connection upgraded to a
//! WebSocket keeps its place until the WebSocket closes (its session holds
//! the [`Slot`]), so live WebSockets count toward the cap too.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tower::ServiceExt as _;

/// Limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request head.
    pub header_read_timeout: Duration,
}

/// The open connections: whether each has sent a request head, and how to
/// drop it. Ids grow, so the smallest is the oldest.
#[derive(Default)]
struct Open {
    next: u64,
    conns: BTreeMap<u64, (Arc<AtomicBool>, oneshot::Sender<()>)>,
}

type Shared = Arc<Mutex<Open>>;

fn lock(open: &Shared) -> std::sync::MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection's place in [`Open`], given up when the last holder drops
/// it: the connection's task, or the WebSocket session it was upgraded to.
pub(crate) struct Slot {
    open: Shared,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.open).conns.remove(&self.id);
    }
}

/// The [`Slot`] of the connection a request came on, in its extensions
/// (absent when the router is driven without this accept loop).
#[derive(Clone)]
pub(crate) struct ConnSlot {
    _held: Arc<Slot>,
}

/// Makes room for one more connection: true if there is (or now is) room.
fn admit(open: &Shared, max: usize) -> bool {
    let mut o = lock(open);
    if o.conns.len() < max {
        return true;
    }
    let idle = o
        .conns
        .iter()
        .find(|(_, (started, _))| !started.load(Ordering::Relaxed))
        .map(|(id, _)| *id);
    match idle.and_then(|id| o.conns.remove(&id)) {
        Some((_, drop_it)) => {
            let _ = drop_it.send(());
            true
        }
        None => false,
    }
}

/// Serves `app` on `listener` until `stop` turns true; then lets requests
/// in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let open: Shared = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset before accept: wait a
                    // little rather than spin, and go on.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        if !admit(&open, limits.max_connections) {
            tracing::debug!("connection cap reached and every connection busy: refused one");
            drop(stream);
            continue;
        }
        let started = Arc::new(AtomicBool::new(false));
        let (kill, killed) = oneshot::channel();
        let id = {
            let mut o = lock(&open);
            let id = o.next;
            o.next += 1;
            o.conns.insert(id, (started.clone(), kill));
            id
        };
        let slot = Arc::new(Slot {
            open: open.clone(),
            id,
        });
        let app = app.clone();
        let mut stop = stop.clone();
        tasks.spawn(async move {
            connection(stream, app, limits, started, slot, killed, &mut stop).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    started: Arc<AtomicBool>,
    slot: Arc<Slot>,
    mut killed: oneshot::Receiver<()>,
    stop: &mut watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        started.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(ConnSlot {
            _held: slot.clone(),
        });
        let app = app.clone();
        async move {
            Ok::<_, Infallible>(
                app.oneshot(req.map(Body::new))
                    .await
                    .unwrap_or_else(|e| match e {}),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            _ = &mut killed => break,
            () = stopped(stop), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_half_open_connection_makes_room() {
        let open: Shared = Arc::default();
        let mut flags = Vec::new();
        let mut rxs = Vec::new();
        for id in 0..3 {
            let f = Arc::new(AtomicBool::new(id == 0));
            let (tx, rx) = oneshot::channel();
            lock(&open).conns.insert(id, (f.clone(), tx));
            flags.push(f);
            rxs.push(rx);
        }
        assert!(admit(&open, 3), "1 was half-open");
        assert!(rxs[1].try_recv().is_ok(), "the oldest half-open one goes");
        assert!(rxs[0].try_recv().is_err(), "a busy one stays");
        flags[2].store(true, Ordering::Relaxed);
        lock(&open)
            .conns
            .insert(3, (Arc::new(AtomicBool::new(true)), oneshot::channel().0));
        assert!(!admit(&open, 3), "all busy: refused");
        assert!(admit(&open, 4));
    }

    #[test]
    fn a_connection_keeps_its_place_while_anything_holds_its_slot() {
        let open: Shared = Arc::default();
        lock(&open)
            .conns
            .insert(7, (Arc::new(AtomicBool::new(true)), oneshot::channel().0));
        let slot = Arc::new(Slot {
            open: open.clone(),
            id: 7,
        });
        let websocket = ConnSlot {
            _held: slot.clone(),
        };
        drop(slot);
        assert!(!admit(&open, 1), "the upgraded socket still counts");
        drop(websocket);
        assert!(lock(&open).conns.is_empty());
        assert!(admit(&open, 1));
    }
}
