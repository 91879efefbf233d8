//! Exponential back-off per key, as client-go's `flowcontrol.Backoff` the kubelet keeps for
//! crash loops and image pulls: the delay starts at `initial`, doubles at every
//! [`Backoff::next`] up to `max`, and starts over once a key has been quiet for `2 * max`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct Entry {
    delay: Duration,
    last: SystemTime,
}

/// The back-off of every key (a container's restarts, its image pulls).
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    /// Nothing backing off yet.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// `Some(delay)` while `key`, whose last attempt ended at `ended`, must still wait
    /// (`IsInBackOffSince`).
    pub fn since(&self, key: &str, ended: SystemTime) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        let waited = SystemTime::now().duration_since(ended).unwrap_or_default();
        (waited < entry.delay).then_some(entry.delay)
    }

    /// Whether `key` must still wait counted from its last [`Backoff::next`]
    /// (`IsInBackOffSinceUpdate`).
    pub fn since_update(&self, key: &str) -> bool {
        self.entries
            .get(key)
            .is_some_and(|e| self.since(key, e.last).is_some())
    }

    /// Records an attempt of `key`: its delay doubles (`Next`).
    pub fn next(&mut self, key: &str) {
        let now = SystemTime::now();
        let delay = match self.entries.get(key) {
            // A key quiet for long enough starts from the beginning again.
            Some(e) if now.duration_since(e.last).unwrap_or_default() < self.max * 2 => {
                (e.delay * 2).min(self.max)
            }
            _ => self.initial,
        };
        self.entries
            .insert(key.to_owned(), Entry { delay, last: now });
    }

    /// Forgets `key` (`Reset`).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_max() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(25));
        let now = SystemTime::now();
        assert_eq!(backoff.since("c", now), None, "never failed");
        assert!(!backoff.since_update("c"));
        backoff.next("c");
        assert_eq!(backoff.since("c", now), Some(Duration::from_secs(10)));
        assert!(backoff.since_update("c"));
        backoff.next("c");
        assert_eq!(backoff.since("c", now), Some(Duration::from_secs(20)));
        backoff.next("c");
        assert_eq!(backoff.since("c", now), Some(Duration::from_secs(25)));
        let long_ago = now - Duration::from_secs(30);
        assert_eq!(backoff.since("c", long_ago), None, "waited out");
        assert_eq!(backoff.since("other", now), None);
        backoff.reset("c");
        assert!(!backoff.since_update("c"));
    }
}
