//! Results in ghz's shape: its JSON field names and units (durations in
//! nanoseconds, histogram marks in seconds, grpc-go status names) and its
//! summary text, so a ghz user reads them without surprise. Latencies go
//! into an HDR histogram (3 significant digits), which merges across workers
//! without keeping every sample.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// grpc-go's name for a status code, as ghz prints it.
pub fn status_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// What one worker saw; merged into one at the end.
#[derive(Debug, Clone)]
pub struct Recorder {
    latencies: Histogram<u64>,
    /// The calls that succeeded only: under load shedding, fast refusals
    /// would otherwise hide the latency of the calls that were served.
    ok_latencies: Histogram<u64>,
    statuses: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            // 1 ns to 1 hour, 3 significant digits.
            latencies: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"),
            ok_latencies: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("valid bounds"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// One finished call: its latency and status (`message` for errors).
    pub fn record(&mut self, latency: Duration, code: tonic::Code, message: &str) {
        let nanos = (latency.as_nanos() as u64).clamp(1, self.latencies.high());
        self.latencies.record(nanos).expect("clamped into range");
        if code == tonic::Code::Ok {
            self.ok_latencies.record(nanos).expect("clamped into range");
        }
        *self
            .statuses
            .entry(status_name(code).to_owned())
            .or_default() += 1;
        if code != tonic::Code::Ok {
            *self
                .errors
                .entry(format!(
                    "rpc error: code = {} desc = {message}",
                    status_name(code)
                ))
                .or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.latencies.add(&other.latencies).expect("same bounds");
        self.ok_latencies
            .add(&other.ok_latencies)
            .expect("same bounds");
        for (k, v) in &other.statuses {
            *self.statuses.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    pub fn count(&self) -> u64 {
        self.latencies.len()
    }

    /// The report for a run that lasted `total`.
    pub fn report(&self, name: &str, end_reason: &str, total: Duration) -> Report {
        let h = &self.latencies;
        let count = h.len();
        let (fastest, slowest) = if count == 0 {
            (0, 0)
        } else {
            (h.min(), h.max())
        };
        let latency_distribution = distribution(h);
        Report {
            name: name.to_owned(),
            end_reason: end_reason.to_owned(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            count,
            total: total.as_nanos() as u64,
            average: if count == 0 {
                0
            } else {
                h.mean().round() as u64
            },
            fastest,
            slowest,
            rps: if total.is_zero() {
                0.0
            } else {
                count as f64 / total.as_secs_f64()
            },
            error_distribution: self.errors.clone(),
            status_code_distribution: self.statuses.clone(),
            latency_distribution,
            ok_latency_distribution: distribution(&self.ok_latencies),
            histogram: histogram(h, fastest, slowest),
        }
    }
}

/// ghz's percentiles of a histogram.
fn distribution(h: &Histogram<u64>) -> Vec<LatencyPoint> {
    [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0]
        .into_iter()
        .map(|p| LatencyPoint {
            percentage: p as u32,
            latency: if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p / 100.0)
            },
        })
        .collect()
}

/// ghz's histogram: ten equal-width buckets from fastest to slowest, each
/// counting the calls at or below its mark.
fn histogram(h: &Histogram<u64>, fastest: u64, slowest: u64) -> Vec<Bucket> {
    let count = h.len();
    if count == 0 {
        return Vec::new();
    }
    let width = (slowest - fastest) as f64 / 10.0;
    let mut buckets = Vec::with_capacity(11);
    let mut below = 0;
    for i in 0..=10 {
        let mark = if i == 10 {
            slowest
        } else {
            fastest + (width * i as f64) as u64
        };
        let upto = h.count_between(0, mark);
        let in_bucket = upto.saturating_sub(below);
        below = upto;
        buckets.push(Bucket {
            mark: mark as f64 / 1e9,
            count: in_bucket,
            frequency: in_bucket as f64 / count as f64,
        });
    }
    buckets
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyPoint {
    pub percentage: u32,
    /// Nanoseconds.
    pub latency: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    /// Seconds.
    pub mark: f64,
    pub count: u64,
    pub frequency: f64,
}

/// ghz's JSON report (without per-call `details`). Durations in nanoseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub name: String,
    pub end_reason: String,
    pub date: String,
    pub count: u64,
    pub total: u64,
    pub average: u64,
    pub fastest: u64,
    pub slowest: u64,
    pub rps: f64,
    pub error_distribution: BTreeMap<String, u64>,
    pub status_code_distribution: BTreeMap<String, u64>,
    pub latency_distribution: Vec<LatencyPoint>,
    /// Not in ghz's report: the same percentiles over the calls that
    /// returned OK.
    pub ok_latency_distribution: Vec<LatencyPoint>,
    pub histogram: Vec<Bucket>,
}

fn ms(nanos: u64) -> String {
    format!("{:.2} ms", nanos as f64 / 1e6)
}

impl Report {
    /// ghz's `-O summary` text.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        out.push_str("\nSummary:\n");
        if !self.name.is_empty() {
            out.push_str(&format!("  Name:\t{}\n", self.name));
        }
        out.push_str(&format!("  Count:\t{}\n", self.count));
        out.push_str(&format!("  Total:\t{}\n", ms(self.total)));
        out.push_str(&format!("  Slowest:\t{}\n", ms(self.slowest)));
        out.push_str(&format!("  Fastest:\t{}\n", ms(self.fastest)));
        out.push_str(&format!("  Average:\t{}\n", ms(self.average)));
        out.push_str(&format!("  Requests/sec:\t{:.2}\n", self.rps));
        out.push_str("\nResponse time histogram:\n");
        let widest = self
            .histogram
            .iter()
            .map(|b| b.count)
            .max()
            .unwrap_or(0)
            .max(1);
        for b in &self.histogram {
            let bar = "∎".repeat((40 * b.count / widest) as usize);
            out.push_str(&format!("  {:.3} [{}]\t|{}\n", b.mark * 1e3, b.count, bar));
        }
        out.push_str("\nLatency distribution:\n");
        for p in &self.latency_distribution {
            out.push_str(&format!("  {} % in {}\n", p.percentage, ms(p.latency)));
        }
        out.push_str("\nStatus code distribution:\n");
        for (code, n) in &self.status_code_distribution {
            out.push_str(&format!("  [{code}]\t{n} responses\n"));
        }
        if !self.error_distribution.is_empty() {
            out.push_str("\nError distribution:\n");
            for (error, n) in &self.error_distribution {
                out.push_str(&format!("  [{n}]\t{error}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn counts_add_up_across_workers_and_statuses() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for i in 1..=90 {
            a.record(ms(i), Code::Ok, "");
        }
        for _ in 0..8 {
            b.record(ms(50), Code::Unavailable, "database unavailable");
        }
        b.record(ms(100), Code::InvalidArgument, "body: is required");
        b.record(ms(100), Code::Cancelled, "");
        a.merge(&b);
        let r = a.report("submit", "normal", Duration::from_secs(2));
        assert_eq!(r.count, 100);
        assert_eq!(r.status_code_distribution.values().sum::<u64>(), 100);
        assert_eq!(r.status_code_distribution["OK"], 90);
        assert_eq!(r.status_code_distribution["Unavailable"], 8);
        assert_eq!(
            r.status_code_distribution["Canceled"], 1,
            "grpc-go spelling"
        );
        assert_eq!(r.error_distribution.values().sum::<u64>(), 10);
        assert_eq!(
            r.error_distribution["rpc error: code = InvalidArgument desc = body: is required"],
            1
        );
        assert_eq!(r.rps, 50.0);
        assert_eq!(r.total, 2_000_000_000);
        assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 100);
        let freq: f64 = r.histogram.iter().map(|b| b.frequency).sum();
        assert!((freq - 1.0).abs() < 1e-9);
    }

    #[test]
    fn latencies_are_in_nanoseconds_within_three_digits() {
        let mut r = Recorder::default();
        for i in 1..=1000 {
            r.record(Duration::from_micros(i), Code::Ok, "");
        }
        let report = r.report("", "normal", Duration::from_secs(1));
        let close = |actual: u64, expected: u64| {
            (actual as f64 - expected as f64).abs() <= expected as f64 * 0.001 + 1.0
        };
        assert!(close(report.fastest, 1_000), "{}", report.fastest);
        assert!(close(report.slowest, 1_000_000), "{}", report.slowest);
        assert!(close(report.average, 500_500), "{}", report.average);
        let p = |pct: u32| {
            report
                .latency_distribution
                .iter()
                .find(|l| l.percentage == pct)
                .unwrap()
                .latency
        };
        assert!(close(p(50), 500_000), "{}", p(50));
        assert!(close(p(99), 990_000), "{}", p(99));
        assert_eq!(report.latency_distribution.len(), 7);
        assert_eq!(report.histogram.len(), 11);
        assert!((report.histogram[10].mark - 0.001).abs() < 1e-5);
    }

    #[test]
    fn the_ok_distribution_leaves_refusals_out() {
        let mut r = Recorder::default();
        for _ in 0..90 {
            r.record(Duration::from_micros(100), Code::Unavailable, "shed");
        }
        for _ in 0..10 {
            r.record(Duration::from_millis(20), Code::Ok, "");
        }
        let report = r.report("", "normal", Duration::from_secs(1));
        let p50 = |d: &[LatencyPoint]| d.iter().find(|l| l.percentage == 50).unwrap().latency;
        assert!(p50(&report.latency_distribution) < 200_000);
        assert!(p50(&report.ok_latency_distribution) >= 19_900_000);
    }

    #[test]
    fn json_uses_ghz_names_and_the_summary_reads_like_ghz() {
        let mut r = Recorder::default();
        r.record(ms(2), Code::Ok, "");
        let report = r.report("echo", "normal", Duration::from_secs(1));
        let json = serde_json::to_value(&report).unwrap();
        for field in [
            "count",
            "total",
            "average",
            "fastest",
            "slowest",
            "rps",
            "latencyDistribution",
            "histogram",
            "errorDistribution",
            "statusCodeDistribution",
            "endReason",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        assert_eq!(json["latencyDistribution"][0]["percentage"], 10);
        let text = report.summary();
        assert!(text.contains("Requests/sec:\t1.00"));
        assert!(text.contains("[OK]\t1 responses"));
        assert!(text.contains("50 % in 2.00 ms"));
        let empty = Recorder::default().report("", "normal", Duration::ZERO);
        assert_eq!((empty.count, empty.rps, empty.histogram.len()), (0, 0.0, 0));
    }
}
