//! TCP + noise + yamux, behind a guard that refuses non-loopback addresses when configured.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use libp2p::{
    Multiaddr, PeerId, Transport,
    core::{
        muxing::StreamMuxerBox,
        transport::{Boxed, DialOpts, ListenerId, TransportError, TransportEvent},
        upgrade,
    },
    identity::Keypair,
    noise, tcp, yamux,
};

use crate::{NetworkError, config::is_loopback};

/// Bound on a whole dial: TCP connect plus the noise and yamux upgrades.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The node's transport: TCP + noise + yamux. With `loopback_only`, dials and listens on anything
/// but loopback fail before a socket is opened, whichever behaviour asked for them.
pub(crate) fn build(
    keypair: &Keypair,
    loopback_only: bool,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, NetworkError> {
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
    let noise =
        noise::Config::new(keypair).map_err(|e| NetworkError::Config(format!("noise: {e}")))?;
    Ok(LoopbackGuard {
        inner: tcp,
        loopback_only,
    }
    .upgrade(upgrade::Version::V1Lazy)
    .authenticate(noise)
    .multiplex(yamux::Config::default())
    .timeout(CONNECT_TIMEOUT)
    .boxed())
}

/// Wraps a raw transport and rejects non-loopback addresses when `loopback_only` is set.
struct LoopbackGuard<T> {
    inner: T,
    loopback_only: bool,
}

impl<T> LoopbackGuard<T> {
    fn allowed(&self, addr: &Multiaddr) -> bool {
        !self.loopback_only || is_loopback(addr)
    }
}

impl<T: Transport + Unpin> Transport for LoopbackGuard<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        if !self.allowed(&addr) {
            tracing::warn!(%addr, "loopback-only node: not listening on a non-loopback address");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !self.allowed(&addr) {
            tracing::debug!(%addr, "loopback-only node: not dialling a non-loopback address");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}
