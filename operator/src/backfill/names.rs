//! Names and label values of a backfill's runs.
//!
//! A backfill's run for a date is `<backfill>-<YYYY-MM-DD>`: deterministic, so applying it
//! twice is one run, and distinct from every other run of the date (the nightly
//! `nba-<date>`, another backfill's), so reprocessing a date never touches the run it
//! replaces. The name is [`tipoff_crds::children::dated_run_name`], the one a PipelineSchedule's
//! runs use too: a backfill name too long for it keeps its first characters and gains a hash of
//! the whole name, so the result is a DNS label of at most 63 characters that still shows the
//! backfill and ends with the date.

use tipoff_crds::children as naming;

/// The name of `backfill`'s run for `date`.
pub fn run_name(backfill: &str, date: &str) -> String {
    naming::dated_run_name(backfill, date, "")
}

/// The value of the backfill label on its runs: the name itself when it is a valid label
/// value, else a stable shortened form.
pub fn backfill_label(backfill: &str) -> String {
    naming::owner_label(backfill)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_read_as_backfill_and_date() {
        assert_eq!(
            run_name("season-2025", "2026-01-29"),
            "season-2025-2026-01-29"
        );
        assert_eq!(backfill_label("season-2025"), "season-2025");
    }

    #[test]
    fn long_or_dotted_names_stay_unique_labels_ending_with_the_date() {
        let long = "a-backfill-of-the-whole-2025-26-season-requested-by-the-data-team";
        let name = run_name(long, "2026-01-29");
        assert!(naming::is_dns_label(&name), "{name}");
        assert!(name.ends_with("-2026-01-29"), "{name}");
        assert!(name.starts_with("a-backfill-of"), "{name}");
        assert_eq!(name, run_name(long, "2026-01-29"));
        assert_ne!(
            run_name(&format!("{long}x"), "2026-01-29"),
            name,
            "a different backfill"
        );
        let dotted = run_name("bf.1", "2026-01-29");
        assert!(naming::is_dns_label(&dotted), "{dotted}");
        assert_ne!(dotted, run_name("bf-1", "2026-01-29"));
        assert!(naming::is_dns_label(&backfill_label(long)));
    }
}
