//! The runner configuration: which local command stands in for which image,
//! and which `imageID` that image resolves to.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One image mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapping {
    /// Image reference to match: `repo`, `repo:tag`, `repo@sha256:...` or
    /// `repo:tag@sha256:...`. Parts left out match anything.
    pub image: String,
    /// The image's entrypoint as a local command; used when the container
    /// sets no `command` (container `args`, or `args` below, are appended).
    #[serde(default)]
    pub command: Vec<String>,
    /// Default arguments when the container sets none.
    #[serde(default)]
    pub args: Vec<String>,
    /// The `imageID` reported in Pod status (e.g. a different digest than
    /// the one pinned, to simulate drift). Defaults to the image reference.
    #[serde(default, rename = "imageID")]
    pub image_id: Option<String>,
    /// Extra environment for the process (local paths, emulator endpoints).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// The runner configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunnerConfig {
    /// Image mappings; the most specific match wins.
    #[serde(default)]
    pub images: Vec<ImageMapping>,
}

/// Errors loading a runner configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading runner config {path}: {source}")]
    Read {
        /// Path of the file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The file is not valid YAML for the format.
    #[error("parsing runner config {path}: {source}")]
    Parse {
        /// Path of the file.
        path: String,
        /// Underlying error.
        source: serde_yaml::Error,
    },
}

/// An image reference split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository (registry host and path).
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest (`sha256:...`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `repo[:tag][@digest]`; a colon inside the registry host (port) is not a tag.
    pub fn parse(reference: &str) -> Self {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                rest[..last_slash + i].to_string(),
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest.to_string(), None),
        };
        Self {
            repository,
            tag,
            digest,
        }
    }
}

impl RunnerConfig {
    /// Loads a YAML configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })
    }

    /// Parses YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml::Error> {
        serde_yaml::from_str(text)
    }

    /// The most specific mapping for an image reference.
    pub fn resolve(&self, image: &str) -> Option<&ImageMapping> {
        let wanted = ImageRef::parse(image);
        self.images
            .iter()
            .filter_map(|m| {
                let pattern = ImageRef::parse(&m.image);
                let tag_ok = pattern.tag.is_none() || pattern.tag == wanted.tag;
                let digest_ok = pattern.digest.is_none() || pattern.digest == wanted.digest;
                (pattern.repository == wanted.repository && tag_ok && digest_ok).then(|| {
                    let score = usize::from(pattern.tag.is_some())
                        + 2 * usize::from(pattern.digest.is_some());
                    (score, m)
                })
            })
            .max_by_key(|(score, _)| *score)
            .map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("localhost:5000/tipoff/proc:1.2@sha256:abc");
        assert_eq!(r.repository, "localhost:5000/tipoff/proc");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        let r = ImageRef::parse("busybox");
        assert_eq!(
            (r.repository.as_str(), r.tag, r.digest),
            ("busybox", None, None)
        );
    }

    #[test]
    fn most_specific_mapping_wins() {
        let config = RunnerConfig::from_yaml(
            "images:\n- image: proc\n  command: [a]\n- image: proc:v2\n  command: [b]\n- image: proc@sha256:d\n  command: [c]\n",
        )
        .unwrap_or_default();
        let pick = |i: &str| config.resolve(i).map(|m| m.command[0].clone());
        assert_eq!(pick("proc:v1").as_deref(), Some("a"));
        assert_eq!(pick("proc:v2").as_deref(), Some("b"));
        assert_eq!(pick("proc:v2@sha256:d").as_deref(), Some("c"));
        assert_eq!(pick("other"), None);
    }
}
