//! A SIGKILL of the `llm-gateway` binary under load loses no answered call: unary calls and
//! streams run concurrently against a real gateway process, the process is killed, restarted
//! on the same database, and its usage report is compared with what the clients received and
//! what the (local, paced) upstream produced. And a store that cannot take a charge turns the
//! call into `UNAVAILABLE`, never into an uncharged answer, and recovers by itself. On SQLite
//! and on PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_client::LlmGatewayClient;
use tonic::transport::Channel;

use crate::helpers::{
    Backend, Gw, Promo, authed, catalog, chat_req, config, error_code, model, provider, test_db,
    text_of,
};
use crate::on_both_backends;
use crate::process::{command, free_port};
use iafactory_testkit::upstream::{Reply, Upstream, openai_ok, openai_stream};

/// Tokens the upstream reports for a unary answer.
const UNARY_PROMPT: u64 = 7;
const UNARY_COMPLETION: u64 = 5;
/// Short streams complete long before the kill; their upstream count.
const SHORT_PIECES: usize = 3;
const SHORT_PROMPT: u64 = 11;
const SHORT_COMPLETION: u64 = 13;
/// Long streams are cut by the kill: pieces of 4 characters (one estimated token each), one
/// every `LONG_EVERY`.
const LONG_STREAMS: usize = 4;
const LONG_PIECES: usize = 400;
const LONG_EVERY: Duration = Duration::from_millis(5);
const UNARY_WORKERS: usize = 8;

fn events(reply: Reply) -> Vec<String> {
    match reply {
        Reply::Sse { events, .. } => events,
        other => panic!("not a stream: {other:?}"),
    }
}

/// Starts the binary on `port` and waits until it answers.
pub(crate) async fn start_binary(
    dir: &std::path::Path,
    db_url: &str,
    promo: &Promo,
    catalog: &std::path::Path,
) -> (tokio::process::Child, LlmGatewayClient<Channel>) {
    let port = free_port();
    let child = command(dir)
        .env("DATABASE_URL", db_url)
        .env("LLM_GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMO_SERVICE_URL", promo.url())
        .env("LLM_GATEWAY_CATALOG", catalog)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..400 {
        if let Ok(mut c) = LlmGatewayClient::connect(format!("http://127.0.0.1:{port}")).await
            && c.list_models(pb::ListModelsRequest {}).await.is_ok()
        {
            return (child, c);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the binary did not come up");
}

async fn usage(client: &mut LlmGatewayClient<Channel>, key: &str) -> pb::UsageReport {
    client
        .get_usage(authed(pb::GetUsageRequest {}, key))
        .await
        .unwrap()
        .into_inner()
}

fn stream_req(text: &str) -> pb::ChatRequest {
    chat_req("m", text)
}

/// Pieces (4 characters each) received on a stream until it ended; whether it completed.
async fn run_stream(
    mut client: LlmGatewayClient<Channel>,
    key: String,
    text: String,
) -> (usize, bool) {
    let Ok(resp) = client.chat_stream(authed(stream_req(&text), &key)).await else {
        return (0, false);
    };
    let mut s = resp.into_inner();
    let mut chars = 0;
    // Bounded: at most every piece, the end event and the error.
    for _ in 0..LONG_PIECES + 4 {
        match s.message().await {
            Ok(Some(ev)) => match ev.event {
                Some(pb::chat_stream_event::Event::Delta(d)) => chars += d.content.chars().count(),
                Some(pb::chat_stream_event::Event::End(_)) => return (chars / 4, true),
                None => {}
            },
            Ok(None) | Err(_) => break,
        }
    }
    (chars / 4, false)
}

async fn sigkill_loses_no_answered_call(backend: Backend) {
    // One counter of produced events per long stream, picked by the stream's prompt.
    let produced: Arc<Vec<Arc<AtomicUsize>>> =
        Arc::new((0..LONG_STREAMS).map(|_| Arc::default()).collect());
    let long_events = events(openai_stream(&["abcd"; LONG_PIECES], 9, 999));
    let short_events = events(openai_stream(
        &["wxyz"; SHORT_PIECES],
        SHORT_PROMPT as u32,
        SHORT_COMPLETION as u32,
    ));
    let up_produced = produced.clone();
    let up = Upstream::start(move |req, _| {
        let text = req.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        if let Some(i) = text
            .strip_prefix("long-")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Reply::SsePaced {
                events: long_events.clone(),
                every: LONG_EVERY,
                sent: up_produced[i].clone(),
            }
        } else if text == "short" {
            Reply::SsePaced {
                events: short_events.clone(),
                every: Duration::from_millis(1),
                sent: Arc::default(),
            }
        } else {
            openai_ok("answer", UNARY_PROMPT as u32, UNARY_COMPLETION as u32)
        }
    })
    .await;

    let mut promo = Promo::start().await;
    // Limits far above what the test uses: only accounting is under test.
    promo
        .set_package("premium", 1_000_000, 1_000_000_000, "")
        .await;
    let (_, unary_key) = promo.signup("premium").await;
    let (_, short_key) = promo.signup("premium").await;
    let mut long_keys = Vec::new();
    for _ in 0..LONG_STREAMS {
        long_keys.push(promo.signup("premium").await.1);
    }

    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[providers.local]\nkind = \"openai\"\nbase_url = \"{}\"\nrequires_key = false\n\n\
             [[models]]\nname = \"m\"\nroutes = [{{ provider = \"local\", model = \"up\", input_usd_per_mtok = 1, output_usd_per_mtok = 2 }}]\n",
            up.url("/v1")
        ),
    )
    .unwrap();
    let db = test_db(backend).await;
    let (mut child, client) = start_binary(dir.path(), &db.url, &promo, &catalog).await;

    // Load: unary workers, one worker chaining short streams, long streams.
    let mut unary = Vec::new();
    for _ in 0..UNARY_WORKERS {
        let (mut c, key) = (client.clone(), unary_key.clone());
        unary.push(tokio::spawn(async move {
            let mut answered = 0u64;
            for _ in 0..1_000_000 {
                match c.chat(authed(chat_req("m", "hi"), &key)).await {
                    Ok(r) => {
                        assert_eq!(text_of(r.into_inner().message.as_ref()), "answer");
                        answered += 1;
                    }
                    Err(_) => return (answered, 1u64),
                }
            }
            (answered, 0)
        }));
    }
    let (c, key) = (client.clone(), short_key.clone());
    let short = tokio::spawn(async move {
        let (mut completed, mut cut) = (0u64, 0u64);
        for _ in 0..1_000_000 {
            match run_stream(c.clone(), key.clone(), "short".into()).await {
                (_, true) => completed += 1,
                _ => {
                    cut += 1;
                    break;
                }
            }
        }
        (completed, cut)
    });
    let mut long = Vec::new();
    for (i, key) in long_keys.iter().enumerate() {
        long.push(tokio::spawn(run_stream(
            client.clone(),
            key.clone(),
            format!("long-{i}"),
        )));
    }

    // Kill once every long stream is well under way (bounded wait).
    for _ in 0..400 {
        if produced.iter().all(|p| p.load(Ordering::SeqCst) > 100) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the process dies")
        .unwrap();
    assert!(!status.success(), "killed, not stopped: {status:?}");

    let (mut answered, mut in_flight) = (0, 0);
    for t in unary {
        let (a, f) = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap();
        answered += a;
        in_flight += f;
    }
    let (short_done, short_cut) = tokio::time::timeout(Duration::from_secs(30), short)
        .await
        .unwrap()
        .unwrap();
    let mut received = Vec::new();
    for t in long {
        received.push(
            tokio::time::timeout(Duration::from_secs(30), t)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(answered > 0 && short_done > 0, "load ran before the kill");

    // Restart on the same database: the report comes from the store alone.
    let (mut child, mut client) = start_binary(dir.path(), &db.url, &promo, &catalog).await;

    // Unary: every answered call is charged; the only calls charged beyond those are the ones
    // in flight at the kill (charged, then killed before their answer left).
    let u = usage(&mut client, &unary_key).await;
    assert!(
        u.requests >= answered && u.requests <= answered + in_flight,
        "unary: {answered} answered, {in_flight} in flight at the kill, {} charged",
        u.requests
    );
    assert_eq!(u.prompt_tokens, u.requests * UNARY_PROMPT);
    assert_eq!(u.completion_tokens, u.requests * UNARY_COMPLETION);

    // Completed short streams are charged the provider's count; the one cut at the kill, if
    // it delivered anything, at most its full count.
    let s = usage(&mut client, &short_key).await;
    assert!(
        s.requests >= short_done && s.requests <= short_done + short_cut,
        "short streams: {short_done} completed, {short_cut} cut, {} charged",
        s.requests
    );
    assert!(s.completion_tokens >= short_done * SHORT_COMPLETION);
    assert!(s.completion_tokens <= s.requests * SHORT_COMPLETION);

    // Cut streams: charged at least what the client received, at most what the upstream
    // produced (events minus the leading role event; one token per piece).
    for (i, key) in long_keys.iter().enumerate() {
        let (got, completed) = received[i];
        assert!(!completed, "long stream {i} was cut by the kill");
        assert!(
            got > 0,
            "long stream {i} delivered something before the kill"
        );
        let produced = produced[i]
            .load(Ordering::SeqCst)
            .saturating_sub(1)
            .min(LONG_PIECES) as u64;
        let r = usage(&mut client, key).await;
        assert_eq!(r.requests, 1, "long stream {i}");
        assert!(r.prompt_tokens > 0, "long stream {i}: prompt charged");
        assert!(
            r.completion_tokens >= got as u64 && r.completion_tokens <= produced,
            "long stream {i}: received {got}, produced {produced}, charged {}",
            r.completion_tokens
        );
    }

    child.start_kill().unwrap();
    let _ = child.wait().await;
    promo.stop().await;
    db.close().await;
}

/// The usage table as the migration creates it (the test drops it to break the store).
const USAGE_TABLE: &str = "CREATE TABLE llm_usage (key_id TEXT NOT NULL, day TEXT NOT NULL, \
     model TEXT NOT NULL, provider TEXT NOT NULL, user_id TEXT NOT NULL, \
     requests BIGINT NOT NULL DEFAULT 0, prompt_tokens BIGINT NOT NULL DEFAULT 0, \
     completion_tokens BIGINT NOT NULL DEFAULT 0, cost_nano_usd BIGINT NOT NULL DEFAULT 0, \
     updated_at BIGINT NOT NULL, PRIMARY KEY (key_id, day, model, provider))";

async fn store_failure_is_unavailable_never_an_uncharged_answer(backend: Backend) {
    let up = Upstream::start(|req, _| {
        if req.body["stream"].as_bool() == Some(true) {
            openai_stream(&["un ", "deux"], 3, 2)
        } else {
            openai_ok("answer", 3, 2)
        }
    })
    .await;
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("premium").await;
    let db = test_db(backend).await;
    let cat = catalog(&format!(
        "{}{}",
        provider("alpha", "openai", &up.url("/v1")),
        model("m", &[("alpha", "a", 1.0, 2.0)])
    ));
    let mut gw = Gw::start(config(&db, &promo, cat)).await;
    gw.client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();

    // The store cannot take a charge: the provider answers, the caller gets UNAVAILABLE.
    db.exec("DROP TABLE llm_usage").await;
    let before = up.count();
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(error_code(&err), "unavailable");
    assert_eq!(up.count(), before + 1, "the provider did answer");
    // A stream ends with UNAVAILABLE before its first chunk leaves.
    let mut s = gw
        .client
        .chat_stream(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap()
        .into_inner();
    let first = s.message().await;
    match first {
        Err(e) => assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}"),
        Ok(ev) => panic!("a chunk left uncharged: {ev:?}"),
    }

    // Back by itself once the store is: the next call is answered and charged.
    db.exec(USAGE_TABLE).await;
    gw.client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();
    let u = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        u.requests, 1,
        "only the answer after the repair is in the new table"
    );
    assert_eq!(u.total_tokens, 5);
    gw.stop().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(
    sigkill_loses_no_answered_call,
    store_failure_is_unavailable_never_an_uncharged_answer,
);
