//! The Job controller: creates Pods for a Job (parallelism, completions,
//! Indexed mode, retries up to `backoffLimit`), enforces
//! `activeDeadlineSeconds` and `suspend`, writes Job status and conditions,
//! and deletes finished Jobs after `ttlSecondsAfterFinished`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::Processes;
use super::pod::KillReason;
use crate::resources::ResourceInfo;
use crate::store::{Propagation, Store, Subresource, now_rfc3339};

/// Label and annotation carrying the completion index.
pub const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";

fn condition_true(job: &Value, type_: &str) -> bool {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastProbeTime": now, "lastTransitionTime": now})
}

fn seconds_since(ts: &Value) -> Option<i64> {
    let t: jiff::Timestamp = ts.as_str()?.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - t.as_second())
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("Pending")
}

fn index_of(pod: &Value) -> Option<i64> {
    pod["metadata"]["annotations"][INDEX_KEY]
        .as_str()
        .or_else(|| pod["metadata"]["labels"][INDEX_KEY].as_str())
        .and_then(|s| s.parse().ok())
}

/// What a `podFailurePolicy` says about one failed Pod.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    /// Fail the whole Job now (with the message the real controller writes).
    FailJob(String),
    /// Do not count the failure towards `backoffLimit`.
    Ignore,
    /// Count it (no rule matched, `Count`, or the unsupported `FailIndex`).
    Count,
}

/// Evaluates `podFailurePolicy.rules` (`onExitCodes`; `onPodConditions`
/// never match, since local Pods have no disruption conditions) for a failed Pod.
fn failure_action(policy: &Value, pod: &Value) -> Action {
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (index, rule) in policy["rules"].as_array().into_iter().flatten().enumerate() {
        let on = &rule["onExitCodes"];
        if !on.is_object() {
            continue;
        }
        let values: Vec<i64> = on["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .collect();
        let wanted_container = on["containerName"].as_str();
        let matched = statuses.iter().find_map(|cs| {
            let name = cs["name"].as_str().unwrap_or_default();
            let code = cs["state"]["terminated"]["exitCode"].as_i64()?;
            if code == 0 || wanted_container.is_some_and(|w| w != name) {
                return None;
            }
            let hit = match on["operator"].as_str() {
                Some("NotIn") => !values.contains(&code),
                _ => values.contains(&code),
            };
            hit.then(|| (name.to_string(), code))
        });
        let Some((container, code)) = matched else {
            continue;
        };
        return match rule["action"].as_str() {
            Some("FailJob") => Action::FailJob(format!(
                "Container {container} for pod {}/{} failed with exit code {code} matching FailJob rule at index {index}",
                pod["metadata"]["namespace"].as_str().unwrap_or_default(),
                pod["metadata"]["name"].as_str().unwrap_or_default(),
            )),
            Some("Ignore") => Action::Ignore,
            _ => Action::Count,
        };
    }
    Action::Count
}

/// Formats indexes as Kubernetes does: `0-3,5`.
pub fn format_indexes(indexes: &BTreeSet<i64>) -> String {
    let mut parts = Vec::new();
    let mut iter = indexes.iter().peekable();
    while let Some(&start) = iter.next() {
        let mut end = start;
        while iter.peek().is_some_and(|&&n| n == end + 1) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// Records a core `v1` Event about `object` from the job controller.
pub fn record_event(store: &Store, object: &Value, type_: &str, reason: &str, message: &str) {
    let Some(info) = store.resource("", "v1", "events") else {
        return;
    };
    let meta = &object["metadata"];
    let ns = meta["namespace"].as_str().unwrap_or("default");
    let now = now_rfc3339();
    let event = json!({
        "metadata": {
            "name": format!("{}.{}", meta["name"].as_str().unwrap_or_default(), crate::store::random_suffix(10)),
            "namespace": ns,
        },
        "involvedObject": {
            "apiVersion": object["apiVersion"],
            "kind": object["kind"],
            "namespace": ns,
            "name": meta["name"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": "job-controller"},
        "reportingComponent": "job-controller",
        "reportingInstance": "",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(err) = store.create(&info, ns, event) {
        tracing::warn!(error = %err, "recording event");
    }
}

/// The unix second at which a Job needs reconciling although nothing about it or its Pods
/// changed: when its `activeDeadlineSeconds` runs out (a running Job) or its
/// `ttlSecondsAfterFinished` does (a finished one). `None` when no clock applies. The
/// runner keeps these in a timer queue so a pass only visits Jobs that changed or are due.
pub fn next_due(job: &Value) -> Option<i64> {
    if job["metadata"]["deletionTimestamp"].is_string() {
        return None;
    }
    let spec = &job["spec"];
    let status = &job["status"];
    let at = |ts: &Value| {
        ts.as_str()?
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_second())
    };
    if condition_true(job, "Complete") || condition_true(job, "Failed") {
        let ttl = spec["ttlSecondsAfterFinished"].as_i64()?;
        let finished_at = at(&status["completionTime"]).or_else(|| {
            status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Failed")
                .and_then(|c| at(&c["lastTransitionTime"]))
        })?;
        return Some(finished_at.saturating_add(ttl));
    }
    if spec["suspend"].as_bool() == Some(true) {
        return None;
    }
    let limit = spec["activeDeadlineSeconds"].as_i64()?;
    Some(at(&status["startTime"])?.saturating_add(limit))
}

/// What a Job's reconcile left undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every write it needed went through.
    Settled,
    /// A write failed (a Pod creation or the status update): reconcile it again next pass,
    /// as nothing else may change to wake it.
    Retry,
}

/// Reconciles one Job against its current Pods (those with an ownerReference to its uid).
pub fn reconcile(
    store: &Store,
    processes: &Processes,
    job_info: &ResourceInfo,
    pod_info: &ResourceInfo,
    job: &Value,
    pods: &[&Value],
) -> Outcome {
    if job["metadata"]["deletionTimestamp"].is_string() {
        return Outcome::Settled;
    }
    let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = job["metadata"]["name"].as_str().unwrap_or_default();
    let spec = &job["spec"];
    let now = now_rfc3339();
    let mut outcome = Outcome::Settled;
    let active: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| {
            matches!(phase(p), "Pending" | "Running")
                && !p["metadata"]["deletionTimestamp"].is_string()
        })
        .collect();
    let succeeded_pods: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| phase(p) == "Succeeded")
        .collect();
    let failed_pods: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| phase(p) == "Failed")
        .collect();
    let policy = &spec["podFailurePolicy"];
    let actions: Vec<(Action, &Value)> = failed_pods
        .iter()
        .map(|p| (failure_action(policy, p), *p))
        .collect();
    // Failures an `Ignore` rule matched do not count towards backoffLimit.
    let counted = actions
        .iter()
        .filter(|(a, _)| !matches!(a, Action::Ignore))
        .count() as i64;
    let fail_job = actions.iter().find_map(|(a, _)| match a {
        Action::FailJob(message) => Some(message.clone()),
        _ => None,
    });
    let indexed = spec["completionMode"] == "Indexed";
    let completions = spec["completions"].as_i64();
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let succeeded_indexes: BTreeSet<i64> =
        succeeded_pods.iter().filter_map(|p| index_of(p)).collect();
    let succeeded = if indexed {
        succeeded_indexes.len() as i64
    } else {
        succeeded_pods.len() as i64
    };
    let mut status = job["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let finished = condition_true(job, "Complete") || condition_true(job, "Failed");

    if finished {
        if let Some(ttl) = spec["ttlSecondsAfterFinished"].as_i64() {
            let finished_at = status["completionTime"].clone();
            let finished_at = if finished_at.is_string() {
                finished_at
            } else {
                conditions
                    .iter()
                    .find(|c| c["type"] == "Failed")
                    .map(|c| c["lastTransitionTime"].clone())
                    .unwrap_or(Value::Null)
            };
            if seconds_since(&finished_at).is_some_and(|s| s >= ttl) {
                let _ = store.delete(
                    job_info,
                    ns,
                    name,
                    Some(Propagation::Background),
                    None,
                    None,
                );
                return Outcome::Settled;
            }
        }
    } else if spec["suspend"].as_bool() == Some(true) {
        for pod in &active {
            let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
            processes.kill(ns, pod_name);
            let _ = store.delete(
                pod_info,
                ns,
                pod_name,
                Some(Propagation::Background),
                None,
                None,
            );
        }
        // Resuming starts the clock (and activeDeadlineSeconds) again.
        if let Some(map) = status.as_object_mut() {
            map.remove("startTime");
        }
        if !condition_true(job, "Suspended") {
            conditions.retain(|c| c["type"] != "Suspended");
            conditions.push(condition(
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                &now,
            ));
            record_event(store, job, "Normal", "Suspended", "Job suspended");
        }
    } else {
        if condition_true(job, "Suspended") {
            conditions.retain(|c| c["type"] != "Suspended");
            conditions.push(condition(
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                &now,
            ));
        }
        if !status["startTime"].is_string() {
            status["startTime"] = json!(now);
        }
        let deadline_passed = spec["activeDeadlineSeconds"]
            .as_i64()
            .zip(seconds_since(&status["startTime"]))
            .is_some_and(|(limit, elapsed)| elapsed >= limit);
        let complete = if indexed {
            completions.is_some_and(|c| (0..c).all(|i| succeeded_indexes.contains(&i)))
        } else {
            completions.is_some_and(|c| succeeded >= c)
                || (completions.is_none() && succeeded > 0 && active.is_empty())
        };
        let failure: Option<(&str, String)> = if complete {
            None
        } else if let Some(message) = fail_job {
            Some(("PodFailurePolicy", message))
        } else if deadline_passed {
            Some((
                "DeadlineExceeded",
                "Job was active longer than specified deadline".into(),
            ))
        } else if counted > backoff_limit {
            Some((
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".into(),
            ))
        } else {
            None
        };
        if let Some((reason, message)) = failure {
            let message = message.as_str();
            let kill_reason = if reason == "DeadlineExceeded" {
                KillReason::DeadlineExceeded
            } else {
                KillReason::Killed
            };
            for pod in &active {
                processes.stop(
                    ns,
                    pod["metadata"]["name"].as_str().unwrap_or_default(),
                    kill_reason,
                );
            }
            conditions.push(condition("FailureTarget", "True", reason, message, &now));
            conditions.push(condition("Failed", "True", reason, message, &now));
            record_event(store, job, "Warning", reason, message);
        } else if complete {
            for pod in &active {
                processes.kill(ns, pod["metadata"]["name"].as_str().unwrap_or_default());
            }
            conditions.push(condition(
                "SuccessCriteriaMet",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now,
            ));
            conditions.push(condition(
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                &now,
            ));
            status["completionTime"] = json!(now);
            record_event(store, job, "Normal", "Completed", "Job completed");
        } else {
            outcome = create_pods(
                store,
                pod_info,
                job,
                &active,
                &succeeded_indexes,
                succeeded,
                parallelism,
                completions,
                indexed,
            );
        }
    }
    status["active"] = json!(active.len());
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(counted);
    status["ready"] = json!(active.iter().filter(|p| phase(p) == "Running").count());
    status["terminating"] = json!(0);
    status["uncountedTerminatedPods"] = json!({});
    if indexed && !succeeded_indexes.is_empty() {
        status["completedIndexes"] = json!(format_indexes(&succeeded_indexes));
    }
    for key in ["active", "succeeded", "failed"] {
        if status[key] == 0
            && job["status"].get(key).is_none()
            && let Some(map) = status.as_object_mut()
        {
            map.remove(key);
        }
    }
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
    }
    if status != job["status"] {
        let written = store.update_with(job_info, ns, name, Subresource::Status, |current| {
            let mut next = current.clone();
            next["status"] = status.clone();
            Ok(next)
        });
        if let Err(err) = written {
            tracing::warn!(error = %err, job = name, "writing job status");
            outcome = Outcome::Retry;
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
fn create_pods(
    store: &Store,
    pod_info: &ResourceInfo,
    job: &Value,
    active: &[&Value],
    succeeded_indexes: &BTreeSet<i64>,
    succeeded: i64,
    parallelism: i64,
    completions: Option<i64>,
    indexed: bool,
) -> Outcome {
    let mut outcome = Outcome::Settled;
    let room = (parallelism - active.len() as i64).max(0);
    let new_indexes: Vec<Option<i64>> = if indexed {
        let busy: BTreeSet<i64> = active.iter().filter_map(|p| index_of(p)).collect();
        (0..completions.unwrap_or(0))
            .filter(|i| !succeeded_indexes.contains(i) && !busy.contains(i))
            .take(usize::try_from(room).unwrap_or(0))
            .map(Some)
            .collect()
    } else {
        let remaining = completions
            .map(|c| c - succeeded - active.len() as i64)
            .unwrap_or(room);
        (0..room.min(remaining).max(0)).map(|_| None).collect()
    };
    for index in new_indexes {
        let pod = pod_for(job, index);
        let ns = job["metadata"]["namespace"].as_str().unwrap_or_default();
        match store.create(pod_info, ns, pod) {
            Ok(created) => {
                let message = format!(
                    "Created pod: {}",
                    created["metadata"]["name"].as_str().unwrap_or_default()
                );
                record_event(store, job, "Normal", "SuccessfulCreate", &message);
            }
            Err(err) => {
                tracing::warn!(error = %err, "creating job pod");
                outcome = Outcome::Retry;
            }
        }
    }
    outcome
}

/// The Pod a Job creates for one attempt (and index, for Indexed Jobs).
fn pod_for(job: &Value, index: Option<i64>) -> Value {
    let name = job["metadata"]["name"].as_str().unwrap_or_default();
    let template = &job["spec"]["template"];
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    let mut annotations = template["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    labels["job-name"] = json!(name);
    labels["batch.kubernetes.io/job-name"] = json!(name);
    let mut spec = template["spec"].clone();
    let generate_name = match index {
        Some(i) => {
            labels[INDEX_KEY] = json!(i.to_string());
            annotations[INDEX_KEY] = json!(i.to_string());
            spec["hostname"] = json!(format!("{name}-{i}"));
            if let Some(containers) = spec["containers"].as_array_mut() {
                for c in containers {
                    if !c["env"].is_array() {
                        c["env"] = json!([]);
                    }
                    if let Some(env) = c["env"].as_array_mut() {
                        env.push(json!({"name": "JOB_COMPLETION_INDEX", "value": i.to_string()}));
                    }
                }
            }
            format!("{name}-{i}-")
        }
        None => format!("{name}-"),
    };
    json!({
        "metadata": {
            "generateName": generate_name,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": name,
                "uid": job["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_index_ranges() {
        let set: BTreeSet<i64> = [0, 1, 2, 3, 5, 7, 8].into_iter().collect();
        assert_eq!(format_indexes(&set), "0-3,5,7-8");
        assert_eq!(format_indexes(&BTreeSet::new()), "");
    }
}

#[cfg(test)]
mod due_tests {
    use super::*;

    fn at(ts: &str) -> i64 {
        ts.parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .unwrap_or(-1)
    }

    #[test]
    fn running_jobs_are_due_at_their_deadline() {
        let job = json!({"metadata": {}, "spec": {"activeDeadlineSeconds": 30},
                         "status": {"startTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(next_due(&job), Some(at("2026-01-01T00:00:30Z")));
        let no_start = json!({"spec": {"activeDeadlineSeconds": 30}});
        assert_eq!(next_due(&no_start), None);
        let suspended = json!({"spec": {"activeDeadlineSeconds": 30, "suspend": true},
                               "status": {"startTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(next_due(&suspended), None);
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
                              "spec": {"activeDeadlineSeconds": 30},
                              "status": {"startTime": "2026-01-01T00:00:00Z"}});
        assert_eq!(next_due(&deleting), None);
    }

    #[test]
    fn finished_jobs_are_due_when_their_ttl_ends() {
        let complete = json!({"spec": {"ttlSecondsAfterFinished": 5, "activeDeadlineSeconds": 1},
            "status": {"startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:00Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(next_due(&complete), Some(at("2026-01-01T00:01:05Z")));
        let failed = json!({"spec": {"ttlSecondsAfterFinished": 0},
            "status": {"conditions": [{"type": "Failed", "status": "True",
                                       "lastTransitionTime": "2026-01-01T00:02:00Z"}]}});
        assert_eq!(next_due(&failed), Some(at("2026-01-01T00:02:00Z")));
        let no_ttl = json!({"spec": {"activeDeadlineSeconds": 1},
            "status": {"startTime": "2026-01-01T00:00:00Z",
                       "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(next_due(&no_ttl), None);
    }
}
