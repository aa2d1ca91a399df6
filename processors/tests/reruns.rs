//! Re-runs never make a date's data worse: a smaller payload does not replace a stored one,
//! and a valid re-scrape supersedes the quarantine entry of the payload it replaces.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use serde_json::json;
use support::*;
use tipoff_crds::Mode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_payload_is_kept_beside_the_stored_one_not_over_it() {
    let date = busy_date();
    let s = season();
    let games = &s.by_date[&date];
    let first_end = games.iter().map(|&g| s.games[g].end).min().unwrap();
    // One minute after the first game of the date ended: box scores for some games only.
    let partial_clock = first_end
        .checked_add(jiff::SignedDuration::from_mins(1))
        .unwrap();
    let w = World::start(partial_clock).await;
    let raw = format!("raw/boxscores/{date}/box_scores.json");
    let held = format!("held/boxscores/{date}/box_scores.json");
    w.ok("scrape-schedule", date, Mode::Production).await;

    // Nothing stored yet: the partial answer is stored.
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    assert!(check(&r, "payloads-not-smaller").passed);
    let partial = w.objects().await[&raw].clone();

    // The next day: a complete answer replaces it.
    w.set_clock(next_day(date)).await;
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    assert!(check(&r, "payloads-not-smaller").passed);
    let full = w.objects().await[&raw].clone();
    assert!(full.len() > partial.len());

    // A re-run that gets a partial answer again (an upstream that lost games): held, not stored.
    w.set_clock(partial_clock).await;
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    let c = check(&r, "payloads-not-smaller");
    assert!(!c.passed);
    assert_eq!((c.observed, c.expected), (Some(1), Some(0)));
    assert!(
        c.missing[0].starts_with("box_scores.json (") && c.missing[0].contains("< stored"),
        "{:?}",
        c.missing
    );
    assert_eq!(check(&r, "files-written").observed, Some(0));
    let objects = w.objects().await;
    assert_eq!(objects[&raw], full, "the stored payload was replaced");
    assert_eq!(objects[&held], partial);

    // A truncated answer (status 200, half the bytes) does not replace it either.
    w.set_clock(next_day(date)).await;
    w.set_faults(json!({ "boxscores": { "truncated_first": 1 } }))
        .await;
    let r = w.ok("scrape-boxscores", date, Mode::Production).await;
    assert!(!check(&r, "payloads-not-smaller").passed);
    let objects = w.objects().await;
    assert_eq!(objects[&raw], full);
    assert_ne!(objects[&held], partial);

    // Phase 2 loads the complete payload: every game is covered.
    w.ok("raw-schedule", date, Mode::Production).await;
    let r = w.ok("raw-boxscores", date, Mode::Production).await;
    assert!(check(&r, "boxscore-coverage").passed);
    assert!(check(&r, "payloads-valid").passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_rescrape_supersedes_its_quarantine_entry_which_is_kept_for_audit() {
    let date = busy_date();
    let w = World::start(next_day(date)).await;
    w.set_faults(json!({ "pbp": { "malformed_first": 1 } }))
        .await;
    w.ok("scrape-schedule", date, Mode::Production).await;
    w.ok("scrape-play-by-play", date, Mode::Production).await;
    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    let c = check(&r, "payloads-valid");
    assert!(!c.passed);
    let bad = c.missing[0].clone();
    let quarantined = format!("quarantine/play-by-play/{date}/{bad}");
    assert!(w.objects().await.contains_key(&quarantined));

    // The upstream recovers; a re-scrape stores a valid payload under the same key.
    w.set_faults(json!({})).await;
    w.ok("scrape-play-by-play", date, Mode::Production).await;
    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    let c = check(&r, "payloads-valid");
    assert!(c.passed, "{c:?}");
    assert_eq!(c.observed, c.expected);
    assert!(check(&r, "pbp-coverage").passed);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains(&quarantined) && w.contains("superseded")),
        "{:?}",
        r.warnings
    );

    // Kept for audit, out of the way of the check.
    let objects = w.objects().await;
    assert!(!objects.contains_key(&quarantined));
    assert!(!objects.contains_key(&format!("{quarantined}.reason.txt")));
    let kept = format!("quarantine/superseded/play-by-play/{date}/{bad}");
    assert!(String::from_utf8_lossy(&objects[&kept]).contains("<html>"));
    let reason = String::from_utf8(objects[&format!("{kept}.reason.txt")].clone()).unwrap();
    assert!(
        reason.contains("reason: not the expected JSON shape"),
        "{reason}"
    );
    assert!(
        reason.contains(&format!("superseded_by: raw/play-by-play/{date}/{bad}")),
        "{reason}"
    );

    // And it stays resolved.
    let r = w.ok("raw-play-by-play", date, Mode::Production).await;
    assert!(check(&r, "payloads-valid").passed);
}
