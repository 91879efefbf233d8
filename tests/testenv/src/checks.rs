//! Checks of one scenario that each run and are reported together: where one expensive set-up
//! (containerd, an apiserver, a kubelet) serves many behaviours, the first failing one must not
//! hide the others.

use std::any::Any;
use std::fmt::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

/// The failures of a scenario's checks so far; [`Checks::finish`] (or the drop) panics with
/// all of them.
#[derive(Default)]
#[must_use = "call finish() to report the failures"]
pub struct Checks {
    failures: Vec<(String, String)>,
}

impl Checks {
    /// No checks run yet.
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Runs `check` (which asserts), recording a panic as the failure of `what`; returns the
    /// check's value, or `None` when it failed.
    pub fn run<T>(&mut self, what: &str, check: impl FnOnce() -> T) -> Option<T> {
        match catch_unwind(AssertUnwindSafe(check)) {
            Ok(value) => Some(value),
            Err(panic) => {
                self.failures.push((what.to_owned(), message(&*panic)));
                None
            }
        }
    }

    /// [`Checks::run`] for a check that awaits (polls the API, runs kubectl...).
    pub async fn run_async<T>(&mut self, what: &str, check: impl Future<Output = T>) -> Option<T> {
        let mut check = Box::pin(check);
        let outcome = std::future::poll_fn(|cx| {
            match catch_unwind(AssertUnwindSafe(|| check.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
                Err(panic) => Poll::Ready(Err(panic)),
            }
        })
        .await;
        match outcome {
            Ok(value) => Some(value),
            Err(panic) => {
                self.failures.push((what.to_owned(), message(&*panic)));
                None
            }
        }
    }

    /// Panics listing every failed check, if any failed.
    pub fn finish(mut self) {
        self.report();
    }

    fn report(&mut self) {
        if self.failures.is_empty() {
            return;
        }
        let mut report = format!("{} check(s) failed:", self.failures.len());
        for (what, message) in std::mem::take(&mut self.failures) {
            let _ = write!(report, "\n- {what}: {message}");
        }
        panic!("{report}");
    }
}

impl Drop for Checks {
    fn drop(&mut self) {
        // A test that panicked on its own already fails; the checks' failures were printed as
        // they happened.
        if !std::thread::panicking() {
            self.report();
        }
    }
}

fn message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Checks;

    #[test]
    fn every_failure_is_reported_after_all_ran() {
        let mut ran = Vec::new();
        let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut checks = Checks::new();
            checks.run("first", || {
                ran.push(1);
                assert_eq!(1, 2, "one is not two");
            });
            assert_eq!(checks.run("second", || 7), Some(7));
            checks.run("third", || {
                ran.push(3);
                panic!("third broke");
            });
            checks.finish();
        }))
        .unwrap_err();
        assert_eq!(ran, [1, 3]);
        let report = report.downcast_ref::<String>().unwrap();
        assert!(report.starts_with("2 check(s) failed:"), "{report}");
        assert!(report.contains("- first: assertion `left == right` failed: one is not two"));
        assert!(report.contains("- third: third broke"), "{report}");
    }

    #[test]
    fn passing_checks_report_nothing() {
        let mut checks = Checks::new();
        let answer = 6 * 7;
        checks.run("fine", || assert_eq!(answer, 42));
        checks.finish();
    }
}
