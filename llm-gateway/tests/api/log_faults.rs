//! The request log under faults. The log is written off the request path in batches (see
//! `llm_gateway::request_log`): unlike usage, its rows are not durable when the answer leaves,
//! so what may be lost, and how it is seen, is what these tests pin down.
//!
//! - **SIGKILL** of the `llm-gateway` binary during a load of chat calls, then a restart on the
//!   same database: the database is intact, every answered call is charged (its usage is in
//!   the store), the log misses at most the rows of the last batch window before the kill —
//!   the rows of calls answered within [`LOG_WINDOW_BOUND`] of it — and logs again after the
//!   restart. Both backends.
//! - **Full disk** (SQLite on a small tmpfs): chat is refused cleanly (`unavailable`) when its
//!   usage cannot be written, or answered with its usage saved; every row the log could not
//!   write is counted in its metrics; both recover by themselves when space returns. SQLite only:
//!   a PostgreSQL server's disk is not the test's to fill (its write failures are covered by
//!   `crash::store_failure_is_unavailable_never_an_uncharged_answer`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use iafactory::proto::iafactory::llm::v1 as pb;
use iafactory_testkit::disk::SmallDisk;
use iafactory_testkit::health::wait_grpc_health;
use iafactory_testkit::upstream::{Upstream, openai_ok};
use pb::llm_gateway_client::LlmGatewayClient;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::crash::start_binary;
use crate::helpers::*;
use crate::on_both_backends;

/// The most a SIGKILL may cost the log: the rows of calls answered within this long before the
/// kill. A row leaves the call at once; the writer gathers rows for at most its linger (50 ms)
/// after the first of a batch, then commits them in one transaction, while the next rows gather.
/// So a row is committed at most one linger plus two transactions (the one in progress when it
/// arrived, and its own) after its call ended. Those take milliseconds alone; one second leaves
/// room for a loaded two-core test machine.
const LOG_WINDOW_BOUND: Duration = Duration::from_secs(1);

const WORKERS: usize = 8;

/// The first column, as text, of the rows `sql` gives in the request log of the gateway
/// database at `url` (on SQLite the log has a file of its own beside the database).
async fn log_strings(url: &str, sql: &str) -> Vec<String> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let url = llm_gateway::store::request_log_url(url);
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    rows.iter().map(|r| r.get::<String, _>(0)).collect()
}

/// Rows of `user_id` in the request log (`extra`: more conditions).
async fn log_rows(url: &str, user_id: &str, extra: &str) -> u64 {
    let sql = format!(
        "SELECT CAST(COUNT(*) AS TEXT) FROM llm_request_log WHERE user_id = '{user_id}'{extra}"
    );
    log_strings(url, &sql).await[0].parse().unwrap()
}

const OK: &str = " AND status = 'ok'";

async fn requests_charged(client: &mut LlmGatewayClient<Channel>, key: &str) -> u64 {
    client
        .get_usage(authed(pb::GetUsageRequest {}, key))
        .await
        .unwrap()
        .into_inner()
        .requests
}

async fn sigkill_loses_at_most_the_last_log_window(backend: Backend) {
    let up = Upstream::always(openai_ok("answer", 7, 5).delayed(Duration::from_millis(2))).await;
    let mut promo = Promo::start().await;
    // Limits far above what the test uses.
    promo
        .set_package("premium", 1_000_000, 1_000_000_000, "")
        .await;
    let (user_id, key) = promo.signup("premium").await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[providers.local]\nkind = \"openai\"\nbase_url = \"{}\"\nrequires_key = false\n\n{}",
            up.url("/v1"),
            model("m", &[("local", "up", 1.0, 2.0)])
        ),
    )
    .unwrap();
    let db = test_db(backend).await;
    let (mut child, client) = start_binary(dir.path(), &db.url, &promo, &catalog).await;

    // Load: workers chaining chat calls, each answer's instant kept.
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (mut c, key) = (client.clone(), key.clone());
        workers.push(tokio::spawn(async move {
            let mut answered_at = Vec::new();
            for _ in 0..1_000_000 {
                match c.chat(authed(chat_req("m", "hi"), &key)).await {
                    Ok(_) => answered_at.push(Instant::now()),
                    Err(_) => return (answered_at, 1u64),
                }
            }
            (answered_at, 0)
        }));
    }
    // Kill under way: after a second of load (bounded by the count logged so far).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    child.start_kill().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process dies")
        .unwrap();
    assert!(!status.success(), "killed, not stopped: {status:?}");
    let (mut answered_at, mut in_flight) = (Vec::new(), 0);
    for w in workers {
        let (a, f) = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .unwrap()
            .unwrap();
        answered_at.extend(a);
        in_flight += f;
    }
    let answered = answered_at.len() as u64;
    assert!(
        answered > 50,
        "load ran before the kill ({answered} answered)"
    );
    let in_window = answered_at
        .iter()
        .filter(|t| killed_at.saturating_duration_since(**t) < LOG_WINDOW_BOUND)
        .count() as u64;

    // The database is intact: the gateway restarts on it (its migrations check it), SQLite's
    // own check finds nothing wrong, and every answered call is charged.
    let (mut child, mut client) = start_binary(dir.path(), &db.url, &promo, &catalog).await;
    if backend == Backend::Sqlite {
        assert_eq!(
            db.query_strings("PRAGMA integrity_check").await,
            vec!["ok".to_owned()]
        );
        assert_eq!(
            log_strings(&db.url, "PRAGMA integrity_check").await,
            vec!["ok".to_owned()],
            "the request log's file"
        );
    }
    let charged = requests_charged(&mut client, &key).await;
    assert!(
        charged >= answered && charged <= answered + in_flight,
        "{answered} answered, {in_flight} in flight at the kill, {charged} charged"
    );

    // The log: no more rows than calls, and the ones missing are at most those of the calls
    // answered in the last window before the kill.
    let logged_ok = log_rows(&db.url, &user_id, OK).await;
    let logged = log_rows(&db.url, &user_id, "").await;
    assert!(
        logged <= answered + in_flight,
        "{logged} rows for {answered} answered + {in_flight} in flight"
    );
    let lost = answered.saturating_sub(logged_ok);
    assert!(
        lost <= in_window,
        "{lost} answered calls missing from the log; only the {in_window} answered in the last {LOG_WINDOW_BOUND:?} before the kill may be ({answered} answered in {:?})",
        killed_at - started
    );
    tracing::info!(
        answered,
        in_flight,
        logged_ok,
        lost,
        in_window,
        "request log after a SIGKILL"
    );

    // Logging goes on after the restart: exactly one more row per call.
    let more = 20;
    for _ in 0..more {
        client
            .chat(authed(chat_req("m", "hi"), &key))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now_logged = log_rows(&db.url, &user_id, OK).await;
        if now_logged == logged_ok + more {
            break;
        }
        assert!(
            now_logged <= logged_ok + more && Instant::now() < deadline,
            "{now_logged} rows after {more} more calls on {logged_ok}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(sigkill_loses_at_most_the_last_log_window);

/// A counter's value in the Prometheus text (0 when absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// Rows the log lost and counted: dropped (buffer full) and given up (batch not written).
fn counted_lost(gw: &Gw) -> u64 {
    let m = gw.handle.metrics_text();
    counter(&m, "iaf_llm_request_log_dropped_total")
        + counter(&m, "iaf_llm_request_log_write_failed_total")
}

/// `n` chat calls, `parallel` at a time: (answered, refused `unavailable`). Any other outcome
/// fails the test.
async fn rush(gw: &Gw, key: &str, n: usize, parallel: usize) -> (u64, u64) {
    let (mut answered, mut refused) = (0, 0);
    let key: Arc<str> = key.into();
    for start in (0..n).step_by(parallel) {
        let calls = (start..n.min(start + parallel)).map(|_| {
            let (mut c, key) = (gw.client.clone(), key.clone());
            async move { c.chat(authed(chat_req("m", "hi"), &key)).await }
        });
        for r in join_all(calls).await {
            match r {
                Ok(a) => {
                    assert_eq!(text_of(a.into_inner().message.as_ref()), "answer");
                    answered += 1;
                }
                Err(e) => {
                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                    assert_eq!(error_code(&e), "unavailable", "{e:?}");
                    refused += 1;
                }
            }
        }
    }
    (answered, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_disk_refuses_cleanly_counts_lost_log_rows_and_recovers() {
    let disk = SmallDisk::mount("3m");
    let up = Upstream::always(openai_ok("answer", 7, 5)).await;
    let mut promo = Promo::start().await;
    promo
        .set_package("premium", 1_000_000, 1_000_000_000, "")
        .await;
    let (user_id, key) = promo.signup("premium").await;
    let url = format!("sqlite://{}/llm.db", disk.path().display());
    let cat = catalog(&format!(
        "{}{}",
        provider("local", "openai", &up.url("/v1")),
        model("m", &[("local", "up", 1.0, 2.0)])
    ));
    let mut config = llm_gateway::Config::new(url.clone(), promo.url(), cat);
    config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    config.routing = test_routing();
    config.usage_flush_interval = Duration::from_millis(100);
    let gw = Gw::start(config).await;

    // Before: answered, charged, logged.
    let (before, refused_before) = rush(&gw, &key, 10, 4).await;
    assert_eq!((before, refused_before), (10, 0));
    gw.handle.flush_request_log().await;
    assert_eq!(log_rows(&url, &user_id, "").await, 10);

    // The disk fills up; calls follow. Some writes may still fit (SQLite reuses its WAL), but no
    // call may be answered without its usage, and every refusal must be a clean `unavailable`.
    let filler = disk.fill();
    let (mut answered, mut refused) = (before, 0);
    for _ in 0..3 {
        let (a, r) = rush(&gw, &key, 150, 8).await;
        answered += a;
        refused += r;
    }
    assert!(
        refused > 0,
        "the full disk refused nothing: the test did not exercise it"
    );
    gw.handle.flush_request_log().await;
    assert!(
        wait_grpc_health(
            gw.handle.addr,
            ServingStatus::NotServing,
            Duration::from_secs(15),
            Duration::from_millis(100)
        )
        .await,
        "health must turn NOT_SERVING while writes fail"
    );
    let lost_while_full = counted_lost(&gw);
    assert!(
        lost_while_full > 0,
        "the log lost no row on a full disk: the test did not exercise it"
    );

    // Space returns: chat and the log recover by themselves.
    std::fs::remove_file(filler).unwrap();
    assert!(
        wait_grpc_health(
            gw.handle.addr,
            ServingStatus::Serving,
            Duration::from_secs(20),
            Duration::from_millis(100)
        )
        .await,
        "health must turn SERVING again once writes succeed"
    );
    let recovered_ms = iafactory::db::now_millis();
    let (after, refused_after) = rush(&gw, &key, 20, 4).await;
    assert_eq!((after, refused_after), (20, 0), "not recovered");
    answered += after;
    let calls = 10 + 450 + 20;
    gw.handle.flush_request_log().await;
    assert_eq!(
        counted_lost(&gw),
        lost_while_full,
        "rows lost after the space returned"
    );

    // Every answered call is charged; a refused one may be (its commit failed after the
    // provider's work was done: the store errs towards charging), never beyond the calls made.
    let mut client = gw.client.clone();
    let charged = requests_charged(&mut client, &key).await;
    assert!(
        charged >= answered && charged <= calls,
        "{answered} answered of {calls}, {charged} charged"
    );
    // Every call has its row, or is counted lost; no row twice.
    let logged = log_rows(&url, &user_id, "").await;
    assert!(logged <= calls, "{logged} rows for {calls} calls");
    assert!(
        logged + lost_while_full >= calls,
        "{logged} rows written + {lost_while_full} counted lost < {calls} calls: rows lost silently"
    );
    // The calls after the recovery are all logged.
    assert_eq!(
        log_rows(&url, &user_id, &format!(" AND at_ms >= {recovered_ms}")).await,
        after
    );
    tracing::info!(
        answered,
        refused,
        logged,
        lost_while_full,
        charged,
        "full disk"
    );
    gw.stop().await;
    promo.stop().await;
    drop(disk);
}
