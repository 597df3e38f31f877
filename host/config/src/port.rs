//! Picking a free loopback port for a new node.
//!
//! Port 0 would hand out a port from the kernel's ephemeral range
//! (32768–60999 on Linux), which outgoing connections also draw from: a
//! port that was free when picked can be some client's source port by the
//! time the node binds it, or when a stopped node starts again. So ports
//! are picked below that range, from an offset that differs per process
//! (so parallel test runs start apart) and never twice in one process.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The range ports are picked from: registered ports, below the ephemeral range.
const FIRST: u32 = 20_000;
const COUNT: u32 = 12_000;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port on 127.0.0.1 that nothing listens on and that this process has
/// not handed out before.
pub fn free_loopback_port() -> std::io::Result<u16> {
    // Spread processes over the range: consecutive pids land 997 apart.
    pick(&NEXT, std::process::id().wrapping_mul(997) % COUNT)
}

fn pick(next: &AtomicU32, base: u32) -> std::io::Result<u16> {
    for _ in 0..COUNT {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let port = FIRST + (base + n) % COUNT;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("no free port on 127.0.0.1 in {FIRST}..{}", FIRST + COUNT),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_free_below_the_ephemeral_range_and_never_repeat() {
        let a = free_loopback_port().unwrap();
        let b = free_loopback_port().unwrap();
        assert_ne!(a, b);
        for p in [a, b] {
            assert!((20_000..32_000).contains(&p), "{p}");
            TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        }
    }

    #[test]
    fn a_port_someone_listens_on_is_skipped() {
        // Picked half the range away from what `free_loopback_port` hands
        // out in this process: probing binds each port for a moment, and
        // the test beside this one binds the ports it was handed.
        let base = (std::process::id().wrapping_mul(997) + COUNT / 2) % COUNT;
        let taken = pick(&AtomicU32::new(0), base).unwrap();
        let _held = TcpListener::bind((Ipv4Addr::LOCALHOST, taken)).unwrap();
        let base = u32::from(taken) - FIRST;
        let next = pick(&AtomicU32::new(0), base).unwrap();
        assert_ne!(next, taken);
    }
}
