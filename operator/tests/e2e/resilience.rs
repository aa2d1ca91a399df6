//! The operator's own health: liveness follows the controller's progress, so a wedged
//! controller is restarted and an idle one is not.

use std::time::{Duration, Instant};

use tipoff_crds::Mode;

use super::harness::{Env, test_catalog};
use super::{script, with_sleep};

/// Polls `/healthz` until it answers `code`, for at most `within`.
fn wait_for_healthz(op: &super::harness::Operator, code: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if op.get("/healthz").is_some_and(|(c, _)| c == code) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// An operator with a 3 s stall limit stays live while idle for longer than that, and fails
/// `/healthz` once a run waits on a reconcile that cannot finish (every status write hangs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_fails_for_a_wedged_controller_but_not_for_an_idle_one() {
    let env = Env::start(&with_sleep(&script("  {}\n"), 100), None).await;
    let op = env.operator_with(
        "op-a",
        false,
        &test_catalog(),
        &["--liveness-stall-seconds", "3"],
    );
    assert!(
        wait_for_healthz(&op, 200, Duration::from_secs(30)),
        "never live:\n{}",
        op.log()
    );
    // Idle for twice the stall limit: nothing to make progress on, still live.
    let idle_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < idle_until {
        assert_eq!(
            op.get("/healthz").map(|(c, _)| c),
            Some(200),
            "an idle operator failed liveness:\n{}",
            op.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Every status write now hangs for two minutes: the run's reconcile cannot finish.
    env.cluster.faults().add_latency(
        Duration::from_secs(120),
        Some("PATCH"),
        "/pipelineruns/*/status",
    );
    env.create_run("wedged", Mode::Production).await;
    assert!(
        wait_for_healthz(&op, 503, Duration::from_secs(20)),
        "a wedged controller stayed live:\n{}",
        op.log()
    );
}
