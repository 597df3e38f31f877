//! Hybrid logical clock: wall-clock milliseconds plus a counter, so that a
//! write is ordered after everything its author had seen, even when clocks
//! disagree.

use borsh::{BorshDeserialize, BorshSerialize};

/// A hybrid logical timestamp. Ordered by `millis`, then `counter`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    BorshSerialize,
    BorshDeserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch.
    pub millis: u64,
    /// Disambiguates timestamps within one millisecond.
    pub counter: u32,
}

impl Hlc {
    /// Big-endian bytes that sort like the timestamp.
    pub fn to_sortable_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..8].copy_from_slice(&self.millis.to_be_bytes());
        out[8..].copy_from_slice(&self.counter.to_be_bytes());
        out
    }
}

/// A replica's clock. Every timestamp it hands out is greater than every
/// timestamp it handed out or observed before.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    last: Hlc,
}

impl Clock {
    /// A clock that will never go behind `last`.
    pub fn starting_after(last: Hlc) -> Self {
        Clock { last }
    }

    /// The latest timestamp handed out or observed.
    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A fresh timestamp, given the wall clock.
    pub fn tick(&mut self, now_millis: u64) -> Hlc {
        self.last = if now_millis > self.last.millis {
            Hlc {
                millis: now_millis,
                counter: 0,
            }
        } else {
            match self.last.counter.checked_add(1) {
                Some(counter) => Hlc {
                    millis: self.last.millis,
                    counter,
                },
                None => Hlc {
                    millis: self.last.millis.saturating_add(1),
                    counter: 0,
                },
            }
        };
        self.last
    }

    /// Moves the clock past a timestamp seen from another replica.
    pub fn observe(&mut self, seen: Hlc) {
        if seen > self.last {
            self.last = seen;
        }
    }
}

/// Milliseconds since the Unix epoch from the system clock (0 if it is set
/// before 1970).
pub fn wall_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_even_if_wall_clock_goes_back() {
        let mut c = Clock::default();
        let a = c.tick(100);
        let b = c.tick(50);
        let d = c.tick(100);
        assert!(a < b && b < d);
        c.observe(Hlc {
            millis: 500,
            counter: 7,
        });
        assert_eq!(
            c.tick(10),
            Hlc {
                millis: 500,
                counter: 8
            }
        );
    }

    #[test]
    fn counter_overflow_moves_to_next_millisecond() {
        let mut c = Clock::starting_after(Hlc {
            millis: 5,
            counter: u32::MAX,
        });
        assert_eq!(
            c.tick(0),
            Hlc {
                millis: 6,
                counter: 0
            }
        );
    }
}
