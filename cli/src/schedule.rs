//! `tipoff schedule [NAME]`: the PipelineSchedules of the namespace, when each next runs, and
//! the game days each missed. Read-only: a schedule is created with `kubectl apply`
//! (`docs/schedule.md`).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::Serialize;
use tipoff_crds::{MissedRun, PipelineSchedule, ScheduledRun, SkippedDate};

use crate::cluster::Cluster;
use crate::commands::{Output, emit};
use crate::error::{CliError, Result};
use crate::view::{age, table};

/// One schedule as `tipoff schedule` shows it (and prints with `-o json`).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// Its time zone.
    pub time_zone: String,
    /// Local time of day of the Production run.
    pub production_time: String,
    /// Local time of day of the SameDay run, if any.
    pub same_day_time: Option<String>,
    /// Whether it is suspended.
    pub suspend: bool,
    /// `Ready`'s status and reason, e.g. `True (Scheduled)`.
    pub ready: String,
    /// `Ready`'s message.
    pub ready_message: String,
    /// The newest game date it ran.
    pub last_scheduled_date: Option<String>,
    /// The next game date due and its mode.
    pub next_scheduled_date: Option<String>,
    /// When the next run is due, in the schedule's time zone.
    pub next_schedule_time: Option<String>,
    /// Runs due that do not exist yet.
    pub overdue: u32,
    /// Game days missed (all of them; `missed` lists the newest 31).
    pub missed_count: u32,
    /// The missed game days, newest first.
    pub missed: Vec<MissedRun>,
    /// Recent dates without games.
    pub skipped: Vec<SkippedDate>,
    /// Its recent runs, newest first.
    pub recent_runs: Vec<ScheduledRun>,
    /// Its age.
    pub age: String,
}

/// What `tipoff schedule` shows of `s` at `now`.
pub fn build(s: &PipelineSchedule, now: Timestamp) -> ScheduleView {
    let st = s.status.clone().unwrap_or_default();
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready");
    let tz = TimeZone::get(&s.spec.time_zone).ok();
    let next_time = st.next_schedule_time.as_ref().map(|t| match &tz {
        Some(tz) => {
            t.0.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        }
        None => t.0.to_string(),
    });
    let next_date = st
        .next_scheduled_date
        .as_ref()
        .map(|d| match st.next_scheduled_mode {
            Some(m) => format!("{d} {m:?}"),
            None => d.clone(),
        });
    ScheduleView {
        name: s.name_any(),
        time_zone: s.spec.time_zone.clone(),
        production_time: s.spec.production_time.clone(),
        same_day_time: s.spec.same_day_time.clone(),
        suspend: s.spec.suspend,
        ready: ready.map_or_else(
            || "Unknown".to_owned(),
            |c| format!("{:?} ({})", c.status, c.reason),
        ),
        ready_message: ready.map(|c| c.message.clone()).unwrap_or_default(),
        last_scheduled_date: st.last_scheduled_date.clone(),
        next_scheduled_date: next_date,
        next_schedule_time: next_time,
        overdue: st.overdue,
        missed_count: st.missed_count,
        missed: st.missed.clone(),
        skipped: st.skipped.clone(),
        recent_runs: st.recent_runs.clone(),
        age: age(s.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
    }
}

/// One line per schedule, then each schedule's missed dates and why it is not ready.
pub fn render(views: &[ScheduleView]) -> String {
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                match &v.same_day_time {
                    Some(sd) => format!("{} (SameDay {sd})", v.production_time),
                    None => v.production_time.clone(),
                },
                v.time_zone.clone(),
                v.last_scheduled_date.clone().unwrap_or_default(),
                match (&v.next_scheduled_date, &v.next_schedule_time) {
                    (Some(d), Some(t)) => format!("{d} at {t}"),
                    _ => "none listed".to_owned(),
                },
                v.overdue.to_string(),
                v.missed_count.to_string(),
                if v.suspend {
                    format!("{} suspended", v.ready)
                } else {
                    v.ready.clone()
                },
                v.age.clone(),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "NAME", "TIME", "ZONE", "LAST", "NEXT", "OVERDUE", "MISSED", "READY", "AGE",
        ],
        &rows,
    );
    for v in views {
        if !v.missed.is_empty() {
            let dates: Vec<String> = v
                .missed
                .iter()
                .map(|m| format!("{} {:?} ({})", m.date, m.mode, m.reason.as_str()))
                .collect();
            out.push_str(&format!(
                "\n{}: missed {} game day(s): {}{}\n  `tipoff backfill FROM TO --release FILE` runs them (reprocess missing)\n",
                v.name,
                v.missed_count,
                dates.join(", "),
                if v.missed_count as usize > v.missed.len() {
                    " ..."
                } else {
                    ""
                }
            ));
        }
        if !v.ready.starts_with("True") && !v.ready_message.is_empty() {
            out.push_str(&format!("\n{}: not ready: {}\n", v.name, v.ready_message));
        }
    }
    out
}

/// `tipoff schedule [NAME]`.
pub async fn schedule(cluster: &Cluster, name: Option<&str>, output: Output) -> Result<()> {
    let api: Api<PipelineSchedule> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut list = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(CliError::CrdsMissing(
                "no pipelineschedules.tipoff.dev".to_owned(),
            ));
        }
        Err(e) => return Err(CliError::from_kube("listing schedules", e)),
    };
    list.sort_by_key(|s| s.name_any());
    if let Some(name) = name {
        list.retain(|s| s.name_any() == name);
        if list.is_empty() {
            return Err(CliError::NotFound(format!(
                "no PipelineSchedule {name} in namespace {}; `tipoff schedule` lists them",
                cluster.namespace
            )));
        }
    }
    let now = Timestamp::now();
    let views: Vec<ScheduleView> = list.iter().map(|s| build(s, now)).collect();
    if views.is_empty() && output == Output::Text {
        println!(
            "no PipelineSchedules in namespace {} (docs/schedule.md shows how to create one)",
            cluster.namespace
        );
        return Ok(());
    }
    emit(output, &views, || render(&views))
}
