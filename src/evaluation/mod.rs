//! Quality of a tenant's decisions on a labelled file (`moderato eval`).
//!
//! A comment counts as *flagged* when it is not published, that is held for
//! review or rejected: what matters to readers and to the publisher is what
//! appears on the page. Accuracy, precision, recall, F1 and MCC are computed
//! on that call; the three-way outcome is reported separately (ham rejected
//! outright, spam published, share sent to moderators), and the threshold
//! curve shows the same metrics for a single threshold on the score alone.

pub mod suite;

use serde::Serialize;

use crate::domain::CommentStatus;

/// One labelled comment and what the pipeline decided.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub spam: bool,
    pub status: CommentStatus,
    pub score: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl Confusion {
    fn add(&mut self, flagged: bool, spam: bool) {
        match (flagged, spam) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, false) => self.true_negatives += 1,
            (false, true) => self.false_negatives += 1,
        }
    }

    fn ratio(a: u64, b: u64) -> f64 {
        if b == 0 { 0.0 } else { a as f64 / b as f64 }
    }

    pub fn accuracy(&self) -> f64 {
        let all =
            self.true_positives + self.false_positives + self.true_negatives + self.false_negatives;
        Self::ratio(self.true_positives + self.true_negatives, all)
    }

    pub fn precision(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// Matthews correlation coefficient, 0 when a row or column is empty.
    pub fn mcc(&self) -> f64 {
        let (tp, fp, tn, fn_) = (
            self.true_positives as f64,
            self.false_positives as f64,
            self.true_negatives as f64,
            self.false_negatives as f64,
        );
        let denominator = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if denominator == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / denominator
        }
    }
}

/// Metrics for "flagged when the score is at least `threshold`".
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub mcc: f64,
    /// Share of ham at or above the threshold.
    pub false_positive_rate: f64,
    /// Share of all comments at or above the threshold.
    pub flagged_share: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub examples: u64,
    pub spam: u64,
    pub ham: u64,
    pub review_threshold: f64,
    pub reject_threshold: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub mcc: f64,
    /// Share of ham rejected without a human.
    pub ham_auto_rejected: f64,
    /// Share of spam published without a human.
    pub spam_auto_approved: f64,
    /// Share of all comments held for review.
    pub review_share: f64,
    pub confusion: Confusion,
    pub curve: Vec<CurvePoint>,
}

impl Report {
    pub fn compute(outcomes: &[Outcome], review_threshold: f64, reject_threshold: f64) -> Report {
        let mut confusion = Confusion::default();
        let (mut spam, mut ham, mut ham_rejected, mut spam_approved, mut held) = (0, 0, 0, 0, 0);
        for o in outcomes {
            confusion.add(o.status != CommentStatus::Approved, o.spam);
            if o.spam {
                spam += 1;
                spam_approved += u64::from(o.status == CommentStatus::Approved);
            } else {
                ham += 1;
                ham_rejected += u64::from(o.status == CommentStatus::Rejected);
            }
            held += u64::from(o.status == CommentStatus::PendingReview);
        }
        let curve = (1..20)
            .map(|step| {
                let threshold = f64::from(step) * 0.05;
                let mut c = Confusion::default();
                for o in outcomes {
                    c.add(o.score >= threshold, o.spam);
                }
                CurvePoint {
                    threshold,
                    precision: c.precision(),
                    recall: c.recall(),
                    f1: c.f1(),
                    mcc: c.mcc(),
                    false_positive_rate: Confusion::ratio(c.false_positives, ham),
                    flagged_share: Confusion::ratio(
                        c.true_positives + c.false_positives,
                        outcomes.len() as u64,
                    ),
                }
            })
            .collect();
        Report {
            examples: outcomes.len() as u64,
            spam,
            ham,
            review_threshold,
            reject_threshold,
            accuracy: confusion.accuracy(),
            precision: confusion.precision(),
            recall: confusion.recall(),
            f1: confusion.f1(),
            mcc: confusion.mcc(),
            ham_auto_rejected: Confusion::ratio(ham_rejected, ham),
            spam_auto_approved: Confusion::ratio(spam_approved, spam),
            review_share: Confusion::ratio(held, outcomes.len() as u64),
            confusion,
            curve,
        }
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let mut out = format!(
            "examples            {} ({} spam, {} ham)\n\
             thresholds          review {:.2}, reject {:.2}\n\
             accuracy            {:.3}\n\
             precision           {:.3}\n\
             recall              {:.3}\n\
             f1                  {:.3}\n\
             mcc                 {:.3}\n\
             ham auto-rejected   {}\n\
             spam auto-approved  {}\n\
             sent to review      {}\n\
             (flagged = held for review or rejected)\n\n\
             threshold curve (flagged = score >= threshold)\n\
             threshold  precision  recall  f1     mcc    ham flagged  flagged\n",
            self.examples,
            self.spam,
            self.ham,
            self.review_threshold,
            self.reject_threshold,
            self.accuracy,
            self.precision,
            self.recall,
            self.f1,
            self.mcc,
            pct(self.ham_auto_rejected),
            pct(self.spam_auto_approved),
            pct(self.review_share),
        );
        for p in &self.curve {
            out.push_str(&format!(
                "{:<9.2}  {:<9.3}  {:<6.3}  {:<5.3}  {:<5.3}  {:<11}  {}\n",
                p.threshold,
                p.precision,
                p.recall,
                p.f1,
                p.mcc,
                pct(p.false_positive_rate),
                pct(p.flagged_share)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(spam: bool, status: CommentStatus, score: f64) -> Outcome {
        Outcome {
            spam,
            status,
            score,
        }
    }

    #[test]
    fn metrics_by_hand() {
        use CommentStatus::*;
        let outcomes = [
            o(true, Rejected, 0.95),
            o(true, PendingReview, 0.6),
            o(true, Approved, 0.2),
            o(false, Approved, 0.1),
            o(false, Approved, 0.3),
            o(false, PendingReview, 0.55),
            o(false, Rejected, 0.92),
            o(false, Approved, 0.05),
        ];
        let r = Report::compute(&outcomes, 0.5, 0.9);
        // Flagged: 2 spam (tp), 2 ham (fp); 1 spam approved (fn), 3 ham approved (tn).
        assert_eq!(
            r.confusion,
            Confusion {
                true_positives: 2,
                false_positives: 2,
                true_negatives: 3,
                false_negatives: 1
            }
        );
        assert_eq!(r.accuracy, 5.0 / 8.0);
        assert_eq!(r.precision, 0.5);
        assert_eq!(r.recall, 2.0 / 3.0);
        let mcc = (2.0 * 3.0 - 2.0 * 1.0) / (4.0f64 * 3.0 * 5.0 * 4.0).sqrt();
        assert!((r.mcc - mcc).abs() < 1e-12);
        assert_eq!(r.ham_auto_rejected, 0.2);
        assert_eq!(r.spam_auto_approved, 1.0 / 3.0);
        assert_eq!(r.review_share, 0.25);
        assert_eq!(r.curve.len(), 19);
        let at_half = &r.curve[9];
        assert!((at_half.threshold - 0.5).abs() < 1e-12);
        assert_eq!(at_half.flagged_share, 0.5);
        assert!(r.to_text().contains("mcc                 0.258"));
    }

    #[test]
    fn perfect_and_degenerate_cases() {
        use CommentStatus::*;
        let perfect = Report::compute(&[o(true, Rejected, 1.0), o(false, Approved, 0.0)], 0.5, 0.9);
        assert_eq!(perfect.mcc, 1.0);
        let empty = Report::compute(&[], 0.5, 0.9);
        assert_eq!(
            (empty.mcc, empty.precision, empty.review_share),
            (0.0, 0.0, 0.0)
        );
    }
}
