//! The game-day list a schedule reads (and `tipoff dashboard` shows): a ConfigMap key holding
//! one `YYYY-MM-DD` per line, in a ConfigMap labelled [`LABEL_GAME_DAYS`].
//!
//! ```text
//! # 2025-26 regular season, from the league schedule (scraped by phase 1)
//! through: 2026-04-12
//! 2025-10-21
//! 2025-10-22
//! ```
//!
//! Blank lines and `#` comments are ignored; `through:` says how far the list is complete
//! (default: its last date). Parsing is pure; the controller fetches the ConfigMap.

use std::collections::BTreeSet;

use jiff::civil::Date;

pub use crate::pipeline_schedule::LABEL_GAME_DAYS;

/// The game days of a schedule, as the cluster lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GameDays {
    /// The list: every game date, and the last date it covers.
    Listed {
        /// The game dates.
        dates: BTreeSet<Date>,
        /// The last date the list covers: a later date is unknown, not a day without games.
        through: Date,
    },
    /// No list to read: the ConfigMap or key is missing, or a line is not a date.
    Unavailable {
        /// A fixed CamelCase reason (`GameDaysMissing`, `GameDaysInvalid`).
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Parses the text of a game-day list; `source` names it in messages (`configmap/key`).
pub fn parse(text: &str, source: &str) -> GameDays {
    let mut dates = BTreeSet::new();
    let mut through = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (value, is_through) = match line.strip_prefix("through:") {
            Some(rest) => (rest.trim(), true),
            None => (line, false),
        };
        let Ok(date) = value.parse::<Date>() else {
            return GameDays::Unavailable {
                reason: "GameDaysInvalid",
                message: format!(
                    "{source} line {}: {line:?} is not a date written YYYY-MM-DD (or `through: YYYY-MM-DD`); fix the list",
                    n + 1
                ),
            };
        };
        if is_through {
            through = Some(date);
        } else {
            dates.insert(date);
        }
    }
    let Some(through) = through.or_else(|| dates.last().copied()) else {
        return GameDays::Unavailable {
            reason: "GameDaysInvalid",
            message: format!(
                "{source} lists no game date; list the season's game dates, one YYYY-MM-DD per line"
            ),
        };
    };
    GameDays::Listed { dates, through }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn dates_comments_and_through_are_read() {
        let text = "# season\nthrough: 2026-02-05\n\n2026-01-29\n2026-01-31 # two games\n";
        assert_eq!(
            parse(text, "cm/dates"),
            GameDays::Listed {
                dates: BTreeSet::from([date(2026, 1, 29), date(2026, 1, 31)]),
                through: date(2026, 2, 5),
            }
        );
    }

    #[test]
    fn without_through_the_list_covers_up_to_its_last_date() {
        let GameDays::Listed { through, .. } = parse("2026-01-31\n2026-01-29\n", "cm/dates") else {
            panic!("listed");
        };
        assert_eq!(through, date(2026, 1, 31));
    }

    #[test]
    fn a_bad_line_or_an_empty_list_is_unavailable_with_the_line_named() {
        let GameDays::Unavailable { reason, message } =
            parse("2026-01-29\n2026-02-30\n", "cm/dates")
        else {
            panic!("unavailable");
        };
        assert_eq!(reason, "GameDaysInvalid");
        assert!(message.contains("cm/dates line 2"), "{message}");
        assert!(matches!(
            parse("# nothing\n", "cm/dates"),
            GameDays::Unavailable { .. }
        ));
    }
}
