//! Waiting in tests: one poll loop whose timeout says what was awaited and what was last seen.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// How often [`wait_for`] polls.
const INTERVAL: Duration = Duration::from_millis(200);

/// What a poll answers: done (with a value), or not yet (with what it saw, for the timeout's
/// message).
pub trait Poll {
    /// The value once done.
    type Output;
    /// `Ok` when done, else what was seen.
    fn outcome(self) -> Result<Self::Output, String>;
}

/// `None`: not yet, nothing to show.
impl<T> Poll for Option<T> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_owned())
    }
}

/// `Err(seen)`: not yet; `seen` goes into the timeout's message.
impl<T, S: Display> Poll for Result<T, S> {
    type Output = T;
    fn outcome(self) -> Result<T, String> {
        self.map_err(|seen| seen.to_string())
    }
}

/// Polls `check` every 200 ms until it is done, and returns its value; after `timeout`,
/// panics naming `what` and the last state `check` saw.
pub async fn wait_for<P: Poll>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> P,
) -> P::Output {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await.outcome() {
            Ok(done) => return done,
            Err(last) => last,
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
        );
        tokio::time::sleep(INTERVAL).await;
    }
}
