//! `tipoff-processor game-days` against dev/cluster (the real API server wire protocol) and the
//! dev upstream: the list it writes is the season's game dates, labelled for the operator; a
//! second run writes nothing; a malformed payload and a list that would end earlier leave the
//! list as it is, each with its exit code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::collections::BTreeSet;
use std::process::{Command, Output};

use jiff::civil::Date;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::*;
use tipoff_crds::game_days::{self, GameDays};
use tipoff_devcluster::{Config as ClusterConfig, DevCluster};

/// Runs `tipoff-processor game-days` off the runtime's threads (dev/cluster serves on them).
async fn game_days_cmd(world: &World, kubeconfig: &std::path::Path, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tipoff-processor"));
    c.args(["game-days", "--config-map", "nba-game-days"])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("TIPOFF_UPSTREAM_URL", &world.base)
        .env("TIPOFF_UPSTREAM_MAX_ATTEMPTS", "1")
        .env_remove("TIPOFF_UPSTREAM_API_KEY_FILE");
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_day_list_is_written_from_the_league_schedule_and_never_lost() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let world = World::start(next_day(busy_date())).await;
    let cluster = DevCluster::start(ClusterConfig::default()).await.unwrap();
    let kubeconfig = world.dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let client = kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");

    // First run: created, with every date the season has games on, through its last.
    let out = game_days_cmd(&world, &kubeconfig, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want: BTreeSet<Date> = season().by_date.keys().copied().collect();
    let last = *want.last().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "configmap default/nba-game-days created: {} game days through {last}",
            want.len()
        )),
        "{}",
        text(&out)
    );
    let cm = api.get("nba-game-days").await.unwrap();
    assert_eq!(
        cm.metadata.labels.as_ref().unwrap()["tipoff.dev/game-days"],
        "true"
    );
    let listed = game_days::parse(&cm.data.as_ref().unwrap()["dates"], "cm");
    assert_eq!(
        listed,
        GameDays::Listed {
            dates: want.clone(),
            through: last
        }
    );
    // The season has days without games inside it (what a schedule skips).
    let first = *want.first().unwrap();
    let span = (last - first).get_days() + 1;
    assert!(
        usize::try_from(span).unwrap() > want.len(),
        "the synthetic season has no day without games between {first} and {last}"
    );
    let version = cm.metadata.resource_version.clone();

    // Second run: nothing to write.
    let out = game_days_cmd(&world, &kubeconfig, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unchanged"),
        "{}",
        text(&out)
    );
    let cm = api.get("nba-game-days").await.unwrap();
    assert_eq!(cm.metadata.resource_version, version);

    // A malformed payload: exit 75 (worth a retry), the list untouched.
    world
        .set_faults(json!({"schedule": {"malformed_first": 1}}))
        .await;
    let out = game_days_cmd(&world, &kubeconfig, &[]).await;
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the game-day list is left as it is"),
        "{}",
        text(&out)
    );
    let cm = api.get("nba-game-days").await.unwrap();
    assert_eq!(cm.metadata.resource_version, version);

    // Someone extended the list past the league schedule: a shorter list is refused (65)...
    let later = last.checked_add(jiff::ToSpan::days(60)).unwrap();
    api.patch(
        "nba-game-days",
        &PatchParams::apply("test"),
        &Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "nba-game-days"},
            "data": {"dates": format!("through: {later}\n{later}\n")}
        })),
    )
    .await
    .unwrap();
    let out = game_days_cmd(&world, &kubeconfig, &[]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to shorten it"),
        "{}",
        text(&out)
    );
    // ...unless allowed.
    let out = game_days_cmd(&world, &kubeconfig, &["--allow-shrink"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cm = api.get("nba-game-days").await.unwrap();
    assert!(matches!(
        game_days::parse(&cm.data.as_ref().unwrap()["dates"], "cm"),
        GameDays::Listed { through, .. } if through == last
    ));
}
