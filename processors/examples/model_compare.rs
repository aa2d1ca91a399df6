//! Compares points-model candidates on the synthetic season, walk-forward, and measures the
//! prediction systems against the ceiling (dev/season's expected points) the way issue 17's
//! quality benchmark does. Reads a lake that `bench_pipeline --keep DIR` left behind:
//!
//! ```sh
//! cargo run --release -p tipoff-processors --example bench_pipeline -- --dates 400 --keep /tmp/season
//! cargo run --release -p tipoff-processors --example model_compare -- --lake /tmp/season
//! # with the comparison-only candidates (crates outside the production dependency tree)
//! cargo run --release -p tipoff-processors --features compare --example model_compare -- \
//!     --lake /tmp/season --candidates ridge,tipoff-gbm,gbdt,forust
//! ```
//!
//! Options: `--candidates a,b` (default `ridge,tipoff-gbm`); `--retrain-days N` (7, the
//! production policy); `--seeds a,b` training seeds of `tipoff-gbm` for the spread (17).
//!
//! Evaluation: the second half of the season's dates; for each date D the candidate is
//! trained only on rows of dates before D, retrained when the last training is N days old.
//! Rows: players who played and had a line from both books (the props market). The gap closed
//! is (MAE season average - MAE system) / (MAE season average - MAE ceiling).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::Instant;

use jiff::civil::Date;
use tipoff_processors::features::FEATURES;
use tipoff_processors::model::{self, Artifact, Example, System, TrainConfig};
use tipoff_warehouse::{TableRef, Value};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One evaluation row.
struct Row {
    ex: Example,
    /// dev/season's expected points (the ceiling).
    expected: f64,
    /// Each book's (line, over price, under price).
    books: Vec<(f64, i64, i64)>,
}

fn s(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(x)) => Some(x.clone()),
        _ => None,
    }
}
fn f(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Float(x)) => Some(*x),
        Some(Value::Int(x)) => Some(*x as f64),
        _ => None,
    }
}
fn d(v: Option<&Value>) -> Option<Date> {
    match v {
        Some(Value::Date(x)) => Some(*x),
        _ => None,
    }
}

async fn load(dir: &str) -> Vec<Row> {
    let wh = tipoff_warehouse::open(&format!("file://{dir}/lake"))
        .await
        .unwrap();
    let (from, to) = (Date::constant(2025, 10, 1), Date::constant(2026, 7, 1));
    let read = |ds: &'static str, t: &'static str| {
        let wh = &wh;
        async move {
            wh.read_range(&TableRef::new(ds, t), from, to, None)
                .await
                .unwrap()
        }
    };
    type Key = (Date, String);
    let mut points: BTreeMap<Key, f64> = BTreeMap::new();
    for r in read("nba_analytics", "player_game_summary").await {
        let played = matches!(r.get("dnp_reason"), None | Some(Value::Null))
            && f(r.get("minutes_played")).unwrap_or(0.0) > 0.0;
        if played {
            points.insert(
                (
                    d(r.get("game_date")).unwrap(),
                    s(r.get("player_lookup")).unwrap(),
                ),
                f(r.get("points")).unwrap(),
            );
        }
    }
    let mut lines: BTreeMap<Key, f64> = BTreeMap::new();
    for r in read("nba_analytics", "upcoming_player_game_context").await {
        if let Some(l) = f(r.get("current_points_line")) {
            lines.insert(
                (
                    d(r.get("game_date")).unwrap(),
                    s(r.get("player_lookup")).unwrap(),
                ),
                l,
            );
        }
    }
    // The latest snapshot of each book: (snapshot, line, over price, under price) by book.
    type Quote = (String, f64, i64, i64);
    let mut books: BTreeMap<Key, BTreeMap<String, Quote>> = BTreeMap::new();
    for r in read("nba_raw", "odds_api_player_points_props").await {
        let key = (
            d(r.get("game_date")).unwrap(),
            s(r.get("player_lookup")).unwrap(),
        );
        let snap = format!("{:?}", r.get("snapshot_time"));
        let entry = (
            snap.clone(),
            f(r.get("points_line")).unwrap(),
            f(r.get("over_price_american")).unwrap_or(-110.0) as i64,
            f(r.get("under_price_american")).unwrap_or(-110.0) as i64,
        );
        let by_book = books.entry(key).or_default();
        let book = s(r.get("bookmaker")).unwrap();
        if by_book.get(&book).is_none_or(|e| e.0 <= snap) {
            by_book.insert(book, entry);
        }
    }
    let season = tipoff_season::Season::generate(2025);
    let expected: BTreeMap<Key, f64> = tipoff_season::truth::player_games(&season)
        .into_iter()
        .map(|t| {
            (
                (t.game_date.parse().unwrap(), t.player_lookup),
                t.expected_points,
            )
        })
        .collect();
    let mut out = Vec::new();
    for r in read("nba_predictions", "ml_feature_store_v2").await {
        let key = (
            d(r.get("game_date")).unwrap(),
            s(r.get("player_lookup")).unwrap(),
        );
        let Some(&pts) = points.get(&key) else {
            continue;
        };
        let json: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&s(r.get("features_json")).unwrap()).unwrap();
        let features: Vec<f64> = FEATURES
            .iter()
            .map(|fd| {
                json.get(fd.name)
                    .and_then(|v| v.as_f64())
                    .unwrap_or(fd.default)
            })
            .collect();
        out.push(Row {
            expected: *expected.get(&key).expect("truth for every player-game"),
            books: books
                .get(&key)
                .map(|b| b.values().map(|(_, l, o, u)| (*l, *o, *u)).collect())
                .unwrap_or_default(),
            ex: Example {
                game_date: key.0,
                line: lines.get(&key).copied(),
                player_lookup: key.1,
                features,
                points: pts,
            },
        });
    }
    out.sort_by(|a, b| {
        (a.ex.game_date, &a.ex.player_lookup).cmp(&(b.ex.game_date, &b.ex.player_lookup))
    });
    out
}

/// What a candidate gives for the rows of one evaluation block.
struct Fit {
    model: Vec<f64>,
    /// Our artifact (ensemble and dispersions), for the candidates that have one.
    artifact: Option<Artifact>,
    bytes: Vec<u8>,
    secs: f64,
}

fn fit(candidate: &str, train: &[Example], test: &[&Example], seed: u64) -> Fit {
    let t = Instant::now();
    match candidate {
        "ridge" | "tipoff-gbm" => {
            let cfg = TrainConfig {
                // `ridge` is the production default; `tipoff-gbm` adds 150 trees.
                trees: if candidate == "ridge" { 0 } else { 150 },
                seed,
                ..TrainConfig::default()
            };
            let (a, _) = model::train(train, &cfg).unwrap();
            let secs = t.elapsed().as_secs_f64();
            Fit {
                model: test.iter().map(|e| a.predict_model(&e.features)).collect(),
                bytes: a.to_bytes(),
                artifact: Some(a),
                secs,
            }
        }
        #[cfg(feature = "compare")]
        "gbdt" => compare::gbdt(train, test, t),
        #[cfg(feature = "compare")]
        "forust" => compare::forust(train, test, t),
        other => panic!("unknown candidate {other} (gbdt and forust need --features compare)"),
    }
}

#[cfg(feature = "compare")]
mod compare {
    use super::*;

    fn median_residual(train: &[Example], fitted: impl Iterator<Item = f64>) -> f64 {
        let mut r: Vec<f64> = train
            .iter()
            .zip(fitted)
            .map(|(e, p)| e.points - p)
            .collect();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }

    pub fn gbdt(train: &[Example], test: &[&Example], t: Instant) -> Fit {
        use gbdt::config::Config;
        use gbdt::decision_tree::{Data, DataVec};
        use gbdt::gradient_boost::GBDT;
        let x = |e: &Example| -> Vec<f32> {
            model::inputs(&e.features)
                .into_iter()
                .map(|v| v as f32)
                .collect()
        };
        let mut cfg = Config::new();
        cfg.set_feature_size(model::inputs(&train[0].features).len());
        cfg.set_max_depth(4);
        cfg.set_iterations(150);
        cfg.set_shrinkage(0.05);
        cfg.set_loss("SquaredError");
        cfg.set_min_leaf_size(100);
        cfg.set_data_sample_ratio(1.0);
        cfg.set_feature_sample_ratio(1.0);
        cfg.set_training_optimization_level(2);
        let mut g = GBDT::new(&cfg);
        let mut dv: DataVec = train
            .iter()
            .map(|e| Data::new_training_data(x(e), 1.0, e.points as f32, None))
            .collect();
        g.fit(&mut dv);
        let secs = t.elapsed().as_secs_f64();
        let tv: DataVec = test
            .iter()
            .map(|e| Data::new_test_data(x(e), None))
            .collect();
        // The same aim as ours: the median (the training rows' median residual added).
        let trained: DataVec = train
            .iter()
            .map(|e| Data::new_test_data(x(e), None))
            .collect();
        let shift = median_residual(train, g.predict(&trained).into_iter().map(f64::from));
        let model = g
            .predict(&tv)
            .into_iter()
            .map(|p| f64::from(p) + shift)
            .collect();
        let path = std::env::temp_dir().join(format!("gbdt-{}.json", std::process::id()));
        g.save_model(path.to_str().unwrap()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        Fit {
            model,
            artifact: None,
            bytes,
            secs,
        }
    }

    pub fn forust(train: &[Example], test: &[&Example], t: Instant) -> Fit {
        use forust_ml::objective::ObjectiveType;
        use forust_ml::{GradientBooster, Matrix};
        let cols = model::inputs(&train[0].features).len();
        // Column major.
        let colmajor = |rows: &[&Example]| -> Vec<f64> {
            let xs: Vec<Vec<f64>> = rows.iter().map(|e| model::inputs(&e.features)).collect();
            (0..cols)
                .flat_map(|c| xs.iter().map(move |r| r[c]))
                .collect()
        };
        let refs: Vec<&Example> = train.iter().collect();
        let data = colmajor(&refs);
        let y: Vec<f64> = train.iter().map(|e| e.points).collect();
        let w = vec![1.0; y.len()];
        let mut g = GradientBooster::default()
            .set_objective_type(ObjectiveType::SquaredLoss)
            .set_iterations(150)
            .set_learning_rate(0.05)
            .set_max_depth(4)
            .set_l2(50.0)
            .set_min_leaf_weight(100.0)
            .set_parallel(true);
        g.fit(&Matrix::new(&data, refs.len(), cols), &y, &w, None)
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let td = colmajor(test);
        let fitted = g.predict(&Matrix::new(&data, refs.len(), cols), false);
        let shift = median_residual(train, fitted.into_iter());
        let model = g
            .predict(&Matrix::new(&td, test.len(), cols), false)
            .into_iter()
            .map(|p| p + shift)
            .collect();
        Fit {
            model,
            artifact: None,
            bytes: g.json_dump().unwrap().into_bytes(),
            secs,
        }
    }
}

/// Profit per unit staked at an American price.
fn payout(price: i64) -> f64 {
    if price < 0 {
        100.0 / (-price) as f64
    } else {
        price as f64 / 100.0
    }
}

/// A hit rate and its 95% Wilson interval.
fn wilson(hits: usize, n: usize) -> (f64, f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let (p, nn, z) = (hits as f64 / n as f64, n as f64, 1.96f64);
    let c = (p + z * z / (2.0 * nn)) / (1.0 + z * z / nn);
    let h = z * (p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)).sqrt() / (1.0 + z * z / nn);
    (p, c - h, c + h)
}

#[derive(Default)]
struct Calls {
    n: usize,
    hits: usize,
    profit: f64,
}

impl Calls {
    /// Calls `pred` against the better of the books' lines when the calibrated probability of
    /// being right reaches `threshold`.
    fn call(
        &mut self,
        pred: f64,
        disp: model::Dispersion,
        row: &Row,
        threshold: f64,
        consensus: bool,
    ) {
        let Some(mut over) = row.books.iter().min_by(|a, b| a.0.total_cmp(&b.0)).copied() else {
            return;
        };
        let mut under = row
            .books
            .iter()
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .copied()
            .unwrap_or(over);
        if consensus {
            // The consensus line at -110 both ways.
            let l = row.ex.line.unwrap_or(over.0);
            over = (l, -110, -110);
            under = over;
        }
        let p_over = disp.p_over(pred, over.0);
        let p_under = 1.0 - disp.p_over(pred, under.0);
        let pts = row.ex.points;
        let (right, price) = if p_over >= threshold && p_over >= p_under {
            (pts > over.0, over.1)
        } else if p_under >= threshold {
            (pts < under.0, under.2)
        } else {
            return;
        };
        self.n += 1;
        if right {
            self.hits += 1;
            self.profit += payout(price);
        } else {
            self.profit -= 1.0;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let lake = arg("--lake").expect("--lake DIR (from bench_pipeline --keep DIR)");
    let candidates: Vec<String> = arg("--candidates")
        .unwrap_or_else(|| "ridge,tipoff-gbm".into())
        .split(',')
        .map(String::from)
        .collect();
    let retrain: i64 = arg("--retrain-days").map_or(7, |v| v.parse().unwrap());
    let seeds: Vec<u64> = arg("--seeds").map_or(vec![17], |v| {
        v.split(',').map(|x| x.parse().unwrap()).collect()
    });
    let t = Instant::now();
    let rows = load(&lake).await;
    let mut dates: Vec<Date> = rows.iter().map(|r| r.ex.game_date).collect();
    dates.dedup();
    let half = dates[dates.len() / 2];
    println!(
        "{} played player-games over {} dates ({} .. {}), loaded in {:.1} s; evaluating {} .. {} (second half), retraining every {retrain} days",
        rows.len(),
        dates.len(),
        dates[0],
        dates[dates.len() - 1],
        t.elapsed().as_secs_f64(),
        half,
        dates[dates.len() - 1]
    );
    let eval: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].ex.game_date >= half)
        .collect();
    let marketed = |i: &usize| rows[*i].books.len() >= 2 && rows[*i].ex.line.is_some();
    let mae = |idx: &[usize], p: &dyn Fn(usize) -> f64| {
        idx.iter()
            .map(|&i| (p(i) - rows[i].ex.points).abs())
            .sum::<f64>()
            / idx.len() as f64
    };
    let market: Vec<usize> = eval.iter().copied().filter(marketed).collect();
    let season_avg = |i: usize| rows[i].ex.features[2];
    let base_m = mae(&market, &season_avg);
    let ceil_m = mae(&market, &|i| rows[i].expected);
    let base_a = mae(&eval, &season_avg);
    let ceil_a = mae(&eval, &|i| rows[i].expected);
    println!(
        "rows with both books' lines: {} of {}; season average MAE {base_m:.4}, ceiling {ceil_m:.4} ({:.1}% below)",
        market.len(),
        eval.len(),
        100.0 * (1.0 - ceil_m / base_m)
    );
    // The ceiling is the mean; the absolute error is smallest at the median, so the ceiling
    // moved by its median residual (an oracle shift, measured on these very rows) is shown too.
    let mut resid: Vec<f64> = market
        .iter()
        .map(|&i| rows[i].ex.points - rows[i].expected)
        .collect();
    resid.sort_by(f64::total_cmp);
    let shift = resid[resid.len() / 2];
    let ceil_med = mae(&market, &|i| rows[i].expected + shift);
    println!(
        "  ceiling moved by its median residual ({shift:+.2}): MAE {ceil_med:.4} (for reference; the gap uses the ceiling {ceil_m:.4})"
    );
    let gap = |m: f64| 100.0 * (base_m - m) / (base_m - ceil_m);
    let line_m = mae(&market, &|i| rows[i].ex.line.unwrap());
    let roll_m = mae(&market, &|i| model::rolling_baseline(&rows[i].ex.features));
    println!(
        "  line_consensus_v1: MAE {line_m:.4}, gap closed {:.1}%",
        gap(line_m)
    );
    println!(
        "  rolling_avg_v1:    MAE {roll_m:.4}, gap closed {:.1}%",
        gap(roll_m)
    );

    for cand in &candidates {
        let cand_seeds: Vec<u64> = if cand == "tipoff-gbm" {
            seeds.clone()
        } else {
            vec![17]
        };
        for seed in cand_seeds {
            let mut model_pred = vec![f64::NAN; rows.len()];
            let mut ens_pred = vec![f64::NAN; rows.len()];
            let mut disp: Vec<Option<Artifact>> = vec![None; rows.len()];
            let (mut fits, mut secs, mut size) = (0usize, 0.0f64, 0usize);
            let mut train_rows = (usize::MAX, 0usize);
            let mut deterministic = None;
            let mut k = 0;
            while k < eval.len() {
                let d = rows[eval[k]].ex.game_date;
                let until = d.checked_add(jiff::Span::new().days(retrain)).unwrap();
                let block: Vec<usize> = eval[k..]
                    .iter()
                    .copied()
                    .take_while(|&i| rows[i].ex.game_date < until)
                    .collect();
                k += block.len();
                // Walk-forward: only rows of dates before the block's first date.
                let train: Vec<Example> = rows
                    .iter()
                    .take_while(|r| r.ex.game_date < d)
                    .map(|r| r.ex.clone())
                    .collect();
                assert!(train.iter().all(|e| e.game_date < d));
                let test: Vec<&Example> = block.iter().map(|&i| &rows[i].ex).collect();
                train_rows = (train_rows.0.min(train.len()), train_rows.1.max(train.len()));
                let fitted = fit(cand, &train, &test, seed);
                if deterministic.is_none() {
                    let again = fit(cand, &train, &test, seed);
                    deterministic = Some(again.bytes == fitted.bytes);
                }
                fits += 1;
                secs += fitted.secs;
                size = fitted.bytes.len();
                for (j, &i) in block.iter().enumerate() {
                    model_pred[i] = fitted.model[j];
                    if let Some(a) = &fitted.artifact {
                        let r = &rows[i].ex;
                        ens_pred[i] = a.predict_ensemble(
                            r.line,
                            model::rolling_baseline(&r.features),
                            model_pred[i],
                        );
                        disp[i] = Some(a.clone());
                    }
                }
            }
            let m_all = mae(&eval, &|i| model_pred[i]);
            let m = mae(&market, &|i| model_pred[i]);
            println!(
                "{cand} (seed {seed}): {fits} fits on {} .. {} rows, {:.2} s per fit, artifact {:.0} kB, deterministic {}",
                train_rows.0,
                train_rows.1,
                secs / fits as f64,
                size as f64 / 1e3,
                deterministic.unwrap_or(false)
            );
            println!(
                "  points_model_v1: MAE {m:.4}, gap closed {:.1}%; all played rows MAE {m_all:.4} (season avg {base_a:.4}, ceiling {ceil_a:.4}, gap closed {:.1}%)",
                gap(m),
                100.0 * (base_a - m_all) / (base_a - ceil_a)
            );
            if disp[market[0]].is_none() {
                continue;
            }
            let e = mae(&market, &|i| ens_pred[i]);
            println!("  ensemble_v1:     MAE {e:.4}, gap closed {:.1}%", gap(e));
            if std::env::var("MODEL_COMPARE_SHIFTS").is_ok() {
                for c in [0.2, 0.4, 0.6] {
                    let m = mae(&market, &|i| model_pred[i] - c);
                    println!(
                        "    diagnostic: model - {c}: MAE {m:.4}, gap closed {:.1}%",
                        gap(m)
                    );
                }
            }
            // Calibration: P(over the consensus) against the share of overs, in bins.
            for (name, sys) in [
                ("points_model_v1", System::Model),
                ("ensemble_v1", System::Ensemble),
            ] {
                let mut bins: BTreeMap<i64, (f64, usize, usize)> = BTreeMap::new();
                for &i in &market {
                    let r = &rows[i].ex;
                    let l = r.line.unwrap();
                    let pred = if sys == System::Model {
                        model_pred[i]
                    } else {
                        ens_pred[i]
                    };
                    let p = disp[i].as_ref().unwrap().dispersion(sys).p_over(pred, l);
                    let b = bins.entry((p * 20.0).floor() as i64).or_default();
                    b.0 += p;
                    b.1 += 1;
                    b.2 += usize::from(r.points > l);
                }
                let cells: Vec<String> = bins
                    .values()
                    .filter(|b| b.1 >= 100)
                    .map(|(p, n, o)| {
                        format!("{:.3}/{:.3} (n {n})", p / *n as f64, *o as f64 / *n as f64)
                    })
                    .collect();
                println!(
                    "  calibration {name}: mean P(over) / share over, per 0.05 bin: {}",
                    cells.join(", ")
                );
            }
            for (consensus, name, sys) in [
                (false, "line_consensus_v1", System::Line),
                (false, "rolling_avg_v1", System::Rolling),
                (false, "points_model_v1", System::Model),
                (false, "ensemble_v1", System::Ensemble),
                (true, "points_model_v1", System::Model),
                (true, "ensemble_v1", System::Ensemble),
            ] {
                let against = if consensus {
                    "consensus @-110"
                } else {
                    "better book"
                };
                let mut line = format!("  calls {name:<18} vs {against:<15}");
                for thr in [0.5, 0.52, 0.54, 0.56] {
                    let mut c = Calls::default();
                    for &i in &market {
                        let a = disp[i].as_ref().unwrap();
                        let r = &rows[i].ex;
                        let p = match sys {
                            System::Line => r.line.unwrap(),
                            System::Rolling => model::rolling_baseline(&r.features),
                            System::Model => model_pred[i],
                            System::Ensemble => ens_pred[i],
                        };
                        c.call(p, a.dispersion(sys), &rows[i], thr, consensus);
                    }
                    let (h, lo, hi) = wilson(c.hits, c.n);
                    line.push_str(&format!(
                        " | p>={thr:.2}: {} calls, {:.1}% [{:.1}, {:.1}], ROI {:+.1}%",
                        c.n,
                        100.0 * h,
                        100.0 * lo,
                        100.0 * hi,
                        100.0 * c.profit / c.n.max(1) as f64
                    ));
                }
                println!("{line}");
            }
        }
    }
}
