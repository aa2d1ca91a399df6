//! `tipoff-processor game-days`: keeps the cluster's game-day list current from the league
//! schedule. PipelineSchedules and PipelineBackfills read the list from a ConfigMap
//! (docs/schedule.md); the operator never calls an upstream API, so this command, run by a
//! CronJob of the processor image (the chart's `gameDays` values), fetches the same league
//! schedule document phase 1's `scrape-schedule` stores (`scheduleLeagueV2.json`, the whole
//! season) and writes every date with a game, `through:` its last date.
//!
//! A payload that does not parse leaves the list as it is (exit 75: a retry may get a good
//! one), and a list that would end earlier than the one in the cluster is refused (exit 65)
//! unless `--allow-shrink`: a truncated payload must not turn game days into days without
//! games. Writing the same list again changes nothing (server-side apply of identical data).

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use jiff::civil::Date;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use tipoff_crds::game_days::{self, GameDays};
use tipoff_crds::pipeline_schedule::LABEL_GAME_DAYS;

use crate::contract::Failure;
use crate::runner::Config;
use crate::schedule::{self, SCHEDULE_FILE, SCHEDULE_PATH};
use crate::upstream::{Auth, Upstream};

/// The field manager of the list's writes.
pub const FIELD_MANAGER: &str = "tipoff-game-days";

/// `tipoff-processor game-days` options.
#[derive(clap::Args, Debug, Clone)]
pub struct GameDaysArgs {
    /// The ConfigMap holding the list (created if missing, labelled `tipoff.dev/game-days`).
    #[arg(long)]
    pub config_map: String,
    /// The key of the list in the ConfigMap's data.
    #[arg(long, default_value = tipoff_crds::pipeline_schedule::DEFAULT_GAME_DAYS_KEY)]
    pub key: String,
    /// Its namespace (default: the kubeconfig's, or in a Pod the Pod's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Write a list that ends earlier than the one in the cluster (the league removed dates).
    #[arg(long)]
    pub allow_shrink: bool,
    /// Print the list instead of writing it.
    #[arg(long)]
    pub dry_run: bool,
}

/// The list's text for the season's game dates (one per line, `through:` the last).
pub fn render(dates: &BTreeSet<Date>) -> Result<String, String> {
    let (Some(first), Some(last)) = (dates.first(), dates.last()) else {
        return Err("the league schedule lists no game".to_owned());
    };
    let mut text = format!(
        "# Game days of the league schedule ({SCHEDULE_FILE}), written by `tipoff-processor game-days`.\n\
         # {} game days from {first} to {last}; a date up to `through` that is not listed has no games.\n\
         through: {last}\n",
        dates.len()
    );
    for d in dates {
        text.push_str(&format!("{d}\n"));
    }
    Ok(text)
}

/// How the list in the cluster changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// There was none.
    Created,
    /// Dates were added or removed.
    Updated {
        /// Dates listed now and not before.
        added: usize,
        /// Dates listed before and not now.
        removed: usize,
    },
    /// Identical: nothing was written.
    Unchanged,
}

/// Refuses a list ending before the one in the cluster, unless `allow_shrink`.
pub fn check_shrink(
    old: Option<&GameDays>,
    new_through: Date,
    allow_shrink: bool,
) -> Result<(), Failure> {
    match old {
        Some(GameDays::Listed { through, .. }) if new_through < *through && !allow_shrink => {
            Err(Failure::Permanent(format!(
                "the league schedule lists game days through {new_through}, the list in the cluster through {through}: \
                 refusing to shorten it (a truncated payload would turn game days into days without games); \
                 pass --allow-shrink if the league really removed those dates"
            )))
        }
        _ => Ok(()),
    }
}

/// Fetches the league schedule, builds the list, and writes it (or prints it with
/// `--dry-run`). Returns the line to print.
pub async fn refresh(args: &GameDaysArgs, config: &Config) -> Result<String, Failure> {
    let base = config.upstream_url.clone().ok_or_else(|| {
        Failure::Permanent("TIPOFF_UPSTREAM_URL is not set (the upstream API base)".into())
    })?;
    let up = Upstream::new(&base, config.api_key_file.clone(), config.retry.clone())?;
    let fetched = up.get(SCHEDULE_PATH, Auth::None).await?;
    if !fetched.is_ok() {
        return Err(Failure::Transient(format!(
            "GET {SCHEDULE_PATH}: HTTP {}; the game-day list is left as it is",
            fetched.status
        )));
    }
    let games = schedule::season_games(&fetched.body).map_err(|e| {
        Failure::Transient(format!(
            "league schedule payload unusable: {e}; the game-day list is left as it is"
        ))
    })?;
    let dates: BTreeSet<Date> = games.iter().map(|g| g.game_date).collect();
    let text = render(&dates).map_err(Failure::Transient)?;
    let through = dates.last().copied().unwrap_or_default();
    if args.dry_run {
        print!("{text}");
        return Ok(format!(
            "{} game days through {through} (not written: --dry-run)",
            dates.len()
        ));
    }

    let client = kube::Client::try_default()
        .await
        .map_err(|e| Failure::Permanent(format!("connecting to the Kubernetes API: {e}")))?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let target = format!("configmap {ns}/{}", args.config_map);
    let existing = api
        .get_opt(&args.config_map)
        .await
        .map_err(|e| Failure::Transient(format!("reading {target}: {e}")))?;
    let old_text = existing
        .as_ref()
        .and_then(|cm| cm.data.as_ref())
        .and_then(|d| d.get(&args.key));
    let old = old_text.map(|t| game_days::parse(t, &target));
    check_shrink(old.as_ref(), through, args.allow_shrink)?;
    let labelled = existing
        .as_ref()
        .and_then(|cm| cm.metadata.labels.as_ref())
        .is_some_and(|l| l.contains_key(LABEL_GAME_DAYS));
    let written = match &old {
        _ if old_text == Some(&text) && labelled => Written::Unchanged,
        None => Written::Created,
        Some(GameDays::Listed { dates: before, .. }) => Written::Updated {
            added: dates.difference(before).count(),
            removed: before.difference(&dates).count(),
        },
        Some(GameDays::Unavailable { .. }) => Written::Updated {
            added: dates.len(),
            removed: 0,
        },
    };
    if written != Written::Unchanged {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": args.config_map,
                "labels": BTreeMap::from([(LABEL_GAME_DAYS, "true")]),
            },
            "data": { args.key.as_str(): text },
        });
        api.patch(
            &args.config_map,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| Failure::Transient(format!("writing {target}: {e}")))?;
    }
    let what = match written {
        Written::Created => "created".to_owned(),
        Written::Updated { added, removed } => format!("updated (+{added} -{removed} dates)"),
        Written::Unchanged => "unchanged".to_owned(),
    };
    Ok(format!(
        "{target} {what}: {} game days through {through}",
        dates.len()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_list_reads_back_as_the_dates_it_was_rendered_from() {
        let dates = BTreeSet::from([date(2026, 1, 29), date(2026, 1, 31), date(2026, 2, 1)]);
        let text = render(&dates).unwrap();
        assert!(text.contains("\nthrough: 2026-02-01\n"), "{text}");
        assert_eq!(
            game_days::parse(&text, "cm/dates"),
            GameDays::Listed {
                dates,
                through: date(2026, 2, 1)
            }
        );
        assert!(render(&BTreeSet::new()).is_err());
    }

    #[test]
    fn a_list_ending_earlier_is_refused_unless_allowed() {
        let old = GameDays::Listed {
            dates: BTreeSet::from([date(2026, 4, 12)]),
            through: date(2026, 4, 12),
        };
        let err = check_shrink(Some(&old), date(2026, 2, 1), false).unwrap_err();
        assert_eq!(err.exit_code(), tipoff_crds::EXIT_PERMANENT);
        assert!(err.to_string().contains("through 2026-02-01"), "{err}");
        assert!(check_shrink(Some(&old), date(2026, 2, 1), true).is_ok());
        assert!(check_shrink(Some(&old), date(2026, 4, 12), false).is_ok());
        assert!(check_shrink(None, date(2026, 2, 1), false).is_ok());
    }
}
