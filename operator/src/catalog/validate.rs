//! Turns the raw catalog into a [`Catalog`], rejecting anything the planner could not trust.
//!
//! Checks run in file order and stop at the first problem, so the error always names the
//! first offending entry a reader meets.

use std::collections::{BTreeMap, HashMap};

use super::raw::{PerMode, RawCatalog, RawDependency, RawGateRef, RawRetry};
use super::{
    Catalog, CatalogError, DEFAULT_DRIFT, Dependency, Gate, MODES, Mode, ModeMap, Phase, Processor,
    ProcessorGate, Resources, Retry,
};

const DEFAULT_DEADLINE_SECONDS: i64 = 1800;
const DEFAULT_RETRY: Retry = Retry {
    max_attempts: 3,
    backoff_seconds: 30,
    max_backoff_seconds: 600,
};
const MAX_ATTEMPTS: u32 = 10;
const MAX_DEADLINE_SECONDS: i64 = 86_400;
const MAX_PARALLELISM: u32 = 100;
/// The PhaseCompletion CRD lists at most 64 processors per phase.
const MAX_PROCESSORS_PER_PHASE: usize = 64;
/// A processor record holds at most 32 gate outcomes.
const MAX_GATES_PER_PROCESSOR: usize = 32;

impl<T: Copy> From<PerMode<T>> for ModeMap<T> {
    fn from(value: PerMode<T>) -> Self {
        match value {
            PerMode::All(v) => ModeMap::all(v),
            PerMode::Each {
                production,
                same_day,
                backfill,
            } => ModeMap {
                production,
                same_day,
                backfill,
            },
        }
    }
}

/// Validates `raw` and builds the typed catalog.
pub(super) fn validate(raw: RawCatalog) -> Result<Catalog, CatalogError> {
    let default_retry =
        merge_retry(DEFAULT_RETRY, &raw.defaults.retry).map_err(CatalogError::InvalidDefaults)?;
    let default_deadline = raw
        .defaults
        .deadline_seconds
        .unwrap_or(DEFAULT_DEADLINE_SECONDS);
    check_deadline(default_deadline).map_err(CatalogError::InvalidDefaults)?;
    let default_parallelism = raw.defaults.parallelism.unwrap_or(1);
    check_parallelism(default_parallelism).map_err(CatalogError::InvalidDefaults)?;

    let mut gates = BTreeMap::new();
    for gate in raw.gates {
        check_name("gate", &gate.name)?;
        if gates.contains_key(&gate.name) {
            return Err(CatalogError::DuplicateGate { name: gate.name });
        }
        gates.insert(
            gate.name.clone(),
            Gate {
                name: gate.name,
                description: gate.description,
                policy: gate.policy.into(),
            },
        );
    }

    let mut phases: Vec<Phase> = Vec::new();
    // processor name -> phase number, for duplicate and dependency checks.
    let mut phase_of: HashMap<String, u8> = HashMap::new();
    for raw_phase in raw.phases {
        check_name("phase", &raw_phase.name)?;
        if !(1..=6).contains(&raw_phase.number) {
            return Err(CatalogError::PhaseNumberOutOfRange {
                number: raw_phase.number,
                name: raw_phase.name,
            });
        }
        if let Some(prev) = phases.iter().find(|p| p.number == raw_phase.number) {
            return Err(CatalogError::DuplicatePhase {
                number: raw_phase.number,
                first: prev.name.clone(),
                second: raw_phase.name,
            });
        }
        if let Some(prev) = phases.iter().find(|p| p.name == raw_phase.name) {
            return Err(CatalogError::DuplicatePhaseName {
                name: raw_phase.name,
                first: prev.number,
                second: raw_phase.number,
            });
        }
        if let Some(prev) = phases.last()
            && prev.number > raw_phase.number
        {
            return Err(CatalogError::PhaseOrder {
                number: raw_phase.number,
                name: raw_phase.name,
                previous: prev.number,
            });
        }
        if raw_phase.processors.is_empty() {
            return Err(CatalogError::EmptyPhase {
                number: raw_phase.number,
                name: raw_phase.name,
            });
        }
        if raw_phase.processors.len() > MAX_PROCESSORS_PER_PHASE {
            return Err(CatalogError::TooManyProcessors {
                number: raw_phase.number,
                name: raw_phase.name,
                count: raw_phase.processors.len(),
                max: MAX_PROCESSORS_PER_PHASE,
            });
        }

        let mut processors = Vec::new();
        for rp in raw_phase.processors {
            check_name("processor", &rp.name)?;
            if let Some(&first) = phase_of.get(&rp.name) {
                return Err(CatalogError::DuplicateProcessor {
                    name: rp.name,
                    first,
                    second: raw_phase.number,
                });
            }
            phase_of.insert(rp.name.clone(), raw_phase.number);
            let invalid = |message: String| CatalogError::InvalidProcessor {
                processor: rp.name.clone(),
                message,
            };
            let retry = merge_retry(default_retry, &rp.retry).map_err(invalid)?;
            let deadline_seconds = rp.deadline_seconds.unwrap_or(default_deadline);
            check_deadline(deadline_seconds).map_err(invalid)?;
            let parallelism = rp.parallelism.unwrap_or(default_parallelism);
            check_parallelism(parallelism).map_err(invalid)?;
            for output in &rp.outputs {
                check_output(output).map_err(invalid)?;
            }

            let mut depends_on: Vec<Dependency> = Vec::new();
            for dep in rp.depends_on {
                let dep = match dep {
                    RawDependency::Always(processor) => Dependency {
                        processor,
                        modes: None,
                    },
                    RawDependency::InModes(m) => {
                        if m.modes.is_empty() {
                            return Err(invalid(format!(
                                "dependency {:?} lists no modes; omit `modes` to depend in every mode",
                                m.processor
                            )));
                        }
                        Dependency {
                            processor: m.processor,
                            modes: Some(m.modes),
                        }
                    }
                };
                if depends_on.iter().any(|d| d.processor == dep.processor) {
                    return Err(CatalogError::DuplicateDependency {
                        processor: rp.name.clone(),
                        dependency: dep.processor,
                    });
                }
                depends_on.push(dep);
            }

            if rp.gates.len() > MAX_GATES_PER_PROCESSOR {
                return Err(invalid(format!(
                    "uses {} gates; at most {MAX_GATES_PER_PROCESSOR} fit in its status record",
                    rp.gates.len()
                )));
            }
            let mut proc_gates: Vec<ProcessorGate> = Vec::new();
            for gate_ref in rp.gates {
                let (name, policy) = match gate_ref {
                    RawGateRef::Named(name) => (name, None),
                    RawGateRef::WithPolicy(g) => (g.name, Some(ModeMap::from(g.policy))),
                };
                let Some(gate) = gates.get(&name) else {
                    return Err(CatalogError::UnknownGate {
                        processor: rp.name.clone(),
                        gate: name,
                    });
                };
                if proc_gates.iter().any(|g| g.name == name) {
                    return Err(CatalogError::DuplicateProcessorGate {
                        processor: rp.name.clone(),
                        gate: name,
                    });
                }
                proc_gates.push(ProcessorGate {
                    policy: policy.unwrap_or(gate.policy),
                    name,
                });
            }

            for (name, quantity) in rp.resources.requests.iter().chain(&rp.resources.limits) {
                check_resource(name, quantity).map_err(invalid)?;
            }

            processors.push(Processor {
                name: rp.name,
                description: rp.description,
                phase: raw_phase.number,
                required: rp.required.map_or(ModeMap::all(true), ModeMap::from),
                deadline_seconds,
                retry,
                parallelism,
                outputs: rp.outputs,
                depends_on,
                gates: proc_gates,
                resources: Resources {
                    requests: rp.resources.requests,
                    limits: rp.resources.limits,
                },
            });
        }
        phases.push(Phase {
            number: raw_phase.number,
            name: raw_phase.name,
            processors,
        });
    }

    check_dependencies(&phases, &phase_of)?;
    for mode in MODES {
        check_acyclic(&phases, mode)?;
    }

    Ok(Catalog {
        phases,
        gates,
        drift: raw.drift.map(ModeMap::from).unwrap_or(DEFAULT_DRIFT),
        allowed_image_repositories: Vec::new(),
    })
}

fn check_dependencies(
    phases: &[Phase],
    phase_of: &HashMap<String, u8>,
) -> Result<(), CatalogError> {
    for processor in phases.iter().flat_map(|p| &p.processors) {
        for dep in &processor.depends_on {
            let Some(&dep_phase) = phase_of.get(&dep.processor) else {
                return Err(CatalogError::UnknownDependency {
                    processor: processor.name.clone(),
                    dependency: dep.processor.clone(),
                });
            };
            if dep_phase > processor.phase {
                return Err(CatalogError::LaterPhaseDependency {
                    processor: processor.name.clone(),
                    phase: processor.phase,
                    dependency: dep.processor.clone(),
                    dependency_phase: dep_phase,
                });
            }
        }
    }
    Ok(())
}

/// Depth-first search for a cycle in `mode`'s dependency graph. Only same-phase edges can close
/// a cycle (later-phase edges are already rejected), but the search does not rely on that.
fn check_acyclic(phases: &[Phase], mode: Mode) -> Result<(), CatalogError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let processors: Vec<&Processor> = phases.iter().flat_map(|p| &p.processors).collect();
    let index: HashMap<&str, usize> = processors
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut marks = vec![Mark::New; processors.len()];

    for start in 0..processors.len() {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative DFS: a stack of (node, next dependency to visit) plus the current path.
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        marks[start] = Mark::OnPath;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let deps: Vec<usize> = processors[node]
                .dependencies(mode)
                .filter_map(|d| index.get(d).copied())
                .collect();
            if *next < deps.len() {
                let dep = deps[*next];
                *next += 1;
                match marks[dep] {
                    Mark::New => {
                        marks[dep] = Mark::OnPath;
                        stack.push((dep, 0));
                    }
                    Mark::OnPath => {
                        let from = stack.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> = stack[from..]
                            .iter()
                            .map(|&(n, _)| processors[n].name.clone())
                            .collect();
                        cycle.push(processors[dep].name.clone());
                        return Err(CatalogError::Cycle { mode, cycle });
                    }
                    Mark::Done => {}
                }
            } else {
                marks[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    Ok(())
}

fn merge_retry(base: Retry, raw: &RawRetry) -> Result<Retry, String> {
    let retry = Retry {
        max_attempts: raw.max_attempts.unwrap_or(base.max_attempts),
        backoff_seconds: raw.backoff_seconds.unwrap_or(base.backoff_seconds),
        max_backoff_seconds: raw.max_backoff_seconds.unwrap_or(base.max_backoff_seconds),
    };
    if !(1..=MAX_ATTEMPTS).contains(&retry.max_attempts) {
        return Err(format!(
            "retry.maxAttempts is {}; it must be between 1 and {MAX_ATTEMPTS}",
            retry.max_attempts
        ));
    }
    if retry.backoff_seconds > retry.max_backoff_seconds {
        return Err(format!(
            "retry.backoffSeconds ({}) exceeds retry.maxBackoffSeconds ({})",
            retry.backoff_seconds, retry.max_backoff_seconds
        ));
    }
    Ok(retry)
}

fn check_deadline(seconds: i64) -> Result<(), String> {
    if (1..=MAX_DEADLINE_SECONDS).contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "deadlineSeconds is {seconds}; it must be between 1 and {MAX_DEADLINE_SECONDS}"
        ))
    }
}

fn check_parallelism(parallelism: u32) -> Result<(), String> {
    if (1..=MAX_PARALLELISM).contains(&parallelism) {
        Ok(())
    } else {
        Err(format!(
            "parallelism is {parallelism}; it must be between 1 and {MAX_PARALLELISM}"
        ))
    }
}

/// A resource a processor may ask for, with a quantity Kubernetes accepts (a decimal number
/// with an optional suffix: `500m`, `2`, `1.5Gi`, `512M`).
pub fn check_resource(name: &str, quantity: &str) -> Result<(), String> {
    if !matches!(name, "cpu" | "memory" | "ephemeral-storage") {
        return Err(format!(
            "resource {name:?} is not one of cpu, memory, ephemeral-storage"
        ));
    }
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let number = suffixes
        .iter()
        .find_map(|s| quantity.strip_suffix(s).filter(|n| !n.is_empty()))
        .unwrap_or_default();
    let digits = number.replacen('.', "", 1);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("{name}: {quantity:?} is not a Kubernetes quantity"));
    }
    Ok(())
}

fn check_output(output: &str) -> Result<(), String> {
    let valid_part =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match output.split_once('.') {
        Some((dataset, table)) if valid_part(dataset) && valid_part(table) => Ok(()),
        _ => Err(format!(
            "output {output:?} is not of the form dataset.table"
        )),
    }
}

/// Phase, processor and gate names end up in Job names and label values: DNS labels.
fn check_name(kind: &'static str, name: &str) -> Result<(), CatalogError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 63 {
        Some("it is longer than 63 characters")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("use lowercase letters, digits and '-' only")
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it must start and end with a letter or digit")
    } else if kind == "processor"
        && name
            .split('-')
            .any(|segment| segment.chars().all(|c| c.is_ascii_digit()))
    {
        // Job names are `<run>-<phase>-<processor>-a<attempt>`; an all-digit segment inside a
        // processor name could make two different (run, phase, processor) name the same Job.
        Some("no '-'-separated part may be all digits (it would make Job names ambiguous)")
    } else {
        None
    };
    match why {
        Some(why) => Err(CatalogError::InvalidName {
            kind,
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}
