//! The ML feature store's feature list: fixed, ordered and versioned. `docs/features.md`
//! defines each feature (formula, source table, default); a test keeps the two in step.
//! Changing the list, a formula or a default changes [`FEATURE_VERSION`].

/// The version written to `feature_version`.
pub const FEATURE_VERSION: &str = "v2.2";

/// One feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureDef {
    /// Its key in `features_json`.
    pub name: &'static str,
    /// The table it comes from.
    pub source: &'static str,
    /// The value used when the source has no value for the player (the row's
    /// `feature_quality_score` then counts it as a default).
    pub default: f64,
}

const CACHE: &str = "nba_precompute.player_daily_cache";
const PLAYER_CONTEXT: &str = "nba_analytics.upcoming_player_game_context";
const TEAM_CONTEXT: &str = "nba_analytics.upcoming_team_game_context";
const COMPOSITE: &str = "nba_precompute.player_composite_factors";
const PLAYER_ZONES: &str = "nba_precompute.player_shot_zone_analysis";
const TEAM_ZONES: &str = "nba_precompute.team_defense_zone_analysis";
const SUMMARIES: &str = "nba_analytics.player_game_summary";

const fn f(name: &'static str, source: &'static str, default: f64) -> FeatureDef {
    FeatureDef {
        name,
        source,
        default,
    }
}

/// The features, in order.
pub const FEATURES: [FeatureDef; 28] = [
    f("points_avg_last_5", CACHE, 10.0),
    f("points_avg_last_10", CACHE, 10.0),
    f("points_avg_season", CACHE, 10.0),
    f("points_std_last_10", CACHE, 5.0),
    f("minutes_avg_last_10", CACHE, 20.0),
    f("usage_rate_last_10", CACHE, 20.0),
    f("games_played_season", CACHE, 0.0),
    f("days_rest", PLAYER_CONTEXT, 1.0),
    f("is_back_to_back", PLAYER_CONTEXT, 0.0),
    f("is_home", PLAYER_CONTEXT, 0.5),
    f("injury_questionable", PLAYER_CONTEXT, 0.0),
    f("current_points_line", PLAYER_CONTEXT, 0.0),
    f("game_spread", PLAYER_CONTEXT, 0.0),
    f("game_total", PLAYER_CONTEXT, 225.0),
    f("implied_team_points", TEAM_CONTEXT, 112.5),
    f("team_pace_last_10", TEAM_CONTEXT, 100.0),
    f("opp_defensive_rating_last_10", TEAM_CONTEXT, 112.0),
    f("fatigue_score", COMPOSITE, 0.0),
    f("shot_zone_mismatch_score", COMPOSITE, 0.0),
    f("pace_score", COMPOSITE, 0.0),
    f("usage_spike_score", COMPOSITE, 0.0),
    f("paint_rate", PLAYER_ZONES, 0.45),
    f("three_pt_rate", PLAYER_ZONES, 0.35),
    f("opp_paint_pct_allowed", TEAM_ZONES, 0.55),
    f("opp_three_pt_pct_allowed", TEAM_ZONES, 0.36),
    f("minutes_avg_season", SUMMARIES, 20.0),
    f("points_per_minute_season", SUMMARIES, 0.45),
    f("expected_minutes", SUMMARIES, 20.0),
];

/// The number of features (`feature_count`).
pub const FEATURE_COUNT: usize = FEATURES.len();

/// The source tables, in the order of their first feature.
pub fn sources() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for f in &FEATURES {
        if !out.contains(&f.source) {
            out.push(f.source);
        }
    }
    out
}

/// A player's feature vector being filled: every feature starts at its default.
#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    values: [f64; FEATURE_COUNT],
    real: [bool; FEATURE_COUNT],
}

impl Default for Vector {
    fn default() -> Self {
        Self::new()
    }
}

impl Vector {
    /// All defaults.
    pub fn new() -> Self {
        let mut values = [0.0; FEATURE_COUNT];
        for (v, f) in values.iter_mut().zip(FEATURES.iter()) {
            *v = f.default;
        }
        Self {
            values,
            real: [false; FEATURE_COUNT],
        }
    }

    /// Sets a feature from real data; `None` keeps the default. An unknown name is a bug in
    /// the caller, reported as an error rather than a silent miss.
    pub fn set(&mut self, name: &str, value: Option<f64>) -> Result<(), String> {
        let i = FEATURES
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| format!("unknown feature {name:?}"))?;
        if let Some(v) = value.filter(|v| v.is_finite()) {
            self.values[i] = v;
            self.real[i] = true;
        }
        Ok(())
    }

    /// The value of a feature.
    pub fn get(&self, name: &str) -> Option<f64> {
        FEATURES
            .iter()
            .position(|f| f.name == name)
            .map(|i| self.values[i])
    }

    /// 0-100: the share of features that came from real data.
    pub fn quality_score(&self) -> f64 {
        let real = self.real.iter().filter(|r| **r).count();
        (100.0 * real as f64 / FEATURE_COUNT as f64 * 10.0).round() / 10.0
    }

    /// The source tables that gave at least one feature.
    pub fn sources_used(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for (f, real) in FEATURES.iter().zip(self.real.iter()) {
            if *real && !out.contains(&f.source) {
                out.push(f.source);
            }
        }
        out
    }

    /// `features_json`: an object of name to value in feature order (keys sorted by
    /// serde_json's map, which is deterministic).
    pub fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> = FEATURES
            .iter()
            .zip(self.values.iter())
            .map(|(f, v)| {
                (
                    f.name.to_owned(),
                    serde_json::Number::from_f64(*v)
                        .map_or(serde_json::Value::Null, serde_json::Value::Number),
                )
            })
            .collect();
        serde_json::Value::Object(map).to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_documented() {
        let mut names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FEATURE_COUNT);
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/features.md"),
        )
        .unwrap();
        assert!(
            doc.contains(FEATURE_VERSION),
            "docs/features.md names another version"
        );
        for (i, f) in FEATURES.iter().enumerate() {
            let line = doc
                .lines()
                .find(|l| l.starts_with(&format!("| {} | `{}` |", i + 1, f.name)))
                .unwrap_or_else(|| panic!("docs/features.md has no row {} for {}", i + 1, f.name));
            assert!(line.contains(f.source), "{}: source not documented", f.name);
            let default = format!("{}", f.default);
            assert!(
                line.contains(&default),
                "{}: default {default} not documented",
                f.name
            );
        }
    }

    #[test]
    fn quality_counts_real_values_and_defaults_fill_the_rest() {
        let mut v = Vector::new();
        assert_eq!(v.quality_score(), 0.0);
        v.set("points_avg_season", Some(21.0)).unwrap();
        v.set("game_total", None).unwrap();
        v.set("game_spread", Some(f64::NAN)).unwrap();
        assert_eq!(v.get("points_avg_season"), Some(21.0));
        assert_eq!(v.get("game_total"), Some(225.0));
        // One real value of 28 features.
        assert_eq!(v.quality_score(), 3.6);
        assert_eq!(v.sources_used(), [CACHE]);
        assert!(v.set("nope", Some(1.0)).is_err());
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(json.as_object().unwrap().len(), FEATURE_COUNT);
    }
}
