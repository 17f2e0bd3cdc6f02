//! When a failed delivery is tried again, and when moderato gives up.
//!
//! After the first attempt fails, the next ones are due 5 s, 5 min, 30 min,
//! 2 h, 5 h and 10 h later, then every 10 h, each delay moved by up to
//! ±20 % (jitter, so endpoints that failed together do not retry together);
//! no attempt is made more than [`GIVE_UP_AFTER`] after the first, so an
//! event is tried about 12 times over 3 days. An endpoint that has failed
//! every attempt for [`DISABLE_AFTER`] is turned off, with the reason
//! shown to the tenant's admins. (Close to the schedule of the Standard
//! Webhooks reference implementation, Svix.)

use chrono::{DateTime, TimeDelta, Utc};

/// No attempt is made later than this after an event's first.
pub const GIVE_UP_AFTER: TimeDelta = TimeDelta::days(3);
/// An endpoint failing this long without a success is disabled.
pub const DISABLE_AFTER: TimeDelta = TimeDelta::days(5);

const DELAYS: [TimeDelta; 6] = [
    TimeDelta::seconds(5),
    TimeDelta::minutes(5),
    TimeDelta::minutes(30),
    TimeDelta::hours(2),
    TimeDelta::hours(5),
    TimeDelta::hours(10),
];

/// When to try again after the `failed`-th failed attempt (1 = the first)
/// that ended at `now`, for an event first tried at `first`; `None` when
/// the event is given up. `jitter` in [0, 1) picks where in the ±20 %
/// window the delay falls (random in service, fixed in tests).
pub fn next_attempt(
    first: DateTime<Utc>,
    failed: u32,
    now: DateTime<Utc>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let base = DELAYS[(failed.max(1) as usize - 1).min(DELAYS.len() - 1)];
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    let delay = TimeDelta::milliseconds((base.num_milliseconds() as f64 * factor) as i64);
    let due = now + delay;
    (due <= first + GIVE_UP_AFTER).then_some(due)
}

/// Whether an endpoint whose attempts have all failed since `failing_since`
/// is to be disabled at `now`.
pub fn to_disable(failing_since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - failing_since >= DISABLE_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_796_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn the_schedule_backs_off_and_gives_up_after_three_days() {
        let first = at(0);
        let mut now = first;
        let mut delays = Vec::new();
        let mut failed = 0;
        while let Some(due) = next_attempt(first, failed + 1, now, 0.5) {
            delays.push((due - now).num_seconds());
            now = due;
            failed += 1;
        }
        assert_eq!(&delays[..7], [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]);
        assert_eq!(failed + 1, 12, "attempts in all, the first included");
        assert!(now - first <= GIVE_UP_AFTER);
        assert!(now - first > GIVE_UP_AFTER - TimeDelta::hours(10));
    }

    #[test]
    fn jitter_moves_a_delay_by_at_most_a_fifth() {
        let low = next_attempt(at(0), 4, at(0), 0.0).unwrap() - at(0);
        let high = next_attempt(at(0), 4, at(0), 0.999).unwrap() - at(0);
        assert_eq!(low, TimeDelta::minutes(96));
        assert!(
            high > TimeDelta::minutes(143) && high < TimeDelta::minutes(144),
            "{high}"
        );
        assert_eq!(
            next_attempt(at(0), 1, at(0), 7.0),
            next_attempt(at(0), 1, at(0), 1.0)
        );
    }

    #[test]
    fn an_endpoint_failing_for_five_days_is_disabled() {
        assert!(!to_disable(at(0), at(0) + TimeDelta::days(4)));
        assert!(to_disable(at(0), at(0) + DISABLE_AFTER));
    }
}
