//! Storage faults: a disk that fills up under a signup rush (SQLite on a small tmpfs), and a
//! PostgreSQL server that drops every connection mid-rush. What must hold: no signup is answered
//! unless its rows are saved, a refused signup says `unavailable`, health turns NOT_SERVING while
//! writes fail, and the service recovers by itself.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use sqlx::{AnyConnection, Connection};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::*;
use iafactory_testkit::disk::SmallDisk;
use iafactory_testkit::health::wait_grpc_health;

pub(crate) async fn wait_health(
    addr: std::net::SocketAddr,
    want: ServingStatus,
    within: Duration,
) -> bool {
    wait_grpc_health(addr, want, within, Duration::from_millis(50)).await
}

/// Signups answered and refused during a rush.
#[derive(Default)]
struct Rush {
    answered: Vec<pb::SignupResponse>,
    refused: Vec<tonic::Status>,
}

/// `n` signups, `parallel` at a time, half of them with LAUNCH30.
async fn rush(client: &PromoServiceClient<Channel>, tag: &str, n: usize, parallel: usize) -> Rush {
    let results: Vec<Result<pb::SignupResponse, tonic::Status>> = futures::stream::iter(0..n)
        .map(|i| {
            let mut client = client.clone();
            let code = if i % 2 == 0 { "LAUNCH30" } else { "" };
            let email = format!("{tag}-{i}@rush.dz");
            async move {
                client
                    .signup(signup_req(&email, "starter", code))
                    .await
                    .map(|r| r.into_inner())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut out = Rush::default();
    for r in results {
        match r {
            Ok(s) => out.answered.push(s),
            Err(s) => out.refused.push(s),
        }
    }
    out
}

/// Every signup saved, by user id, and the places LAUNCH30 has used.
async fn saved(client: &mut PromoServiceClient<Channel>) -> (HashSet<String>, u32) {
    let mut ids = HashSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_signups(admin(pb::ListSignupsRequest {
                page_size: 500,
                page_token: token.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        ids.extend(page.signups.into_iter().map(|s| s.user_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let launch = client
        .get_remaining(pb::GetRemainingRequest {
            code: "LAUNCH30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    (ids, launch.total - launch.remaining)
}

/// Every refusal is a clean `unavailable` (503), or `promo_exhausted` when LAUNCH30's places
/// were really all taken (the caller checks that against the database). Returns whether
/// `promo_exhausted` was seen.
fn refused_cleanly(refused: &[tonic::Status]) -> bool {
    let mut exhausted_seen = false;
    for status in refused {
        if error_code(status) == "promo_exhausted" {
            exhausted_seen = true;
            continue;
        }
        assert_eq!(
            (status.code(), error_code(status).as_str()),
            (tonic::Code::Unavailable, "unavailable"),
            "a storage fault must be answered as unavailable: {status:?}"
        );
    }
    exhausted_seen
}

/// A `promo_exhausted` refusal was only right if all 30 of LAUNCH30's places are saved.
async fn assert_exhausted_only_when_full(
    client: &mut PromoServiceClient<Channel>,
    exhausted_seen: bool,
) {
    if exhausted_seen {
        assert_eq!(
            saved(client).await.1,
            30,
            "exhausted while places were left"
        );
    }
}

/// Checks the rule against what a restarted service reads from the database.
async fn assert_nothing_answered_unsaved(
    client: &mut PromoServiceClient<Channel>,
    answered: &[pb::SignupResponse],
) {
    let (ids, launch_used) = saved(client).await;
    let missing: Vec<&str> = answered
        .iter()
        .map(|s| s.user_id.as_str())
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered signups are not saved: {missing:?}",
        missing.len(),
        answered.len()
    );
    let launch_answered = answered
        .iter()
        .filter(|s| s.promo_code == "LAUNCH30")
        .count();
    assert!(
        launch_answered <= launch_used as usize,
        "LAUNCH30 answered {launch_answered} times for {launch_used} places saved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_never_answers_an_unsaved_signup_and_recovers_by_itself() {
    let disk = SmallDisk::mount("3m");
    let url = format!("sqlite://{}/promo.db", disk.path().display());
    let app = TestApp::spawn_on(&url, |c| {
        c.storage_probe_interval = Duration::from_millis(100);
    })
    .await;
    let mut all_answered = Vec::new();

    // Before: signups work.
    let before = rush(&app.client, "before", 10, 4).await;
    assert_eq!(before.answered.len(), 10, "{:?}", before.refused);
    all_answered.extend(before.answered);

    // The disk fills up; a rush follows. Some writes may still fit (SQLite reuses its WAL), but
    // nothing may be answered without its rows, and every refusal must be a clean `unavailable`.
    let filler = disk.fill();
    let mut refused = Vec::new();
    for round in 0..3 {
        let during = rush(&app.client, &format!("full{round}"), 200, 8).await;
        all_answered.extend(during.answered);
        refused.extend(during.refused);
    }
    assert!(
        !refused.is_empty(),
        "the full disk refused nothing: the test did not exercise it"
    );
    let exhausted_seen = refused_cleanly(&refused);
    assert!(
        wait_health(app.addr, ServingStatus::NotServing, Duration::from_secs(5)).await,
        "health must turn NOT_SERVING while writes fail"
    );

    // Space returns: the service recovers by itself, and a signup is saved and visible.
    std::fs::remove_file(filler).unwrap();
    assert!(
        wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(10)).await,
        "health must turn SERVING again once writes succeed"
    );
    let mut client = app.client.clone();
    let after = client
        .signup(signup_req("after@rush.dz", "dev", ""))
        .await
        .unwrap()
        .into_inner();
    all_answered.push(after);
    assert_nothing_answered_unsaved(&mut client, &all_answered).await;
    assert_exhausted_only_when_full(&mut client, exhausted_seen).await;

    // And after a restart, from the file alone.
    app.stop().await.unwrap();
    let app = TestApp::spawn_on(&url, |_| {}).await;
    let mut client = app.client.clone();
    assert_nothing_answered_unsaved(&mut client, &all_answered).await;
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_dropping_every_connection_mid_rush_loses_no_answered_signup() {
    let db = test_db(Backend::Postgres).await;
    let app = TestApp::spawn(&db).await;
    // Up and migrated before the connections start to drop.
    let first = rush(&app.client, "first", 1, 1).await;
    assert_eq!(first.answered.len(), 1, "{:?}", first.refused);
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let admin_url = iafactory_testkit::pg_admin_url();

    // Kill every connection of the service's database, again and again, while signups run.
    let killer = tokio::spawn(async move {
        let mut conn = AnyConnection::connect(&admin_url).await.unwrap();
        for _ in 0..40 {
            let _ = terminate_connections(&mut conn, &name).await;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    // Refusals come back fast, so a fixed number of signups can all fall inside the killing
    // window on a loaded machine: rush in rounds until the killer is done, then once more, so
    // the rush always spans the whole fault and the minute after it.
    let mut during = Rush::default();
    let mut round = 0;
    loop {
        let killing = !killer.is_finished();
        let r = rush(&app.client, &format!("pg{round}"), 60, 16).await;
        during.answered.extend(r.answered);
        during.refused.extend(r.refused);
        round += 1;
        if !killing {
            break;
        }
    }
    killer.await.unwrap();
    let exhausted_seen = refused_cleanly(&during.refused);
    // Recovers by itself.
    let mut client = app.client.clone();
    assert!(
        during.answered.len() > 10,
        "almost nothing went through in {round} rounds: {:?}",
        during.refused.first()
    );
    let mut answered = during.answered;
    answered.extend(first.answered);
    let mut after = None;
    for _ in 0..50 {
        match client.signup(signup_req("after@pg.dz", "dev", "")).await {
            Ok(r) => {
                after = Some(r.into_inner());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    answered.push(after.expect("promo-service did not recover after the connections came back"));
    assert_nothing_answered_unsaved(&mut client, &answered).await;
    assert_exhausted_only_when_full(&mut client, exhausted_seen).await;
    app.stop().await.unwrap();
}

/// Sets PostgreSQL's read-only default for the database `name` and drops its connections, so
/// that every new connection of the service is read-only (as on a standby after a failover).
async fn set_read_only(name: &str, read_only: bool) {
    let mut conn = AnyConnection::connect(&iafactory_testkit::pg_admin_url())
        .await
        .unwrap();
    let value = if read_only { "on" } else { "off" };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = {value}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    terminate_connections(&mut conn, name).await.unwrap();
}

/// Ends every connection to the database `name` but the caller's, as a server restart would.
async fn terminate_connections(conn: &mut AnyConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .execute(conn)
    .await
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_database_is_unavailable_and_not_serving_until_writable_again() {
    let db = test_db(Backend::Postgres).await;
    let app = TestApp::spawn_with(&db, |c| {
        c.storage_probe_interval = Duration::from_millis(100);
    })
    .await;
    let mut client = app.client.clone();
    client
        .signup(signup_req("before@ro.dz", "dev", ""))
        .await
        .unwrap();
    assert!(wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(5)).await);
    let name = db.url.rsplit('/').next().unwrap().to_owned();

    set_read_only(&name, true).await;
    assert!(
        wait_health(app.addr, ServingStatus::NotServing, Duration::from_secs(10)).await,
        "a read-only database must turn health NOT_SERVING"
    );
    let refused = client
        .signup(signup_req("during@ro.dz", "dev", "LAUNCH30"))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), error_code(&refused).as_str()),
        (tonic::Code::Unavailable, "unavailable"),
        "{refused:?}"
    );
    // Reads still work.
    remaining(&mut client, "LAUNCH30").await;

    set_read_only(&name, false).await;
    assert!(
        wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(10)).await,
        "health must recover by itself"
    );
    let after = client
        .signup(signup_req("after@ro.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    assert_nothing_answered_unsaved(&mut client, &[after]).await;
    app.stop().await.unwrap();
}

/// A TCP proxy between the service and the PostgreSQL server, which the test closes (the port
/// refuses connections and every open one is cut, as when the server goes away), stalls (bytes
/// stop flowing on every connection, new ones are accepted and never answered: a network
/// partition) and reopens on the same port.
struct DbProxy {
    addr: std::net::SocketAddr,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
    stalled: tokio::sync::watch::Sender<bool>,
}

impl DbProxy {
    /// A proxy to the server of the database at `db_url`; returns it and the URL through it.
    async fn start(db_url: &str) -> (DbProxy, String) {
        let (scheme, rest) = db_url.split_once("://").unwrap();
        let (userinfo, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let (host, path) = rest.split_once('/').unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxy = DbProxy {
            addr,
            upstream: host.to_owned(),
            task: None,
            stalled: tokio::sync::watch::Sender::new(false),
        };
        proxy.serve(listener);
        let at = if userinfo.is_empty() {
            String::new()
        } else {
            format!("{userinfo}@")
        };
        (proxy, format!("{scheme}://{at}{addr}/{path}"))
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.stalled.send_replace(false);
        let stalled = self.stalled.subscribe();
        self.task = Some(tokio::spawn(async move {
            // Dropped with this task: aborting it cuts every proxied connection.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let mut stalled = stalled.clone();
                conns.spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                        _ = stalled.wait_for(|s| *s) => {}
                    }
                    // Stalled: both sockets stay open, nothing is read or written.
                    std::future::pending::<()>().await;
                    drop((client, server));
                });
                while conns.try_join_next().is_some() {}
            }
        }));
    }

    /// A network partition: every connection, open or new, stops carrying bytes.
    fn stall(&self) {
        self.stalled.send_replace(true);
    }

    /// The database becomes unreachable: connections refused, open ones cut.
    async fn close(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Reachable again, on the same port.
    fn open(&mut self) {
        let listener = iafactory::net::bind(self.addr).unwrap();
        self.serve(listener);
    }
}

/// `promo-service healthcheck` (the real binary) against the service at `addr`: exit code and line.
async fn healthcheck_binary(addr: std::net::SocketAddr) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_promo-service"))
        .arg("healthcheck")
        .env_clear()
        .env("PROMO_SERVICE_ADDR", addr.to_string())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    )
}

/// PostgreSQL unreachable while the service runs (the proxy in front of it closed): health turns
/// NOT_SERVING within a few seconds — the probe has a time limit of its own, shorter than the
/// pool's acquire timeout — `healthcheck` exits 1, a signup is refused as `unavailable`; once the
/// database is reachable again, the service is SERVING again by itself and signups are saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_postgres_turns_health_not_serving_until_it_is_back() {
    let db = test_db(Backend::Postgres).await;
    let (mut proxy, url) = DbProxy::start(&db.url).await;
    let app = TestApp::spawn_on(&url, |c| {
        c.storage_probe_interval = Duration::from_millis(200);
    })
    .await;
    let mut client = app.client.clone();
    client
        .signup(signup_req("before@down.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    assert!(wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(5)).await);
    let (code, line) = healthcheck_binary(app.addr).await;
    assert_eq!(code, Some(0), "{line}");
    assert!(line.contains("SERVING"), "{line}");

    proxy.close().await;
    let lost = std::time::Instant::now();
    assert!(
        wait_health(app.addr, ServingStatus::NotServing, Duration::from_secs(6)).await,
        "an unreachable database must turn health NOT_SERVING within a few seconds"
    );
    eprintln!(
        "NOT_SERVING {:?} after the database went away",
        lost.elapsed()
    );
    let (code, line) = healthcheck_binary(app.addr).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("NOT_SERVING"), "{line}");
    let refused = client
        .signup(signup_req("during@down.dz", "dev", "LAUNCH30"))
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), error_code(&refused).as_str()),
        (tonic::Code::Unavailable, "unavailable"),
        "{refused:?}"
    );

    proxy.open();
    assert!(
        wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(10)).await,
        "health must recover by itself once the database is reachable"
    );
    let (code, line) = healthcheck_binary(app.addr).await;
    assert_eq!(code, Some(0), "{line}");
    let after = client
        .signup(signup_req("after@down.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    assert_nothing_answered_unsaved(&mut client, &[after]).await;
    app.stop().await.unwrap();
    proxy.close().await;
    db.close().await;
}

/// PostgreSQL behind a network partition (the proxy stalls: connections stay open and carry
/// nothing, new ones are never answered): a probe would wait forever on its query, so only its
/// time limit turns health NOT_SERVING — within a few seconds; back to SERVING once the
/// database is reachable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_postgres_turns_health_not_serving_within_seconds() {
    let db = test_db(Backend::Postgres).await;
    let (mut proxy, url) = DbProxy::start(&db.url).await;
    let app = TestApp::spawn_on(&url, |c| {
        c.storage_probe_interval = Duration::from_millis(200);
    })
    .await;
    assert!(wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(5)).await);

    proxy.stall();
    let lost = std::time::Instant::now();
    assert!(
        wait_health(app.addr, ServingStatus::NotServing, Duration::from_secs(8)).await,
        "a partitioned database must turn health NOT_SERVING within a few seconds"
    );
    let took = lost.elapsed();
    eprintln!("NOT_SERVING {took:?} after the partition");
    assert!(
        took >= Duration::from_secs(2),
        "the probe's time limit decides: {took:?}"
    );
    let (code, line) = healthcheck_binary(app.addr).await;
    assert_eq!(code, Some(1), "{line}");

    proxy.close().await;
    proxy.open();
    assert!(
        wait_health(app.addr, ServingStatus::Serving, Duration::from_secs(15)).await,
        "health must recover by itself once the database is reachable"
    );
    app.client
        .clone()
        .signup(signup_req("after@partition.dz", "dev", ""))
        .await
        .unwrap();
    app.stop().await.unwrap();
    proxy.close().await;
    db.close().await;
}
