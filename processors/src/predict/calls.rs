//! The call a prediction makes against the books' lines: OVER, UNDER or PASS, the line and
//! prices it is made at, and the calibrated probability that it is right.
//!
//! The books post independent lines (dev/season sets each from its own noisy estimate, as real
//! books do), so the call shops for the line: OVER is judged at the lowest line offered, UNDER
//! at the highest, each at the best price among the books posting that line. A side is called
//! when the system's calibrated probability that it is right reaches [`MIN_CONFIDENCE`] (the
//! likelier side when both do); otherwise PASS, reported against the consensus line
//! (`docs/model.md`, "Calls and the edge threshold").

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::analytics::summary::consensus;
use crate::model::Dispersion;

/// The least calibrated probability of being right that makes a call: above the 52.4 %
/// break-even at -110, with a margin for the calibration's own error.
pub const MIN_CONFIDENCE: f64 = 0.54;

/// One book's points line for a player, as of the prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The bookmaker.
    pub bookmaker: String,
    /// The line.
    pub line: f64,
    /// American odds of OVER.
    pub over_price: i64,
    /// American odds of UNDER.
    pub under_price: i64,
    /// When the book last updated it.
    pub snapshot: Timestamp,
}

/// OVER, UNDER or PASS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recommendation {
    /// More points than the line.
    Over,
    /// Fewer points than the line.
    Under,
    /// No call: no line, or an edge below the threshold.
    Pass,
}

impl Recommendation {
    /// The column's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::Over => "OVER",
            Recommendation::Under => "UNDER",
            Recommendation::Pass => "PASS",
        }
    }
}

/// The call for one prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// What to do.
    pub recommendation: Recommendation,
    /// The line the call is made against (the consensus for PASS); `None` without lines.
    pub line: Option<f64>,
    /// The books posting that line, comma-separated.
    pub bookmakers: Option<String>,
    /// When the line used was last updated.
    pub snapshot: Option<Timestamp>,
    /// OVER's price at the line used.
    pub over_price: Option<i64>,
    /// UNDER's price at the line used.
    pub under_price: Option<i64>,
    /// Prediction minus line.
    pub margin: Option<f64>,
    /// Probability that the call is right (PASS: that the likelier side is; 0.5 without a
    /// line).
    pub confidence: f64,
}

/// The latest quote of each book at or before `as_of` (the as-of rule: nothing posted after
/// the prediction's instant is used). Quotes of one player in, one per book out, by book.
pub fn latest_per_book(quotes: &[Quote], as_of: Timestamp) -> Vec<Quote> {
    let mut by_book: BTreeMap<&str, &Quote> = BTreeMap::new();
    for q in quotes.iter().filter(|q| q.snapshot <= as_of) {
        let newer = by_book
            .get(q.bookmaker.as_str())
            .is_none_or(|b| (q.snapshot, q.line) > (b.snapshot, b.line));
        if newer {
            by_book.insert(&q.bookmaker, q);
        }
    }
    by_book.into_values().cloned().collect()
}

/// The consensus line (median of the books').
pub fn consensus_line(quotes: &[Quote]) -> Option<f64> {
    consensus(quotes.iter().map(|q| q.line).collect())
}

/// The books posting `line`, the best price of `side` among them, and the latest snapshot.
fn at_line(quotes: &[Quote], line: f64, over: bool) -> (String, i64, i64, Option<Timestamp>) {
    let at: Vec<&Quote> = quotes.iter().filter(|q| q.line == line).collect();
    let books: Vec<&str> = at.iter().map(|q| q.bookmaker.as_str()).collect();
    // The best price for the side called; ties by bookmaker name (the quotes are by book).
    let best = at
        .iter()
        .max_by_key(|q| if over { q.over_price } else { q.under_price })
        .copied();
    (
        books.join(","),
        best.map_or(-110, |q| q.over_price),
        best.map_or(-110, |q| q.under_price),
        at.iter().map(|q| q.snapshot).max(),
    )
}

/// The call for a prediction of `predicted` points given the books' quotes (one per book).
pub fn call(
    predicted: f64,
    quotes: &[Quote],
    dispersion: &Dispersion,
    min_confidence: f64,
) -> Call {
    let lines = || quotes.iter().map(|q| q.line);
    let (Some(lowest), Some(highest), Some(consensus)) = (
        lines().min_by(f64::total_cmp),
        lines().max_by(f64::total_cmp),
        consensus_line(quotes),
    ) else {
        return Call {
            recommendation: Recommendation::Pass,
            line: None,
            bookmakers: None,
            snapshot: None,
            over_price: None,
            under_price: None,
            margin: None,
            confidence: 0.5,
        };
    };
    let over = dispersion.p_over(predicted, lowest);
    let under = 1.0 - dispersion.p_over(predicted, highest);
    let (recommendation, line) = if over >= min_confidence && over >= under {
        (Recommendation::Over, lowest)
    } else if under >= min_confidence {
        (Recommendation::Under, highest)
    } else {
        (Recommendation::Pass, consensus)
    };
    let p_over = dispersion.p_over(predicted, line);
    let confidence = match recommendation {
        Recommendation::Over => p_over,
        Recommendation::Under => 1.0 - p_over,
        Recommendation::Pass => p_over.max(1.0 - p_over),
    };
    let (bookmakers, over_price, under_price, snapshot) = if recommendation == Recommendation::Pass
    {
        let mut books: Vec<&str> = quotes.iter().map(|q| q.bookmaker.as_str()).collect();
        books.sort_unstable();
        books.dedup();
        (
            books.join(","),
            None,
            None,
            quotes.iter().map(|q| q.snapshot).max(),
        )
    } else {
        let (books, over, under, snapshot) =
            at_line(quotes, line, recommendation == Recommendation::Over);
        (books, Some(over), Some(under), snapshot)
    };
    Call {
        recommendation,
        line: Some(line),
        bookmakers: Some(bookmakers),
        snapshot,
        over_price,
        under_price,
        margin: Some(predicted - line),
        confidence,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn q(book: &str, line: f64, over: i64, under: i64, minute: i64) -> Quote {
        Quote {
            bookmaker: book.into(),
            line,
            over_price: over,
            under_price: under,
            snapshot: Timestamp::from_second(1_768_000_000 + minute * 60).unwrap(),
        }
    }

    #[test]
    fn over_is_called_at_the_lowest_line_and_under_at_the_highest() {
        let d = Dispersion::default();
        let quotes = [
            q("draftkings", 14.5, -115, -105, 0),
            q("fanduel", 16.5, -110, -110, 0),
        ];
        let over = call(17.0, &quotes, &d, MIN_CONFIDENCE);
        assert_eq!(over.recommendation, Recommendation::Over);
        assert_eq!(over.line, Some(14.5));
        assert_eq!(over.bookmakers.as_deref(), Some("draftkings"));
        assert_eq!(
            (over.over_price, over.under_price),
            (Some(-115), Some(-105))
        );
        assert!(over.confidence > 0.5 && over.confidence < 1.0, "{over:?}");
        assert_eq!(over.margin, Some(2.5));
        let under = call(14.0, &quotes, &d, MIN_CONFIDENCE);
        assert_eq!(under.recommendation, Recommendation::Under);
        assert_eq!(under.line, Some(16.5));
        assert!((under.confidence - (1.0 - d.p_over(14.0, 16.5))).abs() < 1e-12);
    }

    #[test]
    fn a_small_edge_passes_against_the_consensus_and_no_line_passes_at_even() {
        let d = Dispersion::default();
        let quotes = [
            q("fanduel", 15.5, -110, -110, 0),
            q("draftkings", 15.5, -120, 100, 0),
        ];
        let pass = call(16.0, &quotes, &d, MIN_CONFIDENCE);
        assert_eq!(pass.recommendation, Recommendation::Pass);
        assert_eq!(pass.line, Some(15.5));
        assert_eq!(pass.bookmakers.as_deref(), Some("draftkings,fanduel"));
        assert_eq!(pass.over_price, None);
        assert!(pass.confidence >= 0.5);
        let none = call(16.0, &[], &d, MIN_CONFIDENCE);
        assert_eq!(
            (none.recommendation, none.line),
            (Recommendation::Pass, None)
        );
        assert_eq!(none.confidence, 0.5);
    }

    #[test]
    fn the_best_price_among_books_at_the_line_is_taken() {
        let d = Dispersion::default();
        let quotes = [q("a", 12.5, -120, 100, 0), q("b", 12.5, -105, -115, 5)];
        let over = call(15.0, &quotes, &d, MIN_CONFIDENCE);
        assert_eq!(over.bookmakers.as_deref(), Some("a,b"));
        assert_eq!(over.over_price, Some(-105));
        assert_eq!(
            over.snapshot,
            Some(Timestamp::from_second(1_768_000_000 + 300).unwrap())
        );
    }

    #[test]
    fn only_quotes_posted_by_the_instant_count_and_the_latest_per_book_wins() {
        let quotes = [
            q("a", 12.5, -110, -110, 0),
            q("a", 13.5, -110, -110, 30),
            q("a", 20.5, -110, -110, 90),
            q("b", 14.5, -110, -110, 10),
        ];
        let as_of = Timestamp::from_second(1_768_000_000 + 60 * 60).unwrap();
        let latest = latest_per_book(&quotes, as_of);
        let lines: Vec<(&str, f64)> = latest
            .iter()
            .map(|q| (q.bookmaker.as_str(), q.line))
            .collect();
        assert_eq!(lines, [("a", 13.5), ("b", 14.5)]);
        assert_eq!(consensus_line(&latest), Some(14.0));
    }
}
