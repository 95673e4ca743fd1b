//! When a cache file may be trusted, and when it may be written.
//!
//! A cache file stores the [`Key`] of its path entry as observed *before*
//! the scan. A reader trusts the file only while that key equals the
//! current one; any difference, in either direction, means rebuild, because
//! mtimes go backwards after branch switches and restores.
//!
//! A file is never written while the directory's newest timestamp is less
//! than the settle time old (10 s by default): a second change within the
//! same clock tick would leave the timestamp unchanged and the stale file
//! trusted forever. A timestamp in the future counts as too fresh.

use std::time::Duration;

use crate::index::Key;

/// The default time a directory must be left alone before its index is
/// published.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

/// Whether a key is old enough to publish an index for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settledness {
    /// Older than the settle time.
    Settled,
    /// Changed less than the settle time ago; it settles `remaining` from
    /// now.
    TooFresh {
        /// How long until it may be published.
        remaining: Duration,
    },
    /// A timestamp lies `ahead` in the future. It never settles on its own.
    InFuture {
        /// How far ahead of the clock the timestamp is.
        ahead: Duration,
    },
}

impl Settledness {
    /// Judges `key` against the clock reading `now_ns`.
    pub fn of(key: &Key, now_ns: i64, settle: Duration) -> Settledness {
        let newest = key.newest_change_ns();
        if newest > now_ns {
            return Settledness::InFuture {
                ahead: Duration::from_nanos(newest.abs_diff(now_ns)),
            };
        }
        let age = Duration::from_nanos(newest.abs_diff(now_ns));
        if age < settle {
            Settledness::TooFresh {
                remaining: settle - age,
            }
        } else {
            Settledness::Settled
        }
    }
}

impl Settledness {
    /// A stable one-word code: `settled`, `too-fresh` or `in-future`.
    pub fn code(&self) -> &'static str {
        match self {
            Settledness::Settled => "settled",
            Settledness::TooFresh { .. } => "too-fresh",
            Settledness::InFuture { .. } => "in-future",
        }
    }

    /// The seconds that go with the state: how long until it settles, or
    /// how far ahead of the clock it is; 0 when settled.
    pub fn seconds(&self) -> f64 {
        match self {
            Settledness::Settled => 0.0,
            Settledness::TooFresh { remaining } => remaining.as_secs_f64(),
            Settledness::InFuture { ahead } => ahead.as_secs_f64(),
        }
    }
}

/// One line for people: `settled`, `settles in 3.2 s`, or `timestamp
/// 5.0 s in the future: will not publish`.
impl std::fmt::Display for Settledness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Settledness::Settled => f.write_str("settled"),
            Settledness::TooFresh { remaining } => {
                write!(f, "settles in {:.1} s", remaining.as_secs_f64())
            }
            Settledness::InFuture { ahead } => write!(
                f,
                "timestamp {:.1} s in the future: will not publish",
                ahead.as_secs_f64()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn key(mtime: i64, ctime: i64) -> Key {
        Key {
            mtime_ns: mtime,
            ctime_ns: ctime,
            ..Key::default()
        }
    }

    #[test]
    fn settled_only_after_the_settle_time() {
        let now = 1_000 * SEC;
        let settle = Duration::from_secs(10);
        assert_eq!(
            Settledness::of(&key(now - 11 * SEC, now - 20 * SEC), now, settle),
            Settledness::Settled
        );
        assert_eq!(
            Settledness::of(&key(now - 10 * SEC, now - 10 * SEC), now, settle),
            Settledness::Settled
        );
        assert_eq!(
            Settledness::of(&key(now - 20 * SEC, now - 3 * SEC), now, settle),
            Settledness::TooFresh {
                remaining: Duration::from_secs(7)
            },
            "a recent ctime holds publishing back even when mtime is old"
        );
    }

    #[test]
    fn future_timestamps_never_settle() {
        let now = 1_000 * SEC;
        let settle = Duration::from_secs(10);
        assert_eq!(
            Settledness::of(&key(now + 5 * SEC, now - 50 * SEC), now, settle),
            Settledness::InFuture {
                ahead: Duration::from_secs(5)
            }
        );
        assert_eq!(
            Settledness::of(&key(now - 50 * SEC, now + SEC), now, Duration::ZERO),
            Settledness::InFuture {
                ahead: Duration::from_secs(1)
            }
        );
    }

    #[test]
    fn zero_settle_time_publishes_at_once() {
        let now = 1_000 * SEC;
        assert_eq!(
            Settledness::of(&key(now, now), now, Duration::ZERO),
            Settledness::Settled
        );
    }
}
