//! The league: the 30 real NBA teams (public facts) with latent team strengths, and synthetic
//! players with latent per-minute rates.

use serde::Serialize;

use crate::rng::Rng;

/// Shot zones, as NBA.com's shot charts name them.
pub const ZONES: [&str; 5] = [
    "restricted_area",
    "paint",
    "mid_range",
    "corner_three",
    "above_break_three",
];

/// Points a made shot from each zone is worth.
pub const ZONE_POINTS: [u32; 5] = [2, 2, 2, 3, 3];

/// Typical shot distance (feet) per zone.
pub const ZONE_DISTANCE: [(f64, f64); 5] = [
    (0.0, 4.0),
    (4.0, 14.0),
    (14.0, 22.0),
    (22.0, 23.0),
    (23.7, 30.0),
];

/// One team (real identity, synthetic strengths).
#[derive(Debug, Clone, Serialize)]
pub struct Team {
    /// NBA.com team id.
    pub team_id: u64,
    /// balldontlie team id (1..=30, alphabetical).
    pub bdl_id: u32,
    /// Tricode, e.g. `LAL`.
    pub abbr: &'static str,
    /// City.
    pub city: &'static str,
    /// Nickname.
    pub name: &'static str,
    /// `East` or `West`.
    pub conference: &'static str,
    /// Division.
    pub division: &'static str,
    /// Home arena.
    pub arena: &'static str,
    /// Pace multiplier on shot volume for both teams in its games (league mean 1.0).
    pub pace: f64,
    /// Multiplier on opponents' make probability per zone (below 1.0 is good defence).
    pub defence: [f64; 5],
    /// Home-court multiplier on its players' scoring at home.
    pub home_edge: f64,
}

impl Team {
    /// `City Name`.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.city, self.name)
    }
}

type TeamFacts = (
    u64,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// (NBA.com id, tricode, city, nickname, conference, division, arena), alphabetical by city.
const TEAMS: [TeamFacts; 30] = [
    (
        1610612737,
        "ATL",
        "Atlanta",
        "Hawks",
        "East",
        "Southeast",
        "State Farm Arena",
    ),
    (
        1610612738,
        "BOS",
        "Boston",
        "Celtics",
        "East",
        "Atlantic",
        "TD Garden",
    ),
    (
        1610612751,
        "BKN",
        "Brooklyn",
        "Nets",
        "East",
        "Atlantic",
        "Barclays Center",
    ),
    (
        1610612766,
        "CHA",
        "Charlotte",
        "Hornets",
        "East",
        "Southeast",
        "Spectrum Center",
    ),
    (
        1610612741,
        "CHI",
        "Chicago",
        "Bulls",
        "East",
        "Central",
        "United Center",
    ),
    (
        1610612739,
        "CLE",
        "Cleveland",
        "Cavaliers",
        "East",
        "Central",
        "Rocket Arena",
    ),
    (
        1610612742,
        "DAL",
        "Dallas",
        "Mavericks",
        "West",
        "Southwest",
        "American Airlines Center",
    ),
    (
        1610612743,
        "DEN",
        "Denver",
        "Nuggets",
        "West",
        "Northwest",
        "Ball Arena",
    ),
    (
        1610612765,
        "DET",
        "Detroit",
        "Pistons",
        "East",
        "Central",
        "Little Caesars Arena",
    ),
    (
        1610612744,
        "GSW",
        "Golden State",
        "Warriors",
        "West",
        "Pacific",
        "Chase Center",
    ),
    (
        1610612745,
        "HOU",
        "Houston",
        "Rockets",
        "West",
        "Southwest",
        "Toyota Center",
    ),
    (
        1610612754,
        "IND",
        "Indiana",
        "Pacers",
        "East",
        "Central",
        "Gainbridge Fieldhouse",
    ),
    (
        1610612746,
        "LAC",
        "LA",
        "Clippers",
        "West",
        "Pacific",
        "Intuit Dome",
    ),
    (
        1610612747,
        "LAL",
        "Los Angeles",
        "Lakers",
        "West",
        "Pacific",
        "Crypto.com Arena",
    ),
    (
        1610612763,
        "MEM",
        "Memphis",
        "Grizzlies",
        "West",
        "Southwest",
        "FedExForum",
    ),
    (
        1610612748,
        "MIA",
        "Miami",
        "Heat",
        "East",
        "Southeast",
        "Kaseya Center",
    ),
    (
        1610612749,
        "MIL",
        "Milwaukee",
        "Bucks",
        "East",
        "Central",
        "Fiserv Forum",
    ),
    (
        1610612750,
        "MIN",
        "Minnesota",
        "Timberwolves",
        "West",
        "Northwest",
        "Target Center",
    ),
    (
        1610612740,
        "NOP",
        "New Orleans",
        "Pelicans",
        "West",
        "Southwest",
        "Smoothie King Center",
    ),
    (
        1610612752,
        "NYK",
        "New York",
        "Knicks",
        "East",
        "Atlantic",
        "Madison Square Garden",
    ),
    (
        1610612760,
        "OKC",
        "Oklahoma City",
        "Thunder",
        "West",
        "Northwest",
        "Paycom Center",
    ),
    (
        1610612753,
        "ORL",
        "Orlando",
        "Magic",
        "East",
        "Southeast",
        "Kia Center",
    ),
    (
        1610612755,
        "PHI",
        "Philadelphia",
        "76ers",
        "East",
        "Atlantic",
        "Xfinity Mobile Arena",
    ),
    (
        1610612756,
        "PHX",
        "Phoenix",
        "Suns",
        "West",
        "Pacific",
        "PHX Arena",
    ),
    (
        1610612757,
        "POR",
        "Portland",
        "Trail Blazers",
        "West",
        "Northwest",
        "Moda Center",
    ),
    (
        1610612758,
        "SAC",
        "Sacramento",
        "Kings",
        "West",
        "Pacific",
        "Golden 1 Center",
    ),
    (
        1610612759,
        "SAS",
        "San Antonio",
        "Spurs",
        "West",
        "Southwest",
        "Frost Bank Center",
    ),
    (
        1610612761,
        "TOR",
        "Toronto",
        "Raptors",
        "East",
        "Atlantic",
        "Scotiabank Arena",
    ),
    (
        1610612762,
        "UTA",
        "Utah",
        "Jazz",
        "West",
        "Northwest",
        "Delta Center",
    ),
    (
        1610612764,
        "WAS",
        "Washington",
        "Wizards",
        "East",
        "Southeast",
        "Capital One Arena",
    ),
];

/// A synthetic player and his latent (true, unobserved) parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Player {
    /// NBA.com-style person id.
    pub player_id: u64,
    /// balldontlie-style player id.
    pub bdl_id: u64,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Index of his team in [`League::teams`].
    pub team: usize,
    /// G, F or C.
    pub position: &'static str,
    /// Mean minutes when healthy and the whole roster is available.
    pub minutes_mean: f64,
    /// Field-goal attempts per minute.
    pub fga_per_min: f64,
    /// Share of his attempts from each zone (sums to 1).
    pub zone_mix: [f64; 5],
    /// Make probability per zone against an average defence.
    pub zone_pct: [f64; 5],
    /// Free-throw attempts per minute.
    pub fta_per_min: f64,
    /// Free-throw percentage.
    pub ft_pct: f64,
    /// Rebounds per minute.
    pub reb_per_min: f64,
    /// Assists per minute.
    pub ast_per_min: f64,
    /// Share of team attempts while on court (usage proxy).
    pub usage: f64,
    /// Probability of picking up an injury in any given game.
    pub injury_proneness: f64,
    /// Expected points per minute against an average defence (derived from the above).
    pub points_per_min: f64,
}

impl Player {
    /// `First Last`.
    pub fn name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// Normalised key the pipeline joins on: lowercase ASCII letters only.
    pub fn lookup(&self) -> String {
        self.name()
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    }

    /// Expected points per field-goal attempt against a defence with zone factors `defence`.
    pub fn points_per_fga(&self, defence: &[f64; 5]) -> f64 {
        (0..5)
            .map(|z| {
                self.zone_mix[z]
                    * (self.zone_pct[z] * defence[z]).min(0.95)
                    * f64::from(ZONE_POINTS[z])
            })
            .sum()
    }
}

/// Teams and rosters.
#[derive(Debug, Clone, Serialize)]
pub struct League {
    /// The 30 teams, alphabetical by city.
    pub teams: Vec<Team>,
    /// All players; `Player::team` indexes `teams`.
    pub players: Vec<Player>,
}

const FIRST: [&str; 40] = [
    "Marcus", "Jalen", "Tyrese", "Devin", "Andre", "Malik", "Jaylen", "Darius", "Isaiah", "Cole",
    "Luka", "Nikola", "Evan", "Miles", "Trey", "Keegan", "Aaron", "Brandon", "Cam", "Dillon",
    "Elijah", "Franz", "Gabe", "Herb", "Ivica", "Jonas", "Kris", "Lonnie", "Mikal", "Nate", "Obi",
    "Paolo", "Quentin", "Rui", "Scottie", "Tari", "Usman", "Victor", "Walker", "Zion",
];
const LAST: [&str; 40] = [
    "Anderson",
    "Brooks",
    "Carter",
    "Dawson",
    "Ellis",
    "Fisher",
    "Grant",
    "Hayes",
    "Irving",
    "Jackson",
    "Kelley",
    "Lindqvist",
    "Morrow",
    "Novak",
    "Okafor",
    "Porter",
    "Quarles",
    "Reyes",
    "Sanders",
    "Thompson",
    "Uzoma",
    "Vidal",
    "Whitfield",
    "Xavier",
    "Young",
    "Zeller",
    "Bogdan",
    "Castillo",
    "Dupont",
    "Edwards",
    "Ferreira",
    "Gallo",
    "Horvat",
    "Ibaka",
    "Jovic",
    "Kruger",
    "Lopez",
    "Mensah",
    "Nwosu",
    "Oyelaran",
];

impl League {
    /// Generates the league for `seed`.
    pub fn generate(seed: u64) -> Self {
        let mut teams = Vec::with_capacity(30);
        for (i, (team_id, abbr, city, name, conference, division, arena)) in
            TEAMS.iter().enumerate()
        {
            let mut r = Rng::derive(seed, &format!("team/{abbr}"));
            let overall = r.normal(1.0, 0.03);
            let defence = [0; 5].map(|_| (overall * r.normal(1.0, 0.03)).clamp(0.88, 1.12));
            teams.push(Team {
                team_id: *team_id,
                bdl_id: i as u32 + 1,
                abbr,
                city,
                name,
                conference,
                division,
                arena,
                pace: r.normal(1.0, 0.03).clamp(0.92, 1.08),
                defence,
                home_edge: r.normal(1.025, 0.01).clamp(1.0, 1.05),
            });
        }
        let mut players = Vec::new();
        let mut used_names = std::collections::BTreeSet::new();
        for (t, team) in teams.iter().enumerate() {
            let mut r = Rng::derive(seed, &format!("players/{}", team.abbr));
            let roster = 14 + r.below(3); // 14..=16
            for slot in 0..roster {
                let (first_name, last_name) = loop {
                    let f = FIRST[r.below(FIRST.len())];
                    let l = LAST[r.below(LAST.len())];
                    if used_names.insert((f, l)) {
                        break (f.to_owned(), l.to_owned());
                    }
                };
                // Starters (slots 0-4) play ~30-37 minutes, the bench less, the end of the
                // bench barely.
                let minutes_mean = match slot {
                    0..=4 => r.normal(33.0, 2.5),
                    5..=8 => r.normal(21.0, 3.5),
                    9..=10 => r.normal(11.0, 3.0),
                    _ => r.normal(4.0, 2.0),
                }
                .clamp(1.0, 38.0);
                let star = if slot < 2 { r.range(1.1, 1.5) } else { 1.0 };
                let position = ["G", "G", "F", "F", "C"][slot % 5];
                let big = position == "C";
                let mut zone_mix = if big {
                    [0.45, 0.25, 0.12, 0.06, 0.12]
                } else {
                    [0.22, 0.15, 0.15, 0.12, 0.36]
                };
                for z in &mut zone_mix {
                    *z *= r.range(0.6, 1.4);
                }
                let total: f64 = zone_mix.iter().sum();
                zone_mix.iter_mut().for_each(|z| *z /= total);
                let zone_pct = [
                    r.normal(0.64, 0.05).clamp(0.5, 0.78),
                    r.normal(0.44, 0.05).clamp(0.3, 0.58),
                    r.normal(0.42, 0.04).clamp(0.3, 0.54),
                    r.normal(0.39, 0.04).clamp(0.28, 0.48),
                    r.normal(0.36, 0.035).clamp(0.26, 0.44),
                ];
                let fga_per_min = (r.normal(0.36, 0.06) * star).clamp(0.18, 0.75);
                let fta_per_min = (r.normal(0.09, 0.03) * star).clamp(0.02, 0.3);
                let ft_pct = r.normal(0.77, 0.07).clamp(0.5, 0.93);
                let mut p = Player {
                    player_id: 1_630_000 + (t * 100 + slot) as u64,
                    bdl_id: 100_000 + (t * 100 + slot) as u64,
                    first_name,
                    last_name,
                    team: t,
                    position,
                    minutes_mean,
                    fga_per_min,
                    zone_mix,
                    zone_pct,
                    fta_per_min,
                    ft_pct,
                    reb_per_min: if big {
                        r.normal(0.3, 0.05)
                    } else {
                        r.normal(0.15, 0.04)
                    }
                    .clamp(0.05, 0.45),
                    ast_per_min: if position == "G" {
                        r.normal(0.17, 0.05)
                    } else {
                        r.normal(0.08, 0.03)
                    }
                    .clamp(0.01, 0.35),
                    usage: 0.0,
                    injury_proneness: r.range(0.003, 0.03),
                    points_per_min: 0.0,
                };
                p.usage = (p.fga_per_min + 0.44 * p.fta_per_min) / 2.1;
                p.points_per_min =
                    p.fga_per_min * p.points_per_fga(&[1.0; 5]) + p.fta_per_min * p.ft_pct;
                players.push(p);
            }
        }
        Self { teams, players }
    }

    /// Indices of a team's players.
    pub fn roster(&self, team: usize) -> impl Iterator<Item = usize> + '_ {
        self.players
            .iter()
            .enumerate()
            .filter(move |(_, p)| p.team == team)
            .map(|(i, _)| i)
    }

    /// Team index by tricode.
    pub fn team_index(&self, abbr: &str) -> Option<usize> {
        self.teams.iter().position(|t| t.abbr == abbr)
    }
}
