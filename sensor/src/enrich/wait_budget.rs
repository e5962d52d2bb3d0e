//! A bound on how long the pipeline waits for a helper thread per second
//! of events: a flood of what makes it wait (new executables to hash,
//! paths to follow) slows it by at most that share, and what is not
//! waited for is said so on the event.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct WaitBudget {
    per_second: Duration,
    left: Duration,
    since: Instant,
}

impl WaitBudget {
    pub fn new(per_second: Duration) -> WaitBudget {
        WaitBudget {
            per_second,
            left: per_second,
            since: Instant::now(),
        }
    }

    /// How long a wait may take now, at most `want`: what is left of this
    /// second's budget (refilled a second after the last refill).
    pub fn allow(&mut self, want: Duration) -> Duration {
        let now = Instant::now();
        if now.duration_since(self.since) >= Duration::from_secs(1) {
            self.since = now;
            self.left = self.per_second;
        }
        want.min(self.left)
    }

    /// A wait that began at `started` has ended.
    pub fn spent(&mut self, started: Instant) {
        self.left = self.left.saturating_sub(started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_per_second_and_refilled() {
        let mut b = WaitBudget::new(Duration::from_millis(30));
        assert_eq!(
            b.allow(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(25));
        b.spent(started);
        assert!(b.allow(Duration::from_millis(20)) <= Duration::from_millis(5));
        b.since -= Duration::from_secs(1);
        assert_eq!(
            b.allow(Duration::from_millis(20)),
            Duration::from_millis(20)
        );
    }
}
