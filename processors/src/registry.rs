//! The one table of every processor `tipoff-processor` runs: its catalog name, its phase and
//! the function that runs it. Dispatch, the command line's "known processors", the benchmarks
//! and the catalog test all read this table; nothing else lists processor names.

use std::future::Future;
use std::pin::Pin;

use crate::contract::Failure;
use crate::runner::Ctx;
use crate::{analytics, precompute, predict, publish, raw, scrape};

/// A boxed processor future borrowing its context.
pub type ProcessorFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// The function that runs a processor.
pub type RunFn = for<'a> fn(&'a mut Ctx) -> ProcessorFuture<'a>;

/// One registered processor.
#[derive(Clone, Copy)]
pub struct ProcessorDef {
    /// The name the catalog (`config/pipeline.yaml`) and the command line use.
    pub name: &'static str,
    /// The pipeline phase (1 scrape, 2 raw, 3 analytics, 4 precompute, 5 predict, 6 publish).
    pub phase: u8,
    /// Runs it.
    pub run: RunFn,
}

impl std::fmt::Debug for ProcessorDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorDef")
            .field("name", &self.name)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

/// Wraps an `async fn(&mut Ctx) -> Result<(), Failure>` as a [`RunFn`].
macro_rules! def {
    ($name:literal, $phase:literal, $f:path) => {{
        fn run(ctx: &mut Ctx) -> ProcessorFuture<'_> {
            Box::pin($f(ctx))
        }
        ProcessorDef {
            name: $name,
            phase: $phase,
            run,
        }
    }};
}

/// Every processor, in catalog order.
pub const PROCESSORS: &[ProcessorDef] = &[
    def!("scrape-schedule", 1, scrape::schedule),
    def!("scrape-boxscores", 1, scrape::boxscores),
    def!("scrape-play-by-play", 1, scrape::play_by_play),
    def!("scrape-injury-report", 1, scrape::injury_report),
    def!("scrape-player-props", 1, scrape::player_props),
    def!("scrape-game-lines", 1, scrape::game_lines),
    def!("raw-schedule", 2, raw::schedule),
    def!("raw-boxscores", 2, raw::boxscores),
    def!("raw-play-by-play", 2, raw::play_by_play),
    def!("raw-injury-report", 2, raw::injury_report),
    def!("raw-player-props", 2, raw::player_props),
    def!("raw-game-lines", 2, raw::game_lines),
    def!("player-game-summary", 3, analytics::player_game_summary),
    def!(
        "team-offense-game-summary",
        3,
        analytics::team_offense_game_summary
    ),
    def!(
        "team-defense-game-summary",
        3,
        analytics::team_defense_game_summary
    ),
    def!(
        "upcoming-player-game-context",
        3,
        analytics::upcoming_player_game_context
    ),
    def!(
        "upcoming-team-game-context",
        3,
        analytics::upcoming_team_game_context
    ),
    def!(
        "team-defense-zone-analysis",
        4,
        precompute::team_defense_zone_analysis
    ),
    def!(
        "player-shot-zone-analysis",
        4,
        precompute::player_shot_zone_analysis
    ),
    def!("player-daily-cache", 4, precompute::player_daily_cache),
    def!(
        "player-composite-factors",
        4,
        precompute::player_composite_factors
    ),
    def!("ml-feature-store", 4, precompute::ml_feature_store),
    def!("train-points-model", 5, predict::train::train_points_model),
    def!(
        "player-prop-predictions",
        5,
        predict::player_prop_predictions
    ),
    def!("grade-predictions", 6, publish::grade_predictions),
    def!("export-predictions", 6, publish::export_predictions),
    def!("export-live", 6, publish::export_live),
];

/// Registered processors the production catalog does not list: `export-live` follows the
/// evening's games for hours, which no phase of a date's PipelineRun waits for
/// (docs/processors.md); it is run on its own (`tipoff-processor run export-live`).
pub const NOT_IN_CATALOG: &[&str] = &["export-live"];

/// The processor named `name`, if this binary runs it.
pub fn find(name: &str) -> Option<&'static ProcessorDef> {
    PROCESSORS.iter().find(|p| p.name == name)
}

/// The processors of one phase, in catalog order.
pub fn phase(number: u8) -> impl Iterator<Item = &'static ProcessorDef> {
    PROCESSORS.iter().filter(move |p| p.phase == number)
}

/// The names of the processors of one phase.
pub fn names_in_phase(number: u8) -> Vec<&'static str> {
    phase(number).map(|p| p.name).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_phases_ascend() {
        let mut names: Vec<&str> = PROCESSORS.iter().map(|p| p.name).collect();
        let phases: Vec<u8> = PROCESSORS.iter().map(|p| p.phase).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a processor is registered twice");
    }

    /// The catalog may only name registered processors, and every registered processor is in
    /// the production catalog under the same phase (nothing is registered but never run),
    /// except the few [`NOT_IN_CATALOG`] names on purpose.
    #[test]
    fn every_catalog_processor_is_registered_in_its_phase() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/pipeline.yaml");
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut in_catalog = Vec::new();
        for phase in doc["phases"].as_sequence().unwrap() {
            let number = u8::try_from(phase["number"].as_u64().unwrap()).unwrap();
            for p in phase["processors"].as_sequence().unwrap() {
                let name = p["name"].as_str().unwrap();
                let def = find(name)
                    .unwrap_or_else(|| panic!("catalog processor {name} is not registered"));
                assert_eq!(def.phase, number, "{name}: registered in another phase");
                in_catalog.push(name.to_owned());
            }
        }
        let registered: Vec<String> = PROCESSORS
            .iter()
            .filter(|p| !NOT_IN_CATALOG.contains(&p.name))
            .map(|p| p.name.to_owned())
            .collect();
        for name in NOT_IN_CATALOG {
            assert!(find(name).is_some(), "{name} is not registered");
            assert!(
                !in_catalog.iter().any(|n| n == name),
                "{name} is in the catalog"
            );
        }
        assert_eq!(
            in_catalog, registered,
            "the registry and the catalog differ"
        );
    }
}
