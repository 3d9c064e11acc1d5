//! `diagnose --report FILE.html|FILE.md`: what a run of `diagnose` found, for people who
//! look rather than read JSON. Pure: built from the diagnoses the command prints, one at a
//! time, so every number adds up to the JSON lines of the same run.
//!
//! Strangers choose subjects, repositories, owners and role names, so every table keyed by
//! one counts exactly up to [`MAX_TRACKED`] distinct values and puts the rest under
//! "untracked": the report stays bounded whatever the input. Retries collapse into
//! incidents the way oidc-monitor collapses them: the same [`incident_key`] within
//! [`INCIDENT_WINDOW_SECONDS`] of the incident's first attempt is one incident.

mod escape;
pub mod html;
pub mod markdown;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use diagnosis::alert::{incident_key, probe_owner};
use diagnosis::audit::Finding;
use diagnosis::evaluate::epoch_seconds;
use diagnosis::owner::Trust;
use diagnosis::{Cause, Diagnosis};

/// oidc-monitor's default `INCIDENT_WINDOW_SECONDS`.
pub const INCIDENT_WINDOW_SECONDS: i64 = 900;
/// Distinct values counted exactly per table (roles, repositories, subjects, incidents).
pub const MAX_TRACKED: usize = 100_000;
/// Rows of the top repositories, subjects and roles.
pub const TOP_ROWS: usize = 15;
/// Incident rows listed; the totals count them all.
pub const MAX_INCIDENT_ROWS: usize = 200;
/// Incident diagnoses written out in full (the most attempted first).
pub const MAX_DIAGNOSIS_DETAILS: usize = 50;
/// Buckets of the failure-rate chart at most; the bucket width grows with the span.
pub const MAX_BUCKETS: usize = 120;

/// Bucket widths, narrowest first: minutes for a burst, hours for days, days for months.
const BUCKET_WIDTHS: &[(i64, &str)] = &[
    (60, "minute"),
    (5 * 60, "5 minutes"),
    (15 * 60, "15 minutes"),
    (3600, "hour"),
    (6 * 3600, "6 hours"),
    (86_400, "day"),
    (7 * 86_400, "week"),
    (30 * 86_400, "30 days"),
    (365 * 86_400, "365 days"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub events: usize,
    pub failures: usize,
    pub successes: usize,
    /// Events without a readable `eventTime`: counted everywhere but on the time chart.
    pub undated: usize,
    /// Successes of owners that are not ours: oidc-monitor's critical alert.
    pub foreign_successes: usize,
    /// Failures whose trust is unknown (nothing said who is ours).
    pub unknown_trust_failures: usize,
    /// From the reading of the inputs: records or files that could not be read, and
    /// CloudTrail records that are not `AssumeRoleWithWebIdentity`.
    pub unreadable: usize,
    pub skipped: usize,
}

impl Totals {
    /// Failures over all calls, 0..=1; `None` with no calls.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.events > 0).then(|| self.failures as f64 / self.events as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Epoch seconds of the bucket's start.
    pub start: i64,
    pub failures: usize,
    pub successes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    /// Epoch seconds of the first and the last dated event.
    pub first: i64,
    pub last: i64,
    pub width_seconds: i64,
    /// `minute`, `hour`, `day`, ...
    pub width_name: &'static str,
    /// Every bucket from the first event's to the last's, empty ones included.
    pub buckets: Vec<Bucket>,
}

/// The most frequent values of one stranger-chosen field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Top {
    /// `(value, failures)`, most first, then by value.
    pub rows: Vec<(String, usize)>,
    /// Failures of the values not in `rows`.
    pub others: usize,
    /// Distinct values counted.
    pub distinct: usize,
    /// Failures past [`MAX_TRACKED`] distinct values, or with no value at all.
    pub untracked: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    /// The role's name as the event spells it (else its ARN, else `-`).
    pub name: String,
    pub account: Option<String>,
    pub failures: usize,
    pub successes: usize,
    /// The role's trust-policy findings (the same for every event of the role).
    pub findings: Arc<[Finding]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentKind {
    /// A failure of one of our jobs.
    Incident,
    /// A failure of an owner that is not ours.
    Probe,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Incident => "incident",
            IncidentKind::Probe => "probe",
        }
    }
}

/// One retry burst: the attempts of one job (account, role, subject, cause) within the
/// window of its first.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Index into [`Report::diagnoses`].
    pub diagnosis: usize,
    pub kind: IncidentKind,
    /// Epoch seconds; `None` for attempts without a readable time (one incident per job).
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub attempts: usize,
}

/// One job's failure (an [`incident_key`]) with its diagnosis, shared by its incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDiagnosis {
    /// The first 16 hex digits of the incident key: an anchor, and what the monitor's log
    /// line calls `incident`.
    pub key: String,
    pub kind: IncidentKind,
    /// The diagnosis of the job's earliest attempt.
    pub diagnosis: Diagnosis,
    pub incidents: usize,
    pub attempts: usize,
}

/// Failures of one owner that is not ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRow {
    /// `provider:name` lower-cased, or `no-owner`, as the monitor's probe alerts name it.
    pub owner: String,
    pub attempts: usize,
    pub incidents: usize,
    pub subjects: usize,
    pub roles: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub totals: Totals,
    /// `None` when no event has a readable time.
    pub timeline: Option<Timeline>,
    /// Failures by cause, most first; causes with none are left out.
    pub causes: Vec<(Cause, usize)>,
    /// Roles with failures or successes, most failures first; at most [`MAX_TRACKED`].
    pub roles: Vec<RoleRow>,
    /// Calls of roles past [`MAX_TRACKED`] distinct roles: (failures, successes).
    pub untracked_roles: (usize, usize),
    pub repositories: Top,
    pub subjects: Top,
    /// Every incident, by first attempt (undated last).
    pub incidents: Vec<Incident>,
    /// Failures past [`MAX_TRACKED`] distinct jobs, not collapsed into incidents.
    pub uncollapsed_failures: usize,
    /// Failures whose event id the job had already: the same record read twice (a
    /// redelivery, or a file given twice), which the monitor does not count again as an
    /// attempt. Counted in the totals, not in the incidents.
    pub repeated_failures: usize,
    /// Each failing job once, most attempts first.
    pub diagnoses: Vec<JobDiagnosis>,
    /// By foreign owner, most attempts first.
    pub probes: Vec<ProbeRow>,
    pub window_seconds: i64,
}

impl Report {
    /// How many incidents are probes.
    pub fn probe_incidents(&self) -> usize {
        self.incidents
            .iter()
            .filter(|i| i.kind == IncidentKind::Probe)
            .count()
    }

    /// Epoch seconds of the first and the last dated event.
    pub fn span(&self) -> Option<(i64, i64)> {
        let timeline = self.timeline.as_ref()?;
        Some((timeline.first, timeline.last))
    }
}

/// Counts per stranger-chosen value, exact for [`MAX_TRACKED`] distinct values.
#[derive(Default)]
struct Tally {
    counts: HashMap<String, usize>,
    untracked: usize,
}

impl Tally {
    fn add(&mut self, value: Option<&str>) {
        let Some(value) = value else {
            self.untracked += 1;
            return;
        };
        if let Some(count) = self.counts.get_mut(value) {
            *count += 1;
        } else if self.counts.len() < MAX_TRACKED {
            self.counts.insert(value.to_owned(), 1);
        } else {
            self.untracked += 1;
        }
    }

    fn top(self, rows: usize) -> Top {
        let distinct = self.counts.len();
        let mut all: Vec<(String, usize)> = self.counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let others = all.iter().skip(rows).map(|(_, n)| n).sum();
        all.truncate(rows);
        Top {
            rows: all,
            others,
            distinct,
            untracked: self.untracked,
        }
    }
}

struct RoleState {
    row: RoleRow,
}

struct JobState {
    kind: IncidentKind,
    /// The earliest attempt's diagnosis, and its time.
    diagnosis: Diagnosis,
    earliest: Option<i64>,
    times: Vec<i64>,
    undated: usize,
    event_ids: std::collections::HashSet<String>,
}

/// Takes the diagnoses of one run, one at a time, and makes the [`Report`].
pub struct ReportBuilder {
    totals: Totals,
    /// (epoch seconds, failed) of every dated event.
    points: Vec<(i64, bool)>,
    causes: HashMap<Cause, usize>,
    roles: HashMap<String, RoleState>,
    untracked_roles: (usize, usize),
    repositories: Tally,
    subjects: Tally,
    jobs: HashMap<String, JobState>,
    uncollapsed_failures: usize,
    repeated_failures: usize,
    window_seconds: i64,
}

impl Default for ReportBuilder {
    fn default() -> Self {
        ReportBuilder::new(INCIDENT_WINDOW_SECONDS)
    }
}

impl ReportBuilder {
    pub fn new(window_seconds: i64) -> Self {
        ReportBuilder {
            totals: Totals::default(),
            points: Vec::new(),
            causes: HashMap::new(),
            roles: HashMap::new(),
            untracked_roles: (0, 0),
            repositories: Tally::default(),
            subjects: Tally::default(),
            jobs: HashMap::new(),
            uncollapsed_failures: 0,
            repeated_failures: 0,
            window_seconds: window_seconds.max(1),
        }
    }

    pub fn add(&mut self, d: &Diagnosis) {
        let failed = d.cause != Cause::None;
        let time = d.event_time.as_deref().and_then(epoch_seconds);
        self.totals.events += 1;
        match time {
            Some(t) => self.points.push((t, failed)),
            None => self.totals.undated += 1,
        }
        self.add_role(d, failed);
        if !failed {
            self.totals.successes += 1;
            if d.trust != Trust::Ours {
                self.totals.foreign_successes += 1;
            }
            return;
        }
        self.totals.failures += 1;
        if d.trust == Trust::Unknown {
            self.totals.unknown_trust_failures += 1;
        }
        *self.causes.entry(d.cause).or_default() += 1;
        self.repositories.add(d.claims.repository.as_deref());
        self.subjects.add(d.subject.as_deref());
        self.add_attempt(d, time);
    }

    /// What reading the inputs counted besides the diagnoses.
    pub fn inputs(&mut self, unreadable: usize, skipped: usize) {
        self.totals.unreadable = unreadable;
        self.totals.skipped = skipped;
    }

    fn add_role(&mut self, d: &Diagnosis, failed: bool) {
        let key = d
            .role_arn
            .as_deref()
            .or(d.role_name.as_deref())
            .unwrap_or("-")
            .to_ascii_lowercase();
        if !self.roles.contains_key(&key) && self.roles.len() >= MAX_TRACKED {
            if failed {
                self.untracked_roles.0 += 1;
            } else {
                self.untracked_roles.1 += 1;
            }
            return;
        }
        let state = self.roles.entry(key).or_insert_with(|| RoleState {
            row: RoleRow {
                name: d
                    .role_name
                    .clone()
                    .or_else(|| d.role_arn.clone())
                    .unwrap_or_else(|| "-".to_owned()),
                account: d.account_id.clone(),
                failures: 0,
                successes: 0,
                findings: Arc::from(Vec::new()),
            },
        });
        if failed {
            state.row.failures += 1;
        } else {
            state.row.successes += 1;
        }
        if state.row.findings.is_empty() && !d.findings.is_empty() {
            state.row.findings = Arc::clone(&d.findings);
        }
    }

    fn add_attempt(&mut self, d: &Diagnosis, time: Option<i64>) {
        let key = incident_key(d);
        if !self.jobs.contains_key(&key) && self.jobs.len() >= MAX_TRACKED {
            self.uncollapsed_failures += 1;
            return;
        }
        let job = self.jobs.entry(key).or_insert_with(|| JobState {
            kind: if d.trust == Trust::Foreign {
                IncidentKind::Probe
            } else {
                IncidentKind::Incident
            },
            diagnosis: d.clone(),
            earliest: time,
            times: Vec::new(),
            undated: 0,
            event_ids: std::collections::HashSet::new(),
        });
        if let Some(id) = &d.event_id {
            if !job.event_ids.insert(id.clone()) {
                self.repeated_failures += 1;
                return;
            }
        }
        match time {
            Some(t) => {
                if job.earliest.is_none_or(|e| t < e) {
                    job.earliest = Some(t);
                    job.diagnosis = d.clone();
                }
                job.times.push(t);
            }
            None => job.undated += 1,
        }
    }

    pub fn finish(self) -> Report {
        let timeline = timeline(&self.points);
        let mut causes: Vec<(Cause, usize)> = self.causes.into_iter().collect();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_str().cmp(b.0.as_str())));
        let mut roles: Vec<RoleRow> = self.roles.into_values().map(|s| s.row).collect();
        roles.sort_by(|a, b| {
            b.failures
                .cmp(&a.failures)
                .then_with(|| b.successes.cmp(&a.successes))
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.account.cmp(&b.account))
        });

        let mut jobs: Vec<(String, JobState)> = self.jobs.into_iter().collect();
        jobs.sort_by(|a, b| {
            let attempts = |j: &JobState| j.times.len() + j.undated;
            attempts(&b.1)
                .cmp(&attempts(&a.1))
                .then_with(|| a.1.earliest.cmp(&b.1.earliest))
                .then_with(|| a.0.cmp(&b.0))
        });
        let mut incidents = Vec::new();
        let mut diagnoses = Vec::with_capacity(jobs.len());
        for (index, (key, mut job)) in jobs.into_iter().enumerate() {
            job.times.sort_unstable();
            let before = incidents.len();
            let mut open: Option<Incident> = None;
            for &t in &job.times {
                match &mut open {
                    Some(incident) if incident.first.is_some_and(|f| t <= f + self.window_seconds) => {
                        incident.last = Some(t);
                        incident.attempts += 1;
                    }
                    _ => {
                        incidents.extend(open.take());
                        open = Some(Incident {
                            diagnosis: index,
                            kind: job.kind,
                            first: Some(t),
                            last: Some(t),
                            attempts: 1,
                        });
                    }
                }
            }
            incidents.extend(open);
            if job.undated > 0 {
                incidents.push(Incident {
                    diagnosis: index,
                    kind: job.kind,
                    first: None,
                    last: None,
                    attempts: job.undated,
                });
            }
            diagnoses.push(JobDiagnosis {
                key: key.chars().take(16).collect(),
                kind: job.kind,
                attempts: job.times.len() + job.undated,
                incidents: incidents.len() - before,
                diagnosis: job.diagnosis,
            });
        }
        incidents.sort_by(|a, b| match (a.first, b.first) {
            (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.diagnosis.cmp(&b.diagnosis)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.diagnosis.cmp(&b.diagnosis),
        });
        let probes = probes(&incidents, &diagnoses);
        Report {
            totals: self.totals,
            timeline,
            causes,
            roles,
            untracked_roles: self.untracked_roles,
            repositories: self.repositories.top(TOP_ROWS),
            subjects: self.subjects.top(TOP_ROWS),
            incidents,
            uncollapsed_failures: self.uncollapsed_failures,
            repeated_failures: self.repeated_failures,
            diagnoses,
            probes,
            window_seconds: self.window_seconds,
        }
    }
}

fn timeline(points: &[(i64, bool)]) -> Option<Timeline> {
    let first = points.iter().map(|p| p.0).min()?;
    let last = points.iter().map(|p| p.0).max()?;
    let span = last - first;
    let (width, name) = BUCKET_WIDTHS
        .iter()
        .copied()
        .find(|(w, _)| span / w < MAX_BUCKETS as i64)
        .unwrap_or(BUCKET_WIDTHS[BUCKET_WIDTHS.len() - 1]);
    let start = first.div_euclid(width) * width;
    let count = ((last - start) / width + 1) as usize;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: start + i as i64 * width,
            failures: 0,
            successes: 0,
        })
        .collect();
    for &(t, failed) in points {
        let index = ((t - start) / width) as usize;
        if let Some(bucket) = buckets.get_mut(index) {
            if failed {
                bucket.failures += 1;
            } else {
                bucket.successes += 1;
            }
        }
    }
    Some(Timeline {
        first,
        last,
        width_seconds: width,
        width_name: name,
        buckets,
    })
}

fn probes(incidents: &[Incident], diagnoses: &[JobDiagnosis]) -> Vec<ProbeRow> {
    struct Owner {
        row: ProbeRow,
        subjects: BTreeSet<usize>,
        roles: BTreeSet<String>,
    }
    let mut owners: HashMap<String, Owner> = HashMap::new();
    for incident in incidents.iter().filter(|i| i.kind == IncidentKind::Probe) {
        let Some(job) = diagnoses.get(incident.diagnosis) else {
            continue;
        };
        let name = probe_owner(&job.diagnosis);
        let owner = owners.entry(name.clone()).or_insert_with(|| Owner {
            row: ProbeRow {
                owner: name,
                attempts: 0,
                incidents: 0,
                subjects: 0,
                roles: 0,
                first: None,
                last: None,
            },
            subjects: BTreeSet::new(),
            roles: BTreeSet::new(),
        });
        owner.row.attempts += incident.attempts;
        owner.row.incidents += 1;
        owner.subjects.insert(incident.diagnosis);
        owner.roles.insert(
            job.diagnosis
                .role_arn
                .as_deref()
                .unwrap_or("-")
                .to_ascii_lowercase(),
        );
        if let Some(first) = incident.first {
            owner.row.first = Some(owner.row.first.map_or(first, |f| f.min(first)));
        }
        if let Some(last) = incident.last {
            owner.row.last = Some(owner.row.last.map_or(last, |l| l.max(last)));
        }
    }
    let mut rows: Vec<ProbeRow> = owners
        .into_values()
        .map(|mut o| {
            // Distinct subjects: the jobs of one owner differ by account, role, subject or
            // cause; count the subjects themselves.
            let subjects: BTreeSet<&str> = o
                .subjects
                .iter()
                .filter_map(|&i| diagnoses.get(i)?.diagnosis.subject.as_deref())
                .collect();
            o.row.subjects = subjects.len();
            o.row.roles = o.roles.len();
            o.row
        })
        .collect();
    rows.sort_by(|a, b| b.attempts.cmp(&a.attempts).then_with(|| a.owner.cmp(&b.owner)));
    rows
}

/// `37.5%`; `-` with no calls.
fn percent(rate: Option<f64>) -> String {
    match rate {
        Some(r) => format!("{:.1}%", r * 100.0),
        None => "-".to_owned(),
    }
}

/// `1 incident`, `2 incidents`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, or `-`.
fn time(t: Option<i64>) -> String {
    t.map_or_else(|| "-".to_owned(), diagnosis::time::iso8601)
}

/// A bucket's start, as precise as its width needs.
fn bucket_label(start: i64, width_seconds: i64) -> String {
    let full = diagnosis::time::iso8601(start);
    if width_seconds >= 86_400 {
        full[..10].to_owned()
    } else {
        format!("{} {}", &full[5..10], &full[11..16])
    }
}

/// `SubjectMismatch (Branch)`, or the cause alone.
fn cause_label(d: &Diagnosis) -> String {
    match d.subject_mismatch {
        Some(kind) => format!("{} ({})", d.cause.as_str(), kind.as_str()),
        None => d.cause.as_str().to_owned(),
    }
}

/// The whole trust policy after a suggested change, indented; each line bounded, with its
/// control and invisible characters escaped (the policy holds values strangers can see
/// but we chose; JSON escapes only U+0000-U+001F).
fn policy_text(policy: &serde_json::Value) -> String {
    let pretty = serde_json::to_string_pretty(policy).unwrap_or_default();
    pretty
        .lines()
        .map(|line| diagnosis::text::bound(line, escape::TEXT_CHARS))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
