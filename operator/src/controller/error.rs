//! Reconcile errors. Each variant has a fixed category used as the Event reason and the
//! `category` label of the error metric, so alerts can match on it.

/// Why a reconcile did not complete.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Kubernetes API refused or failed a request (retried with backoff).
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be serialized for the API.
    #[error("serializing {what}: {source}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// The cause.
        source: serde_json::Error,
    },
    /// The run has no name or namespace (never true for objects read from the API).
    #[error("the PipelineRun has no {0}")]
    MissingMetadata(&'static str),
}

impl Error {
    /// The fixed category: Event reason and metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(status)) if status.code == 409 => "ApiConflict",
            Error::Kube(kube::Error::Api(status)) if status.code == 422 => "ApiInvalid",
            Error::Kube(kube::Error::Api(_)) => "ApiError",
            Error::Kube(_) => "ApiUnavailable",
            Error::Serialize { .. } => "Serialize",
            Error::MissingMetadata(_) => "InvalidObject",
        }
    }
}
