//! What the watch caches keep of each object. The planner reads a few fields of Jobs and Pods;
//! the rest (managed fields, the Job's Pod template, the Pod's spec) is most of each object's
//! size, so it is dropped before an object enters a cache. With 1,000 runs in flight the caches
//! hold thousands of Jobs and Pods, and this is what keeps the operator's memory flat.
//!
//! Kept, and why: labels and owner references (which run, phase, processor and attempt), the
//! Pod's completion-index annotation, the Job's `completions`/`parallelism` and
//! `activeDeadlineSeconds`, and both objects' status (conditions, times, container
//! termination messages and `imageID`).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use tipoff_crds::PhaseCompletion;

/// Trims a Job for the cache.
pub fn job(job: &mut Job) {
    job.metadata.managed_fields = None;
    if let Some(spec) = job.spec.as_mut() {
        spec.template = PodTemplateSpec::default();
        spec.selector = None;
        spec.pod_failure_policy = None;
    }
}

/// Trims a Pod for the cache.
pub fn pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.spec = None;
    if let Some(status) = pod.status.as_mut() {
        status.conditions = None;
    }
}

/// Trims a PhaseCompletion for the cache.
pub fn phase_completion(pc: &mut PhaseCompletion) {
    pc.metadata.managed_fields = None;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::batch::v1::JobSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    use super::*;

    #[test]
    fn a_trimmed_job_keeps_what_the_planner_reads() {
        let mut j = Job::default();
        j.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        j.metadata.labels = Some([("tipoff.dev/run".to_owned(), "r".to_owned())].into());
        j.spec = Some(JobSpec {
            completions: Some(3),
            parallelism: Some(3),
            active_deadline_seconds: Some(60),
            template: PodTemplateSpec {
                spec: Some(PodSpec::default()),
                ..PodTemplateSpec::default()
            },
            ..JobSpec::default()
        });
        job(&mut j);
        let spec = j.spec.unwrap();
        assert_eq!(spec.completions, Some(3));
        assert_eq!(spec.active_deadline_seconds, Some(60));
        assert!(spec.template.spec.is_none());
        assert!(j.metadata.managed_fields.is_none());
        assert!(j.metadata.labels.is_some());
    }

    #[test]
    fn a_trimmed_pod_keeps_its_status_and_annotations() {
        let mut p = Pod::default();
        p.spec = Some(PodSpec::default());
        p.metadata.annotations = Some(
            [(
                "batch.kubernetes.io/job-completion-index".to_owned(),
                "2".to_owned(),
            )]
            .into(),
        );
        p.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..PodStatus::default()
        });
        pod(&mut p);
        assert!(p.spec.is_none());
        assert_eq!(p.status.unwrap().phase.as_deref(), Some("Succeeded"));
        assert!(p.metadata.annotations.is_some());
    }
}
