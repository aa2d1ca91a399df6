//! Reads a game-day list ([`GameDaysSource`]) from the cluster: the schedule and backfill
//! controllers both do. A missing ConfigMap or key is a [`GameDays::Unavailable`] the planner
//! turns into a condition, not a reconcile error.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::Api;
use tipoff_crds::GameDaysSource;

use super::error::Error;
use crate::schedule::{GameDays, game_days};

/// The list `source` names in namespace `ns`; `docs` is the page that explains it.
pub(crate) async fn read(
    client: &Client,
    ns: &str,
    source: &GameDaysSource,
    docs: &str,
) -> Result<GameDays, Error> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let Some(cm) = api.get_opt(&source.config_map).await? else {
        return Ok(GameDays::Unavailable {
            reason: "GameDaysMissing",
            message: format!(
                "ConfigMap {ns}/{} does not exist: create it with the season's game dates under key {:?} ({docs})",
                source.config_map, source.key
            ),
        });
    };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get(&source.key)) else {
        return Ok(GameDays::Unavailable {
            reason: "GameDaysMissing",
            message: format!(
                "ConfigMap {ns}/{} has no key {:?}: list the season's game dates under it, one YYYY-MM-DD per line",
                source.config_map, source.key
            ),
        });
    };
    Ok(game_days::parse(
        text,
        &format!("ConfigMap {ns}/{} key {}", source.config_map, source.key),
    ))
}
