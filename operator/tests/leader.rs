//! Leader election against `dev/cluster`'s Lease API: clock skew between replicas, a hung Lease
//! call and a leader that loses its Lease never make two leaders.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tipoff_devcluster::{Config, DevCluster};
use tipoff_operator::leader::{LeaderElector, LeaseConfig};

const LEASE: &str = "tipoff-operator";

async fn cluster() -> (DevCluster, Api<Lease>) {
    tipoff_operator::install_crypto_provider();
    let cluster = DevCluster::start(Config::default()).await.unwrap();
    let client = Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
    (cluster, Api::namespaced(client, "default"))
}

/// A 2 s Lease renewed every 0.25 s, with a 1.2 s renew deadline.
fn elector(api: &Api<Lease>, identity: &str) -> LeaderElector {
    let config = LeaseConfig {
        name: LEASE.into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_millis(1200),
        renew_period: Duration::from_millis(250),
    };
    config.validate().unwrap();
    LeaderElector::new(api.clone(), config)
}

/// Writes the Lease as held by `holder`, renewed at `renewed` (whatever that replica's clock
/// says).
async fn write_lease(api: &Api<Lease>, holder: &str, renewed: jiff::Timestamp) {
    let spec = LeaseSpec {
        holder_identity: Some(holder.into()),
        lease_duration_seconds: Some(2),
        acquire_time: Some(MicroTime(renewed)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(0),
        ..LeaseSpec::default()
    };
    match api.get_opt(LEASE).await.unwrap() {
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(LEASE, &PostParams::default(), &lease)
                .await
                .unwrap();
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await.unwrap();
        }
    }
}

/// The holder's clock is an hour behind: its `renewTime` always looks long expired to the
/// candidate, yet it renews every 250 ms. The candidate must not take over while the record
/// keeps changing, and must take over within about a lease duration once it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_with_a_skewed_clock_keeps_the_lease_while_it_renews() {
    let (_cluster, api) = cluster().await;
    let skew = jiff::SignedDuration::from_hours(1);
    write_lease(&api, "skewed", jiff::Timestamp::now() - skew).await;
    let candidate = elector(&api, "candidate");
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        assert!(
            !candidate.try_acquire_or_renew().await.unwrap(),
            "took over a Lease whose holder renews (its clock is an hour behind)"
        );
        write_lease(&api, "skewed", jiff::Timestamp::now() - skew).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The holder stops renewing: a lease duration of an unchanged record later, it is taken.
    let stopped = Instant::now();
    while !candidate.try_acquire_or_renew().await.unwrap() {
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "never took over"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        stopped.elapsed() >= Duration::from_secs(2),
        "took over early"
    );
    let lease = api.get(LEASE).await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("candidate")
    );
}

/// Every Lease call hangs for a minute: the leader must give up leadership by its renew
/// deadline, not when the call returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_lease_call_ends_leadership_by_the_renew_deadline() {
    let (cluster, api) = cluster().await;
    let leader = elector(&api, "leader");
    assert!(leader.try_acquire_or_renew().await.unwrap());
    cluster
        .faults()
        .add_latency(Duration::from_secs(60), None, "/leases");
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), leader.hold())
        .await
        .expect("hold() hung with the Lease call");
    let took = started.elapsed();
    assert!(
        took <= Duration::from_millis(1200 + 300),
        "leadership ended {took:?} after the last renewal; the renew deadline is 1.2 s"
    );
    cluster.faults().clear();
}

/// A TCP proxy to the API server that can be cut: then every connection through it, open or
/// new, hangs (a network partition between one replica and the API server).
struct Partition {
    url: String,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Partition {
    async fn start(upstream: &str) -> Self {
        use std::sync::atomic::Ordering;
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let (target, flag) = (target.clone(), flag.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    let watch_cut = async {
                        while !flag.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        () = watch_cut => {
                            // Hold the connection open, silent, like a dead network path.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                });
            }
        });
        Self { url, cut }
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The leader is cut off from the API server (its renewals hang) while the standby keeps
/// trying: the leader must stop leading before the standby takes the Lease, never after. And a
/// live leader whose Lease another replica took stops at its next renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_the_lease_stops_before_anyone_else_leads() {
    let (cluster, api) = cluster().await;
    let partition = Partition::start(&cluster.url()).await;
    let through = Client::try_from(kube::Config::new(partition.url.parse().unwrap())).unwrap();
    let leader = elector(&Api::namespaced(through, "default"), "leader");
    let standby = elector(&api, "standby");
    assert!(leader.try_acquire_or_renew().await.unwrap());
    let hold = tokio::spawn(async move {
        leader.hold().await;
        Instant::now()
    });
    // The leader renews a few times while the standby watches, then is cut off.
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        assert!(!standby.try_acquire_or_renew().await.unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    partition.cut();
    let took_over = loop {
        if standby.try_acquire_or_renew().await.unwrap() {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stopped = tokio::time::timeout(Duration::from_secs(10), hold)
        .await
        .expect("the cut-off leader never stopped leading")
        .unwrap();
    assert!(
        stopped < took_over,
        "two leaders for {:?}: the old leader stopped after the standby took over",
        stopped.duration_since(took_over)
    );

    // A live leader whose Lease another replica took stops at its next renewal.
    let standby_hold = tokio::spawn(async move {
        standby.hold().await;
        Instant::now()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_lease(&api, "usurper", jiff::Timestamp::now()).await;
    let taken = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(3), standby_hold)
        .await
        .expect("a leader that lost its Lease kept leading")
        .unwrap();
    assert!(stopped.duration_since(taken) <= Duration::from_millis(600));
}
