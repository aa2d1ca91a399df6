//! The Job builder: a pure function from a run, a catalog processor and an attempt number to the
//! `batch/v1` Job that runs that attempt.
//!
//! The planner decides *what* runs (a [`JobIntent`]: name, labels, pinned image, attempt, mode
//! flags); this module decides *how*: the processor contract's arguments and environment, the
//! owner reference, the failure policy (permanent exit codes fail the Job at once; retries are
//! the planner's new attempts) and a Pod security context that passes the Kubernetes
//! `restricted` Pod Security Standard. It never talks to the cluster.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    KeyToPath, PodSecurityContext, PodSpec, PodTemplateSpec, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecretProjection, SecurityContext, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use tipoff_crds::children::PROCESSOR_CONTAINER;
use tipoff_crds::{EXIT_TRANSIENT, PipelineRun};

use crate::catalog::Resources;
use crate::planner::{JobIntent, PlayerSource};

/// The label marking Jobs and Pods that tipoff manages (the operator watches only those), and
/// its value: the `app.kubernetes.io/managed-by` of [`tipoff_crds::children::standard_labels`].
pub use tipoff_crds::children::{LABEL_APP_MANAGED_BY as MANAGED_BY_LABEL, MANAGED_BY};

/// Where the processor writes its result; Kubernetes copies it into the Pod's status.
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

/// Deployment-wide settings for processor Jobs, from the operator's flags.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSettings {
    /// Pod retries inside one attempt (node loss, eviction). Processor failures with a
    /// permanent exit code fail the Job at once regardless.
    pub backoff_limit: i32,
    /// Seconds a finished Job is kept. Long enough to outlive the run, because a finished run's
    /// status is rebuilt from its Jobs.
    pub ttl_seconds_after_finished: i32,
    /// The ServiceAccount processor Pods run as (Workload Identity binds it to cloud access).
    pub service_account: Option<String>,
    /// A ConfigMap with the processors' environment (warehouse and object-store URLs).
    pub env_config_map: Option<String>,
    /// CPU and memory requests and limits for the processor container, by resource name; a
    /// catalog processor's own values replace these per resource. Never empty by default, so
    /// processor Pods are never BestEffort and fit a namespace with a ResourceQuota.
    pub resources: Resources,
    /// The user and group processors run as (non-root).
    pub run_as_user: i64,
    /// One API key per upstream service, each from its own Secret, mounted into every
    /// processor Pod (`--upstream-secret`).
    pub upstream_secrets: Vec<UpstreamSecret>,
}

/// Where processor Pods find the upstream API keys: one file per service, named after it
/// (`/var/run/secrets/tipoff/upstream/<service>`), in one projected volume. The directory is
/// `TIPOFF_UPSTREAM_API_KEY_FILE`, which the processors read per service.
pub const UPSTREAM_KEYS_DIR: &str = "/var/run/secrets/tipoff/upstream";

/// One upstream service's API key in a Secret: `SERVICE=SECRET/KEY` on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamSecret {
    /// The service (`balldontlie`, `odds`): the key's file name in the Pod.
    pub service: String,
    /// The Secret in the run's namespace.
    pub secret: String,
    /// The key in the Secret that holds the API key.
    pub key: String,
}

impl std::str::FromStr for UpstreamSecret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s.split_once('=').and_then(|(service, rest)| {
            let (secret, key) = rest.split_once('/')?;
            Some((service.trim(), secret.trim(), key.trim()))
        });
        let dns_label = |v: &str| {
            !v.is_empty()
                && v.len() <= 63
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        match parsed {
            Some((service, secret, key))
                if dns_label(service)
                    && dns_label(secret)
                    && !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                Ok(Self {
                    service: service.to_owned(),
                    secret: secret.to_owned(),
                    key: key.to_owned(),
                })
            }
            _ => Err(format!(
                "{s:?} is not SERVICE=SECRET/KEY (a lowercase service and Secret name, a Secret key)"
            )),
        }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            backoff_limit: 1,
            ttl_seconds_after_finished: 7 * 24 * 3600,
            service_account: None,
            env_config_map: None,
            resources: Resources {
                requests: [("cpu", "250m"), ("memory", "256Mi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                limits: [("memory", "1Gi")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            },
            run_as_user: 65532,
            upstream_secrets: Vec::new(),
        }
    }
}

/// The container's resources: the deployment defaults, each resource replaced by the
/// processor's own value from the catalog.
fn resources(defaults: &Resources, processor: &Resources) -> ResourceRequirements {
    let merge = |d: &BTreeMap<String, String>, p: &BTreeMap<String, String>| {
        let mut all = d.clone();
        all.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
        (!all.is_empty()).then(|| {
            all.into_iter()
                .map(|(k, v)| (k, Quantity(v)))
                .collect::<BTreeMap<String, Quantity>>()
        })
    };
    ResourceRequirements {
        requests: merge(&defaults.requests, &processor.requests),
        limits: merge(&defaults.limits, &processor.limits),
        ..ResourceRequirements::default()
    }
}

/// One projected volume holding each service's key as a file named after the service
/// (readable by the processors' group only), or none without upstream Secrets.
fn upstream_keys_volume(secrets: &[UpstreamSecret]) -> Option<Volume> {
    (!secrets.is_empty()).then(|| Volume {
        name: "upstream-keys".to_owned(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o440),
            sources: Some(
                secrets
                    .iter()
                    .map(|s| VolumeProjection {
                        secret: Some(SecretProjection {
                            name: s.secret.clone(),
                            items: Some(vec![KeyToPath {
                                key: s.key.clone(),
                                path: s.service.clone(),
                                ..KeyToPath::default()
                            }]),
                            optional: Some(false),
                        }),
                        ..VolumeProjection::default()
                    })
                    .collect(),
            ),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    })
}

/// Exit codes that mean bad input: the Job fails at once instead of retrying the Pod.
fn permanent_exit_codes() -> Vec<i32> {
    std::iter::once(tipoff_crds::EXIT_USAGE)
        .chain((64..=78).filter(|c| *c != EXIT_TRANSIENT))
        .collect()
}

/// Builds the Job for one planned attempt of a processor in `run` (its owner).
pub fn build_job(run: &PipelineRun, intent: &JobIntent, settings: &JobSettings) -> Job {
    let run_name = run.metadata.name.clone().unwrap_or_default();
    let flags = &intent.flags;
    let player_source = match flags.player_source {
        PlayerSource::Expected => "expected",
        PlayerSource::WhoPlayed => "who-played",
    };
    let env = [
        ("TIPOFF_RESULT_PATH", TERMINATION_MESSAGE_PATH.to_owned()),
        ("TIPOFF_RUN", run_name),
        ("TIPOFF_ATTEMPT", intent.attempt.to_string()),
        ("TIPOFF_PHASE", intent.phase.to_string()),
        ("TIPOFF_PINNED_COMMIT", intent.commit.clone()),
        ("TIPOFF_PLAYER_SOURCE", player_source.to_owned()),
        (
            "TIPOFF_SKIP_DEPENDENCY_CHECK",
            flags.skip_dependency_check.to_string(),
        ),
        ("TIPOFF_DISABLED_CHECKS", flags.disabled_checks.join(",")),
        // How many shards the Job has; each Pod learns its own from the Job controller's
        // JOB_COMPLETION_INDEX (Indexed Jobs only).
        ("TIPOFF_SHARDS", intent.parallelism.max(1).to_string()),
        ("TMPDIR", "/tmp".to_owned()),
    ]
    .into_iter()
    .chain(
        (!settings.upstream_secrets.is_empty())
            .then(|| ("TIPOFF_UPSTREAM_API_KEY_FILE", UPSTREAM_KEYS_DIR.to_owned())),
    )
    .chain(intent.rerun.clone().map(|r| ("TIPOFF_RERUN", r)))
    .chain(intent.game.clone().map(|g| ("TIPOFF_GAME", g)))
    .map(|(name, value)| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    })
    .collect();

    let container = Container {
        name: PROCESSOR_CONTAINER.to_owned(),
        image: Some(intent.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec![
            "run".to_owned(),
            intent.processor.clone(),
            "--date".to_owned(),
            intent.date.clone(),
            "--mode".to_owned(),
            intent.mode.as_arg().to_owned(),
        ]),
        env: Some(env),
        env_from: settings.env_config_map.as_ref().map(|name| {
            vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: name.clone(),
                    optional: Some(false),
                }),
                ..EnvFromSource::default()
            }]
        }),
        resources: Some(resources(&settings.resources, &intent.resources)),
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.to_owned()),
        termination_message_policy: Some("File".to_owned()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(
            std::iter::once(VolumeMount {
                name: "tmp".to_owned(),
                mount_path: "/tmp".to_owned(),
                ..VolumeMount::default()
            })
            .chain(
                (!settings.upstream_secrets.is_empty()).then(|| VolumeMount {
                    name: "upstream-keys".to_owned(),
                    mount_path: UPSTREAM_KEYS_DIR.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                }),
            )
            .collect(),
        ),
        ..Container::default()
    };

    let pod = PodSpec {
        restart_policy: Some("Never".to_owned()),
        service_account_name: settings.service_account.clone(),
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(settings.run_as_user),
            run_as_group: Some(settings.run_as_user),
            fs_group: Some(settings.run_as_user),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: Some(
            std::iter::once(Volume {
                name: "tmp".to_owned(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("1Gi".to_owned())),
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            })
            .chain(upstream_keys_volume(&settings.upstream_secrets))
            .collect(),
        ),
        ..PodSpec::default()
    };

    let indexed = intent.parallelism > 1;
    let parallelism = i32::try_from(intent.parallelism).unwrap_or(i32::MAX);
    let mut labels = intent.labels.clone();
    // The operator's watches select Jobs and Pods by this label.
    labels.insert(MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned());
    Job {
        metadata: ObjectMeta {
            name: Some(intent.name.clone()),
            namespace: run.metadata.namespace.clone(),
            labels: Some(labels.clone()),
            owner_references: owner_reference(run).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(settings.backoff_limit),
            active_deadline_seconds: Some(intent.deadline_seconds),
            ttl_seconds_after_finished: Some(settings.ttl_seconds_after_finished),
            pod_replacement_policy: Some("Failed".to_owned()),
            completion_mode: Some(if indexed { "Indexed" } else { "NonIndexed" }.to_owned()),
            completions: Some(parallelism),
            parallelism: Some(parallelism),
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![PodFailurePolicyRule {
                    action: "FailJob".to_owned(),
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some(PROCESSOR_CONTAINER.to_owned()),
                        operator: "In".to_owned(),
                        values: permanent_exit_codes(),
                    }),
                    on_pod_conditions: None,
                }],
            }),
            suspend: Some(false),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The controller owner reference to a run, so deleting the run deletes its Jobs.
pub fn owner_reference(run: &PipelineRun) -> Option<OwnerReference> {
    let mut owner = run.controller_owner_ref(&())?;
    owner.block_owner_deletion = Some(true);
    Some(owner)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::planner::ProcessorFlags;
    use tipoff_crds::{Mode, PipelineRunSpec, Release};

    const IMAGE: &str = "ghcr.io/tipoff/processor@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn run() -> PipelineRun {
        let mut run = PipelineRun::new(
            "nba-2026-01-29",
            PipelineRunSpec::new(
                "2026-01-29",
                Mode::SameDay,
                Release::pinned(IMAGE, "c4f8f339"),
            ),
        );
        run.metadata.namespace = Some("nba".into());
        run.metadata.uid = Some("0b1c7a4e-1111-2222-3333-444455556666".into());
        run
    }

    fn intent(parallelism: u32) -> JobIntent {
        JobIntent {
            name: "nba-2026-01-29-4-ml-feature-store-a2".into(),
            phase: 4,
            processor: "ml-feature-store".into(),
            attempt: 2,
            labels: BTreeMap::from([
                ("tipoff.dev/run".to_owned(), "nba-2026-01-29".to_owned()),
                (
                    "tipoff.dev/processor".to_owned(),
                    "ml-feature-store".to_owned(),
                ),
                ("tipoff.dev/attempt".to_owned(), "2".to_owned()),
            ]),
            image: IMAGE.into(),
            commit: "c4f8f339".into(),
            date: "2026-01-29".into(),
            mode: Mode::SameDay,
            deadline_seconds: 900,
            parallelism,
            flags: ProcessorFlags {
                player_source: PlayerSource::Expected,
                skip_dependency_check: true,
                disabled_checks: vec!["history-gap".into()],
            },
            rerun: None,
            game: None,
            resources: Resources {
                requests: BTreeMap::from([("memory".to_owned(), "2Gi".to_owned())]),
                limits: BTreeMap::from([("memory".to_owned(), "4Gi".to_owned())]),
            },
        }
    }

    #[test]
    fn upstream_secrets_are_one_projected_volume_with_a_file_per_service() {
        let settings = JobSettings {
            upstream_secrets: vec![
                "balldontlie=upstream-keys/bdl".parse().unwrap(),
                "odds=odds-api/key".parse().unwrap(),
            ],
            ..JobSettings::default()
        };
        let job = build_job(&run(), &intent(1), &settings);
        let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let volume = pod
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == "upstream-keys")
            .unwrap();
        let files: Vec<(String, String, String)> = volume
            .projected
            .as_ref()
            .unwrap()
            .sources
            .iter()
            .flatten()
            .map(|s| {
                let s = s.secret.as_ref().unwrap();
                let item = &s.items.as_ref().unwrap()[0];
                (s.name.clone(), item.key.clone(), item.path.clone())
            })
            .collect();
        assert_eq!(
            files,
            [
                ("upstream-keys".into(), "bdl".into(), "balldontlie".into()),
                ("odds-api".into(), "key".into(), "odds".into())
            ]
        );
        let c = container(&job);
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == "upstream-keys")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            (UPSTREAM_KEYS_DIR, Some(true))
        );
        let env = c.env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "TIPOFF_UPSTREAM_API_KEY_FILE"
            && e.value.as_deref() == Some(UPSTREAM_KEYS_DIR)));
        // Without Secrets: no volume, no variable (the ConfigMap may set a file).
        let job = build(1);
        let c = container(&job);
        assert!(
            !c.env
                .iter()
                .flatten()
                .any(|e| e.name == "TIPOFF_UPSTREAM_API_KEY_FILE")
        );
        assert!("odds".parse::<UpstreamSecret>().is_err());
        assert!("Odds=s/k".parse::<UpstreamSecret>().is_err());
    }

    #[test]
    fn every_processor_has_requests_and_limits_and_the_catalog_overrides_them_per_resource() {
        let job = build(1);
        let r = container(&job).resources.clone().unwrap();
        let q = |m: &Option<BTreeMap<String, Quantity>>, k: &str| {
            m.as_ref().and_then(|m| m.get(k)).map(|q| q.0.clone())
        };
        // The default CPU request stays; memory comes from the catalog.
        assert_eq!(q(&r.requests, "cpu").as_deref(), Some("250m"));
        assert_eq!(q(&r.requests, "memory").as_deref(), Some("2Gi"));
        assert_eq!(q(&r.limits, "memory").as_deref(), Some("4Gi"));
        // Without catalog values: the operator's defaults, never BestEffort.
        let mut plain = intent(1);
        plain.resources = Resources::default();
        let job = build_job(&run(), &plain, &JobSettings::default());
        let r = container(&job).resources.clone().unwrap();
        assert_eq!(q(&r.requests, "memory").as_deref(), Some("256Mi"));
        assert_eq!(q(&r.limits, "memory").as_deref(), Some("1Gi"));
    }

    fn build(parallelism: u32) -> Job {
        build_job(&run(), &intent(parallelism), &JobSettings::default())
    }

    fn container(job: &Job) -> &Container {
        &job.spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
    }

    #[test]
    fn runs_the_pinned_digest_with_the_contract_arguments_and_mode_flags() {
        let job = build(1);
        let c = container(&job);
        assert_eq!(c.image.as_deref(), Some(IMAGE));
        assert_eq!(
            c.args.as_ref().unwrap(),
            &[
                "run",
                "ml-feature-store",
                "--date",
                "2026-01-29",
                "--mode",
                "same-day"
            ]
        );
        let env: BTreeMap<_, _> = c
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.as_str(), e.value.clone().unwrap()))
            .collect();
        assert_eq!(env["TIPOFF_ATTEMPT"], "2");
        assert_eq!(env["TIPOFF_RESULT_PATH"], TERMINATION_MESSAGE_PATH);
        assert_eq!(env["TIPOFF_SKIP_DEPENDENCY_CHECK"], "true");
        assert_eq!(env["TIPOFF_DISABLED_CHECKS"], "history-gap");
        assert_eq!(env["TIPOFF_PLAYER_SOURCE"], "expected");
        assert_eq!(
            c.termination_message_path.as_deref(),
            Some(TERMINATION_MESSAGE_PATH)
        );
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
    }

    #[test]
    fn labels_owner_and_failure_policy() {
        let job = build(1);
        assert_eq!(
            job.metadata.name.as_deref(),
            Some("nba-2026-01-29-4-ml-feature-store-a2")
        );
        assert_eq!(job.metadata.namespace.as_deref(), Some("nba"));
        let mut labels = intent(1).labels;
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        assert_eq!(job.metadata.labels.as_ref(), Some(&labels));
        let template_labels = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone();
        assert_eq!(template_labels, Some(labels), "Pods carry the same labels");
        let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("PipelineRun", Some(true))
        );
        assert_eq!(owner.block_owner_deletion, Some(true));
        let spec = job.spec.as_ref().unwrap();
        assert_eq!(spec.active_deadline_seconds, Some(900));
        assert_eq!(spec.pod_replacement_policy.as_deref(), Some("Failed"));
        assert_eq!(spec.completion_mode.as_deref(), Some("NonIndexed"));
        assert_eq!(spec.backoff_limit, Some(1));
        assert!(spec.ttl_seconds_after_finished.unwrap() >= 24 * 3600);
        let codes = &spec.pod_failure_policy.as_ref().unwrap().rules[0]
            .on_exit_codes
            .as_ref()
            .unwrap()
            .values;
        assert!(codes.contains(&65) && codes.contains(&2) && !codes.contains(&75));
        assert!(
            codes
                .iter()
                .all(|c| tipoff_crds::classify_exit(*c) == tipoff_crds::ExitClass::Permanent)
        );
    }

    #[test]
    fn parallel_processors_get_indexed_completion() {
        let spec = build(4).spec.unwrap();
        assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
        assert_eq!((spec.completions, spec.parallelism), (Some(4), Some(4)));
        // Each shard learns the count from the Job and its index from JOB_COMPLETION_INDEX.
        let env = spec.template.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        let shards = env.iter().find(|e| e.name == "TIPOFF_SHARDS").unwrap();
        assert_eq!(shards.value.as_deref(), Some("4"));
    }

    /// The checks of the Kubernetes `restricted` Pod Security Standard that apply to what the
    /// builder sets.
    #[test]
    fn pod_passes_the_restricted_pod_security_standard() {
        let job = build(1);
        let pod = job.spec.unwrap().template.spec.unwrap();
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_ne!(psc.run_as_user, Some(0));
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        assert!(pod.host_network.is_none() && pod.host_pid.is_none() && pod.host_ipc.is_none());
        for v in pod.volumes.as_ref().unwrap() {
            assert!(
                v.host_path.is_none(),
                "restricted allows no hostPath volumes"
            );
        }
        for c in &pod.containers {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false));
            assert_eq!(sc.privileged, Some(false));
            assert_eq!(sc.read_only_root_filesystem, Some(true));
            let caps = sc.capabilities.as_ref().unwrap();
            assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_owned()][..]));
            assert!(caps.add.is_none());
            assert!(c.ports.is_none(), "no host ports");
        }
    }
}
