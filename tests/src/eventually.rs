//! Waiting for a condition in a test without a fixed sleep: look again and again, bounded by a
//! patience, and when the patience runs out say what was awaited and what was last seen.
//!
//! A fixed sleep is either too short on a loaded machine (a flaky test) or too long everywhere
//! else (a slow one); polling with a bound is neither. Sleeps that are themselves what a test
//! is about (a probe interval, a window in which acknowledgements are withheld) stay sleeps.
//!
//! The condition is a closure returning `Ok(value)` once it holds and `Err(state)` until then;
//! the state is what a failure shows (`Err(agents.len())`, `Err(pods)`).

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long [`eventually`] waits between two looks: short, so a test does not wait longer than
/// the condition takes by much; the conditions looked at are cheap (a `/proc` scan, a channel).
pub const POLL: Duration = Duration::from_millis(20);

/// Looks at `observe` every `every` until it returns `Ok`, for at most `patience` (it always
/// looks at least once, and once more at the end of the patience). `Err` holds the last state
/// seen when the patience ran out: for a caller that must go on either way (a `Drop`, a
/// cleanup before an assertion).
pub fn within<T, S>(
    patience: Duration,
    every: Duration,
    mut observe: impl FnMut() -> Result<T, S>,
) -> Result<T, S> {
    let deadline = Instant::now() + patience;
    loop {
        let state = match observe() {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(state);
        }
        std::thread::sleep(every.min(deadline - now));
    }
}

/// Waits until `observe` returns `Ok` and returns its value; panics after `patience` naming
/// `what` was awaited and the last state seen.
#[track_caller]
pub fn eventually<T, S: Debug>(
    patience: Duration,
    what: &str,
    observe: impl FnMut() -> Result<T, S>,
) -> T {
    match within(patience, POLL, observe) {
        Ok(value) => value,
        Err(last) => panic!("gave up after {patience:?} waiting for {what}; last seen: {last:?}"),
    }
}

/// [`eventually`] for async tests: `observe` may await (a backend's answer, a channel), and
/// the waiting between looks does not block the runtime.
#[track_caller]
pub fn eventually_async<'a, T, S: Debug>(
    patience: Duration,
    what: &'a str,
    mut observe: impl AsyncFnMut() -> Result<T, S> + 'a,
) -> impl Future<Output = T> + 'a {
    // `#[track_caller]` does not reach into an async body: take the caller's place here.
    let caller = std::panic::Location::caller();
    async move {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let state = match observe().await {
                Ok(value) => return value,
                Err(state) => state,
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                panic!(
                    "{caller}: gave up after {patience:?} waiting for {what}; last seen: {state:?}"
                );
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let looks = Cell::new(0);
        let value = eventually(Duration::from_secs(5), "the third look", || {
            looks.set(looks.get() + 1);
            if looks.get() == 3 {
                Ok("done")
            } else {
                Err(looks.get())
            }
        });
        assert_eq!(value, "done");
        assert_eq!(looks.get(), 3);
    }

    #[test]
    fn within_hands_back_the_last_state_after_looking_at_least_twice() {
        let looks = Cell::new(0);
        let started = Instant::now();
        let last = within(Duration::from_millis(50), Duration::from_millis(10), || {
            looks.set(looks.get() + 1);
            Err::<(), _>(looks.get())
        });
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(last, Err(looks.get()));
        assert!(looks.get() >= 2, "{looks:?}");
    }

    #[test]
    fn a_zero_patience_still_looks_once() {
        assert_eq!(within(Duration::ZERO, POLL, || Ok::<_, ()>(7)), Ok(7));
    }

    #[test]
    #[should_panic(expected = "waiting for the moon; last seen: \"no moon\"")]
    fn panics_with_what_and_the_last_state() {
        eventually(Duration::from_millis(30), "the moon", || {
            Err::<(), _>("no moon")
        });
    }

    #[tokio::test]
    async fn async_conditions_may_await() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _ = tx.send(5);
        });
        let got = eventually_async(Duration::from_secs(5), "a message", async || {
            rx.try_recv().map_err(|e| format!("{e:?}"))
        })
        .await;
        assert_eq!(got, 5);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for silence; last seen: 3")]
    async fn async_gives_up_too() {
        eventually_async(Duration::from_millis(30), "silence", async || {
            Err::<(), _>(3)
        })
        .await;
    }
}
