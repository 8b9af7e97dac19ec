//! The per-connection timers: the idle timeout and the `end()` linger.
//!
//! Time only enters through the `now` arguments of the connection's `handle_*` methods; the
//! timers remember the last activity and compute deadlines from it.

use std::time::{Duration, Instant};

/// Node's idle timeout: armed by `set_timeout`, pushed back by every read and write, fires once
/// per arm and then disarms.
#[derive(Debug, Clone)]
pub(crate) struct IdleTimer {
    duration: Option<Duration>,
    armed: bool,
    last_activity: Instant,
    /// `set_timeout` was called without a fresh `now` (from a handle, say): the arm takes the
    /// time of the next input instead of a stale one.
    restart_pending: bool,
}

impl IdleTimer {
    pub(crate) fn new(now: Instant) -> Self {
        IdleTimer {
            duration: None,
            armed: false,
            last_activity: now,
            restart_pending: false,
        }
    }

    /// Arms the timer for `duration` of inactivity; zero disarms it.
    pub(crate) fn set(&mut self, duration: Duration) {
        if duration.is_zero() {
            self.duration = None;
            self.armed = false;
        } else {
            self.duration = Some(duration);
            self.armed = true;
            self.restart_pending = true;
        }
    }

    pub(crate) fn activity(&mut self, now: Instant) {
        self.last_activity = now;
        self.restart_pending = false;
    }

    /// Applies a pending restart with the current time.
    pub(crate) fn observe(&mut self, now: Instant) {
        if self.restart_pending {
            self.activity(now);
        }
    }

    pub(crate) fn last_activity(&self) -> Instant {
        self.last_activity
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match (self.armed, self.duration) {
            (true, Some(d)) => Some(self.last_activity + d),
            _ => None,
        }
    }

    /// Returns true (once per arm) when the deadline has passed at `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> bool {
        self.observe(now);
        match self.deadline() {
            Some(deadline) if deadline <= now => {
                self.armed = false;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_arm_and_is_pushed_back_by_activity() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timer = IdleTimer::new(t0);
        assert_eq!(timer.deadline(), None);
        timer.set(ms(100));
        timer.observe(t0);
        assert_eq!(timer.deadline(), Some(t0 + ms(100)));
        timer.activity(t0 + ms(50));
        assert!(!timer.expire(t0 + ms(120)));
        assert!(timer.expire(t0 + ms(150)));
        assert!(!timer.expire(t0 + ms(500)));
        assert_eq!(timer.deadline(), None);
        timer.set(Duration::ZERO);
        assert_eq!(timer.deadline(), None);
    }
}
