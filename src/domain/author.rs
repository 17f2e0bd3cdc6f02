//! An author's standing with a publisher: the lighter penalties (and the
//! trust) moderators give a reader instead of deleting comments one by one.

use std::fmt;

use chrono::{DateTime, Utc};

/// How a reader's comments are treated, strongest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorStanding {
    /// No spam score; every rule still applies.
    Trusted,
    #[default]
    Normal,
    /// Every comment goes to review (unless a rule or the score rejects it).
    Premoderated,
    /// Every comment is rejected until the suspension ends.
    Suspended,
    /// Every comment is rejected.
    Banned,
}

impl AuthorStanding {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorStanding::Trusted => "trusted",
            AuthorStanding::Normal => "normal",
            AuthorStanding::Premoderated => "premoderated",
            AuthorStanding::Suspended => "suspended",
            AuthorStanding::Banned => "banned",
        }
    }

    pub fn from_db(value: &str) -> Option<Self> {
        Some(match value {
            "trusted" => AuthorStanding::Trusted,
            "normal" => AuthorStanding::Normal,
            "premoderated" => AuthorStanding::Premoderated,
            "suspended" => AuthorStanding::Suspended,
            "banned" => AuthorStanding::Banned,
            _ => return None,
        })
    }
}

impl fmt::Display for AuthorStanding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A standing and when it ends by itself (`None`: until changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StandingTerm {
    pub standing: AuthorStanding,
    pub until: Option<DateTime<Utc>>,
}

impl StandingTerm {
    /// The standing in force at `now`: an expired term is back to normal.
    pub fn at(&self, now: DateTime<Utc>) -> AuthorStanding {
        match self.until {
            Some(until) if until <= now => AuthorStanding::Normal,
            _ => self.standing,
        }
    }

    /// The term in force at `now`: this one, or normal without end once it
    /// has ended.
    pub fn in_force(self, now: DateTime<Utc>) -> StandingTerm {
        if self.at(now) == self.standing {
            self
        } else {
            StandingTerm::default()
        }
    }
}

/// A standing as stored: the term, why, who set it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    pub term: StandingTerm,
    pub reason: String,
    pub set_by: String,
    pub update_time: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_term_ends_by_itself() {
        let now = Utc::now();
        let suspended = StandingTerm {
            standing: AuthorStanding::Suspended,
            until: Some(now + Duration::hours(1)),
        };
        assert_eq!(suspended.at(now), AuthorStanding::Suspended);
        assert_eq!(
            suspended.at(now + Duration::hours(1)),
            AuthorStanding::Normal
        );
        let banned = StandingTerm {
            standing: AuthorStanding::Banned,
            until: None,
        };
        assert_eq!(
            banned.at(now + Duration::days(3650)),
            AuthorStanding::Banned
        );
        assert_eq!(suspended.in_force(now), suspended);
        assert_eq!(
            suspended.in_force(now + Duration::hours(2)),
            StandingTerm::default(),
            "an ended term shows as normal, without an end"
        );
    }

    #[test]
    fn standings_round_trip_through_their_names() {
        for standing in [
            AuthorStanding::Trusted,
            AuthorStanding::Normal,
            AuthorStanding::Premoderated,
            AuthorStanding::Suspended,
            AuthorStanding::Banned,
        ] {
            assert_eq!(AuthorStanding::from_db(standing.as_str()), Some(standing));
        }
        assert_eq!(AuthorStanding::from_db("exiled"), None);
    }
}
