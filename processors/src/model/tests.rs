use super::gbm::SplitMix;
use super::*;

fn normal(rng: &mut SplitMix) -> f64 {
    // Box-Muller.
    let u = rng.next_f64().max(1e-12);
    let v = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn idx(name: &str) -> usize {
    FEATURES.iter().position(|f| f.name == name).unwrap()
}

/// A synthetic league: each player has a scoring rate; the season average is a noisy view of
/// it, the line a less noisy one, and home games add 3 points (the planted relationship).
fn synthetic(dates: usize, players: usize, seed: u64) -> Vec<Example> {
    let mut rng = SplitMix::new(seed);
    let rates: Vec<f64> = (0..players).map(|_| 6.0 + 20.0 * rng.next_f64()).collect();
    let start = Date::constant(2025, 10, 21);
    let mut out = Vec::new();
    for d in 0..dates {
        let date = start.checked_add(jiff::Span::new().days(d as i64)).unwrap();
        for (p, rate) in rates.iter().enumerate() {
            let home = rng.next_f64() < 0.5;
            let mean = rate + if home { 3.0 } else { 0.0 };
            let mut f: Vec<f64> = FEATURES.iter().map(|f| f.default).collect();
            f[idx("points_avg_season")] = rate + 2.0 * normal(&mut rng);
            f[idx("points_avg_last_10")] = rate + 3.0 * normal(&mut rng);
            f[idx("is_home")] = f64::from(u8::from(home));
            let line = if p % 4 == 0 {
                None
            } else {
                Some((rate + normal(&mut rng)).floor() + 0.5)
            };
            f[idx("current_points_line")] = line.unwrap_or(0.0);
            out.push(Example {
                game_date: date,
                player_lookup: format!("player{p:03}"),
                features: f,
                line,
                points: (mean + 4.0 * normal(&mut rng)).max(0.0),
            });
        }
    }
    out
}

fn small() -> TrainConfig {
    TrainConfig {
        trees: 40,
        ..TrainConfig::default()
    }
}

#[test]
fn identical_inputs_give_identical_bytes_whatever_their_order() {
    let ex = synthetic(30, 40, 1);
    let (a, _) = train(&ex, &small()).unwrap();
    let (b, _) = train(&ex, &small()).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    let mut reversed = ex.clone();
    reversed.reverse();
    let (c, _) = train(&reversed, &small()).unwrap();
    assert_eq!(a.to_bytes(), c.to_bytes());
    // And a different seed is a different artifact (the subsampling is real).
    let (d, _) = train(
        &ex,
        &TrainConfig {
            seed: 99,
            ..small()
        },
    )
    .unwrap();
    assert_ne!(a.to_bytes(), d.to_bytes());
}

#[test]
fn the_artifact_round_trips_through_bytes() {
    let ex = synthetic(20, 30, 2);
    let (a, _) = train(&ex, &small()).unwrap();
    let b = Artifact::from_bytes(&a.to_bytes()).unwrap();
    assert_eq!(a, b);
    for e in ex.iter().take(50) {
        assert_eq!(
            a.predict_model(&e.features).to_bits(),
            b.predict_model(&e.features).to_bits()
        );
    }
    assert!(Artifact::from_bytes(b"{}").is_err());
    let other = String::from_utf8(a.to_bytes())
        .unwrap()
        .replace(FORMAT, "something else");
    assert!(
        Artifact::from_bytes(other.as_bytes())
            .unwrap_err()
            .contains("format")
    );
}

#[test]
fn the_model_learns_a_planted_relationship() {
    let ex = synthetic(60, 60, 3);
    let (a, report) = train(&ex, &TrainConfig::default()).unwrap();
    let test = synthetic(10, 60, 4);
    let err = |f: &dyn Fn(&Example) -> f64| {
        test.iter().map(|e| (f(e) - e.points).abs()).sum::<f64>() / test.len() as f64
    };
    let model = err(&|e| a.predict_model(&e.features));
    let rolling = err(&|e| rolling_baseline(&e.features));
    // The best possible: rate + 3 at home, i.e. the noise's MAE of 4 * sqrt(2 / pi) = 3.19,
    // but the rates are not known exactly; rolling misses the home effect and is noisier.
    assert!(model < 3.6, "model MAE {model}");
    assert!(model < rolling - 0.5, "model {model}, rolling {rolling}");
    // The report names the split and every system.
    assert_eq!(report.dates, 60);
    assert_eq!(report.rows, 3600);
    assert_eq!(report.validation_rows, 12 * 60);
    assert_eq!(report.validation_mae_by_system.len(), 4);
    assert!(report.validation_mae < 3.7, "{}", report.validation_mae);
    // The home effect is found: same vector, home vs away.
    let mut home = test[1].features.clone();
    home[idx("is_home")] = 1.0;
    let mut away = home.clone();
    away[idx("is_home")] = 0.0;
    let gap = a.predict_model(&home) - a.predict_model(&away);
    assert!((gap - 3.0).abs() < 0.8, "home gap {gap}");
}

#[test]
fn p_over_is_calibrated_on_normal_residuals() {
    let mut rng = SplitMix::new(5);
    let rows: Vec<(f64, f64, f64)> = (0..40000)
        .map(|_| {
            let p = 5.0 + 25.0 * rng.next_f64();
            let line = (p + 2.0 * normal(&mut rng)).floor() + 0.5;
            let sd = (3.0 + 1.5 * p).sqrt();
            (p, line, p + sd * normal(&mut rng))
        })
        .collect();
    let d = Dispersion::fit(&rows);
    assert!(
        (d.sd(20.0) - 33.0f64.sqrt()).abs() < 0.2,
        "sd {}",
        d.sd(20.0)
    );
    // In deciles of the predicted probability, the share of overs matches it.
    let mut scored: Vec<(f64, bool)> = rows
        .iter()
        .map(|(p, l, y)| (d.p_over(*p, *l), y > l))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    for chunk in scored.chunks(4000) {
        let p = chunk.iter().map(|c| c.0).sum::<f64>() / chunk.len() as f64;
        let hit = chunk.iter().filter(|c| c.1).count() as f64 / chunk.len() as f64;
        assert!(
            (p - hit).abs() < 0.03,
            "predicted {p:.3}, observed {hit:.3}"
        );
    }
    // A symmetric residual: a prediction on the line is a coin flip.
    assert!((d.p_over(15.5, 15.5) - 0.5).abs() < 0.02);
    // The default is usable before any model exists.
    let def = Dispersion::default();
    assert!(def.p_over(20.0, 15.5) > 0.7 && def.p_over(10.0, 15.5) < 0.3);
}

#[test]
fn the_ensemble_is_fitted_and_dispersions_differ_by_system() {
    let ex = synthetic(40, 50, 6);
    let (a, r) = train(&ex, &small()).unwrap();
    assert_ne!(a.ensemble, Ensemble::default());
    assert_ne!(a.dispersion(System::Line), a.dispersion(System::Rolling));
    let mae = |id: &str| {
        r.validation_mae_by_system
            .iter()
            .find(|s| s.system_id == id)
            .unwrap()
            .mae
    };
    assert!(mae("ensemble_v1") <= mae("line_consensus_v1"));
    assert!(mae("rolling_avg_v1") > mae("points_model_v1"));
}

#[test]
fn bad_inputs_are_errors() {
    assert!(train(&[], &small()).unwrap_err().contains("2 are needed"));
    let mut ex = synthetic(3, 5, 7);
    ex[0].features.pop();
    assert!(train(&ex, &small()).unwrap_err().contains("features"));
    let mut ex = synthetic(3, 5, 7);
    ex[1].points = f64::NAN;
    assert!(train(&ex, &small()).is_err());
}

#[test]
fn system_ids_are_the_catalog_s() {
    let ids: Vec<&str> = System::ALL.iter().map(System::id).collect();
    assert_eq!(
        ids,
        [
            "line_consensus_v1",
            "rolling_avg_v1",
            "points_model_v1",
            "ensemble_v1"
        ]
    );
}
