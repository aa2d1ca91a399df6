//! Property tests of the planner over random histories.
//!
//! A history is a run (random mode and overrides) driven round by round: plan and apply, then
//! give every live Job a random outcome (success, a failing gate, a transient or permanent
//! failure, a vanished Job, drifted code, or still running), sometimes toggle `suspend`, and
//! move the clock. After every round the properties of issue 2 are checked:
//! (a) fixpoint: applying a plan and planning again creates nothing new, and once its status
//!     is written a further plan changes nothing and emits no Event;
//! (b) no Job is planned for a processor whose dependencies have not succeeded, unless an
//!     override says so (checked against the simulator's own record of outcomes);
//! (c) names are deterministic, valid and collision-free (a separate test, 100,000 runs);
//! (d) the status rebuilt from scratch equals the incrementally maintained one.
//! Histories also append reruns (`spec.reruns`) of processors that ran: each gets at most one
//! Job, and (a) and (d) hold with them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod support;

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use tipoff_crds::children::{is_dns_label, job_name, phase_completion_name};
use tipoff_crds::{Mode, OverrideType, PipelineRunStatus};
use tipoff_operator::catalog::{Catalog, Enforcement};
use tipoff_operator::planner::{JobIntent, Plan};

use support::{Cluster, IMAGE, OTHER_IMAGE_ID, override_, run};

/// What the simulator did to a processor's latest attempt.
#[derive(Clone, Debug, PartialEq)]
enum Truth {
    Succeeded {
        failed_gate: Option<String>,
        drifted: bool,
    },
    Other,
}

#[derive(Clone, Debug)]
struct History {
    name: &'static str,
    mode: Mode,
    overrides: u8,
    outcomes: Vec<u8>,
    advances: Vec<u16>,
}

fn history() -> impl Strategy<Value = History> {
    (
        0usize..3,
        0u8..3,
        0u8..5,
        proptest::collection::vec(0u8..20, 200),
        proptest::collection::vec(0u16..700, 30),
    )
        .prop_map(|(name, mode, overrides, outcomes, advances)| History {
            name: NAMES[name],
            mode: [Mode::Production, Mode::SameDay, Mode::Backfill][usize::from(mode)],
            overrides,
            outcomes,
            advances,
        })
}

/// Run names: short, and too long (and dotted) for a Job name, so names and labels are hashed.
const NAMES: [&str; 3] = [
    "prop",
    "backfill-2025-12-21-through-2025-12-25-requested-by-the-data-platform-team",
    "nightly.2026-01-29",
];

fn normalize(mut s: PipelineRunStatus) -> PipelineRunStatus {
    for c in &mut s.conditions {
        c.last_transition_time = Time(support::t0());
    }
    s
}

/// Whether the simulator's outcome for `p` counts as a success the planner must accept.
fn good(c: &Cluster, truth: &BTreeMap<String, Truth>, p: &str) -> bool {
    let mode = c.run.spec.mode;
    let overrides = &c.run.spec.overrides;
    match truth.get(p) {
        Some(Truth::Succeeded {
            failed_gate,
            drifted,
        }) => {
            let gate_ok = failed_gate.as_ref().is_none_or(|g| {
                let policy = c
                    .catalog
                    .processor(p)
                    .unwrap()
                    .gate(g)
                    .unwrap()
                    .policy
                    .get(mode);
                policy != Enforcement::Blocking
                    || overrides.iter().any(|o| {
                        o.type_ == OverrideType::RelaxGate
                            && o.processor.as_deref().is_none_or(|x| x == p)
                            && o.gate.as_deref() == Some(g)
                    })
            });
            let drift_ok = !drifted
                || c.catalog.drift.get(mode) != Enforcement::Blocking
                || overrides.iter().any(|o| {
                    o.type_ == OverrideType::AcceptDrift
                        && o.processor.as_deref().is_none_or(|x| x == p)
                });
            gate_ok && drift_ok
        }
        _ => false,
    }
}

/// Property (b), checked against the simulator's record rather than the planner's view.
fn check_dependencies(c: &Cluster, truth: &BTreeMap<String, Truth>, jobs: &[JobIntent]) {
    let catalog: &Catalog = &c.catalog;
    let mode = c.run.spec.mode;
    for job in jobs {
        // A rerun is an explicit request to run a processor that ran before; it is not
        // gated on its dependencies.
        if job.rerun.is_some() {
            continue;
        }
        let skip = c.run.spec.overrides.iter().any(|o| {
            o.type_ == OverrideType::SkipDependencyCheck
                && o.processor.as_deref().is_none_or(|x| x == job.processor)
        });
        if skip {
            continue;
        }
        let processor = catalog.processor(&job.processor).unwrap();
        for dep in processor.dependencies(mode) {
            assert!(
                good(c, truth, dep),
                "{} planned before its dependency {dep} succeeded",
                job.name
            );
        }
        for earlier in catalog.phases.iter().filter(|p| p.number < processor.phase) {
            for q in earlier.processors.iter().filter(|q| q.required_in(mode)) {
                assert!(
                    good(c, truth, &q.name),
                    "{} planned before {} of phase {} succeeded",
                    job.name,
                    q.name,
                    earlier.number
                );
            }
        }
    }
}

fn quiet(plan: &Plan) -> bool {
    plan.jobs.is_empty()
        && plan.phase_completions.is_empty()
        && !plan.run_status_changed
        && plan.phase_completion_statuses.iter().all(|w| !w.changed)
        && plan.events.is_empty()
}

fn simulate(h: &History) {
    let mut r = run(h.name, h.mode);
    r.spec.overrides = match h.overrides {
        1 => vec![override_(
            OverrideType::SkipDependencyCheck,
            Some("ml-feature-store"),
            None,
        )],
        2 => vec![override_(
            OverrideType::RelaxGate,
            Some("player-daily-cache"),
            Some("player-coverage"),
        )],
        3 => vec![override_(OverrideType::AcceptDrift, None, None)],
        _ => vec![],
    };
    let mut c = Cluster::new(r);
    let mut truth: BTreeMap<String, Truth> = BTreeMap::new();
    let mut draws = h.outcomes.iter().copied().cycle();
    let mut history_lost = false;

    for round in 0..h.advances.len() {
        // Plan, check (b), apply.
        let plan = c.plan();
        check_dependencies(&c, &truth, &plan.jobs);
        for job in &plan.jobs {
            assert!(is_dns_label(&job.name), "{}", job.name);
            assert!(
                job.labels.values().all(|v| is_dns_label(v)),
                "{:?}",
                job.labels
            );
        }
        history_lost |= !plan.jobs_to_delete.is_empty();
        for job in &plan.jobs {
            truth.insert(job.processor.clone(), Truth::Other);
        }
        c.apply(&plan);

        // (a) Fixpoint: nothing new, then nothing at all.
        let second = c.plan();
        assert!(
            second.jobs.is_empty(),
            "round {round}: re-planned {:?}",
            second.jobs
        );
        assert!(second.phase_completions.is_empty());
        c.apply(&second);
        let third = c.plan();
        assert!(quiet(&third), "round {round}: not a fixpoint: {third:#?}");

        // Never "running" without a live Job.
        for pc in &c.observed.phase_completions {
            for r in &pc.status.as_ref().unwrap().running {
                let live = c.live_job(&r.processor);
                assert!(
                    live.is_some_and(|j| j.metadata.name.as_deref() == Some(r.job.as_str())),
                    "round {round}: {} attempt {} listed running without its live Job",
                    r.processor,
                    r.attempt
                );
            }
        }

        // (d) Rebuilt from scratch.
        let maintained = normalize(third.run_status.clone());
        let mut fresh = c.clone();
        fresh.run.status = None;
        assert_eq!(
            normalize(fresh.plan().run_status),
            maintained,
            "round {round}: run status"
        );
        if !history_lost {
            for pc in &mut fresh.observed.phase_completions {
                pc.status = None;
            }
            let rebuilt = fresh.plan();
            assert_eq!(
                normalize(rebuilt.run_status),
                maintained,
                "round {round}: from Jobs only"
            );
            for (a, b) in rebuilt
                .phase_completion_statuses
                .iter()
                .zip(&third.phase_completion_statuses)
            {
                let mut x = a.status.clone();
                let mut y = b.status.clone();
                for cond in x.conditions.iter_mut().chain(y.conditions.iter_mut()) {
                    cond.last_transition_time = Time(support::t0());
                }
                assert_eq!(x, y, "round {round}: PhaseCompletion {}", a.name);
            }
        }

        // Random outcomes for the live Jobs.
        let live = c.live_processors();
        if live.is_empty() && third.requeue_after.is_none() && !c.run.spec.suspend {
            break;
        }
        for p in live {
            let draw = draws.next().unwrap_or(0);
            match draw {
                0..=8 => {
                    c.succeed(&p);
                    truth.insert(
                        p,
                        Truth::Succeeded {
                            failed_gate: None,
                            drifted: false,
                        },
                    );
                }
                9 | 10 => {
                    let mut result = c.result_for(&p);
                    let failed_gate = result.checks.first_mut().map(|k| {
                        k.passed = false;
                        k.name.clone()
                    });
                    c.succeed_with(&p, &result, IMAGE);
                    truth.insert(
                        p,
                        Truth::Succeeded {
                            failed_gate,
                            drifted: false,
                        },
                    );
                }
                11 | 12 => c.fail(&p, 1),
                13 => c.fail(&p, tipoff_crds::EXIT_PERMANENT),
                14 => {
                    c.vanish(&p);
                    history_lost = true;
                }
                15 => {
                    let result = c.result_for(&p);
                    c.succeed_with(&p, &result, OTHER_IMAGE_ID);
                    truth.insert(
                        p,
                        Truth::Succeeded {
                            failed_gate: None,
                            drifted: true,
                        },
                    );
                }
                _ => {} // still running
            }
        }
        if draws.next().unwrap_or(0) == 0 {
            c.run.spec.suspend = !c.run.spec.suspend;
        }
        // Sometimes a person asks for a rerun of a processor that has run.
        if draws.next().unwrap_or(0) >= 17 && c.run.spec.reruns.len() < 16 {
            let ran: Vec<String> = c
                .observed
                .jobs
                .iter()
                .filter_map(|j| support::label(j, "tipoff.dev/processor").map(str::to_owned))
                .collect();
            if !ran.is_empty() {
                let pick = usize::from(draws.next().unwrap_or(0)) % ran.len();
                let n = c.run.spec.reruns.len() + 1;
                c.run.spec.reruns.push(tipoff_crds::Rerun {
                    name: format!("r{n}"),
                    processor: ran[pick].clone(),
                    game: None,
                    reason: "property test".into(),
                });
            }
        }
        // Each rerun has at most one Job.
        let mut per_rerun: BTreeMap<&str, usize> = BTreeMap::new();
        for j in &c.observed.jobs {
            if let Some(r) = support::label(j, "tipoff.dev/rerun") {
                *per_rerun.entry(r).or_default() += 1;
            }
        }
        assert!(
            per_rerun.values().all(|n| *n == 1),
            "round {round}: {per_rerun:?}"
        );
        c.advance(i64::from(h.advances[round]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_planner_invariants(h in history()) {
        simulate(&h);
    }

    #[test]
    fn any_run_name_gives_valid_deterministic_names(
        run in "[a-z0-9]([a-z0-9.-]{0,120}[a-z0-9])?",
        phase in 1u8..=6,
        attempt in 1u32..=10,
    ) {
        let name = job_name(&run, phase, "ml-feature-store", attempt);
        prop_assert!(is_dns_label(&name), "{name}");
        prop_assert_eq!(&name, &job_name(&run, phase, "ml-feature-store", attempt));
        prop_assert!(is_dns_label(&phase_completion_name(&run, phase)));
    }
}

/// Splitmix64: a deterministic generator for the 100,000-run name test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn names_are_valid_and_collision_free_across_100k_runs() {
    let catalog = support::test_catalog();
    let processors: Vec<(u8, String)> = catalog
        .processors()
        .map(|p| (p.phase, p.name.clone()))
        .collect();
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789-.".chars().collect();
    let mut rng = Rng(2026);
    let mut seen: HashMap<String, (String, u8, String, u32)> = HashMap::new();
    let mut runs: Vec<String> = Vec::new();
    for i in 0..100_000 {
        // Short, long, and near-identical names (dots vs dashes, long shared prefixes).
        let run = match i % 4 {
            0 => format!("nba-{}-{}", 2000 + rng.below(30), rng.below(100_000)),
            1 if !runs.is_empty() => {
                let base = runs[rng.below(runs.len())].clone();
                base.replacen('-', ".", 1) + "x"
            }
            2 => format!(
                "backfill-requested-by-the-data-platform-team-for-season-{}",
                rng.next()
            ),
            _ => {
                let len = 1 + rng.below(90);
                let mut s: String = (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                s = s.trim_matches(|c| c == '-' || c == '.').to_owned();
                if s.is_empty() { "r".to_owned() } else { s }
            }
        };
        runs.push(run.clone());
        for _ in 0..3 {
            let (phase, processor) = processors[rng.below(processors.len())].clone();
            let attempt = 1 + rng.below(10) as u32;
            let name = job_name(&run, phase, &processor, attempt);
            assert!(is_dns_label(&name), "{name} from {run}");
            assert_eq!(name, job_name(&run, phase, &processor, attempt));
            let key = (run.clone(), phase, processor, attempt);
            if let Some(previous) = seen.insert(name.clone(), key.clone()) {
                assert_eq!(previous, key, "collision on {name}");
            }
        }
        let phase = 1 + rng.below(6) as u8;
        let pc = phase_completion_name(&run, phase);
        assert!(is_dns_label(&pc), "{pc}");
        let key = (run.clone(), phase, String::new(), 0);
        if let Some(previous) = seen.insert(pc.clone(), key.clone()) {
            assert_eq!(previous, key, "collision on {pc}");
        }
    }
}

/// One way to damage an observed object.
#[derive(Clone, Debug)]
enum Damage {
    DropJobStatus(usize),
    DropLabels(usize),
    GarbleAttempt(usize, String),
    DropPodStatus(usize),
    Message(usize, String),
    Deleting(usize),
    DropPhaseCompletionStatus(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0usize..40).prop_map(Damage::DropJobStatus),
        (0usize..40).prop_map(Damage::DropLabels),
        (0usize..40, ".{0,12}").prop_map(|(i, s)| Damage::GarbleAttempt(i, s)),
        (0usize..40).prop_map(Damage::DropPodStatus),
        (
            0usize..40,
            proptest::string::string_regex(".{0,5000}").unwrap()
        )
            .prop_map(|(i, s)| Damage::Message(i, s)),
        (0usize..40).prop_map(Damage::Deleting),
        (0usize..6).prop_map(Damage::DropPhaseCompletionStatus),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the cluster returns, the planner answers (no panic) with valid names.
    #[test]
    fn damaged_observations_never_panic(rounds in 1usize..6, damages in proptest::collection::vec(damage(), 0..8)) {
        let mut c = Cluster::new(run("r", Mode::Production));
        for _ in 0..rounds {
            c.settle();
            for p in c.live_processors() {
                c.succeed(&p);
            }
            c.advance(10);
        }
        c.settle();
        let jobs = c.observed.jobs.len().max(1);
        let pods = c.observed.pods.len().max(1);
        let pcs = c.observed.phase_completions.len().max(1);
        for d in damages {
            match d {
                Damage::DropJobStatus(i) => { if let Some(j) = c.observed.jobs.get_mut(i % jobs) { j.status = None; } }
                Damage::DropLabels(i) => { if let Some(j) = c.observed.jobs.get_mut(i % jobs) { j.metadata.labels = None; } }
                Damage::GarbleAttempt(i, s) => {
                    if let Some(l) = c.observed.jobs.get_mut(i % jobs).and_then(|j| j.metadata.labels.as_mut()) {
                        l.insert("tipoff.dev/attempt".into(), s);
                    }
                }
                Damage::DropPodStatus(i) => { if let Some(p) = c.observed.pods.get_mut(i % pods) { p.status = None; } }
                Damage::Message(i, s) => {
                    if let Some(t) = c.observed.pods.get_mut(i % pods)
                        .and_then(|p| p.status.as_mut())
                        .and_then(|s| s.container_statuses.as_mut())
                        .and_then(|cs| cs.first_mut())
                        .and_then(|cs| cs.state.as_mut())
                        .and_then(|st| st.terminated.as_mut())
                    {
                        t.message = Some(s);
                    }
                }
                Damage::Deleting(i) => {
                    if let Some(j) = c.observed.jobs.get_mut(i % jobs) {
                        j.metadata.deletion_timestamp = Some(Time(c.now));
                    }
                }
                Damage::DropPhaseCompletionStatus(i) => {
                    if let Some(p) = c.observed.phase_completions.get_mut(i % pcs) { p.status = None; }
                }
            }
        }
        let plan = c.plan();
        for job in &plan.jobs {
            prop_assert!(is_dns_label(&job.name));
        }
        prop_assert!(plan.run_status.state.is_some());
    }
}
