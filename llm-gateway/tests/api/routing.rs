//! Failure handling, asserted from what the upstreams actually received: retries honouring
//! Retry-After, fallbacks, timeouts, malformed answers, broken streams, wrong keys, circuit
//! breakers, routing policies, and the offline mock.

use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use tonic::Code;

use crate::helpers::*;
use iafactory_testkit::upstream::*;

/// Two OpenAI-compatible providers behind model "m": alpha first, then beta.
fn two(alpha: &Upstream, beta: &Upstream) -> String {
    format!(
        "{}{}{}",
        provider("alpha", "openai", &alpha.url("/v1")),
        provider("beta", "openai", &beta.url("/v1")),
        model(
            "m",
            &[
                ("alpha", "a-model", 1.0, 1.0),
                ("beta", "b-model", 5.0, 5.0)
            ]
        )
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_upstream_is_retried_after_its_retry_after() {
    let alpha = Upstream::start(|_, n| {
        if n == 0 {
            error(429, "slow down").with_header("retry-after", "1")
        } else {
            openai_ok("second try", 3, 2)
        }
    })
    .await;
    let beta = Upstream::always(openai_ok("beta", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "alpha");
    assert_eq!(text_of(r.message.as_ref()), "second try");
    assert_eq!(r.attempts, 2);
    assert_eq!(alpha.count(), 2);
    assert_eq!(beta.count(), 0);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_longer_than_allowed_falls_back_at_once() {
    let alpha =
        Upstream::always(error(429, "come back tomorrow").with_header("retry-after", "3600")).await;
    let beta = Upstream::always(openai_ok("beta", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "beta");
    assert_eq!(
        alpha.count(),
        1,
        "no retry when Retry-After exceeds the limit"
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_then_fall_back() {
    let alpha = Upstream::always(error(500, "boom")).await;
    let beta = Upstream::always(openai_ok("from beta", 4, 4)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "beta");
    assert_eq!(r.upstream_model, "b-model");
    assert_eq!(r.attempts, 3);
    assert_eq!(alpha.count(), 2, "max_attempts_per_provider = 2");
    assert_eq!(beta.count(), 1);
    // Cost comes from the serving route's prices.
    assert!((r.cost_usd - 8.0 * 5.0 / 1e6).abs() < 1e-12);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_failing_is_upstream_error() {
    let alpha = Upstream::always(error(503, "down")).await;
    let beta = Upstream::always(error(502, "down too")).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let err = env.chat("m", "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(error_code(&err), "upstream_error");
    assert!(
        err.message().contains("alpha: http_503"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("beta: http_502"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("sk-"), "no key leaks");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_times_out_and_falls_back() {
    let alpha = Upstream::always(openai_ok("too late", 1, 1).delayed(Duration::from_secs(3))).await;
    let beta = Upstream::always(openai_ok("in time", 1, 1)).await;
    let mut env = Env::start_with(&two(&alpha, &beta), |c| {
        c.routing.attempt_timeout = Duration::from_millis(300);
    })
    .await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "beta");
    assert_eq!(
        alpha.count(),
        1,
        "a timeout is not retried on the same provider"
    );
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.last_error, "timeout");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_slow_upstreams_give_deadline_exceeded() {
    let alpha = Upstream::always(openai_ok("late", 1, 1).delayed(Duration::from_secs(3))).await;
    let toml = format!(
        "{}{}",
        provider("alpha", "openai", &alpha.url("/v1")),
        model("m", &[("alpha", "a", 1.0, 1.0)])
    );
    let mut env = Env::start_with(&toml, |c| {
        c.routing.attempt_timeout = Duration::from_millis(200);
    })
    .await;
    let err = env.chat("m", "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(error_code(&err), "upstream_timeout");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_falls_back() {
    let alpha = Upstream::always(Reply::raw(200, "{\"choices\": [ not json")).await;
    let beta = Upstream::always(openai_ok("fine", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "beta");
    assert_eq!(alpha.count(), 1);
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.last_error, "malformed");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_provider_key_is_not_retried_and_falls_back() {
    let alpha = Upstream::always(error(401, "Incorrect API key provided")).await;
    let beta = Upstream::always(openai_ok("fine", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "beta");
    assert_eq!(alpha.count(), 1, "401 is not retried");
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.last_error, "http_401");
    assert_eq!(a.failures, 1);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rejected_upstream_is_the_clients_error_without_fallback() {
    let alpha = Upstream::always(error(400, "context too long")).await;
    let beta = Upstream::always(openai_ok("fine", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let err = env.chat("m", "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("context too long"));
    assert_eq!(beta.count(), 0);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_dropped_mid_way_is_not_retried_after_the_first_token() {
    let alpha =
        Upstream::always(openai_stream(&["un ", "deux ", "trois"], 1, 3).dropping_after(3)).await;
    let beta = Upstream::always(openai_stream(&["beta"], 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let (events, err) = env.stream("m", "hi").await.unwrap();
    let (text, end) = stream_text(&events);
    assert_eq!(text, "un deux ", "what arrived before the cut is delivered");
    assert!(end.is_none());
    let err = err.expect("the stream ends with an error");
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(error_code(&err), "upstream_error");
    assert_eq!(alpha.count(), 1);
    assert_eq!(beta.count(), 0, "never retried after the first token");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_failing_before_the_first_token_falls_back() {
    // alpha: drops after the role-only chunk (no content yet); beta answers.
    let alpha = Upstream::always(openai_stream(&["x"], 1, 1).dropping_after(1)).await;
    let beta = Upstream::always(openai_stream(&["from ", "beta"], 1, 2)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let (events, err) = env.stream("m", "hi").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    let (text, end) = stream_text(&events);
    assert_eq!(text, "from beta");
    assert_eq!(events[0].provider, "beta");
    assert_eq!(end.unwrap().attempts, 2);
    assert_eq!(alpha.count(), 1);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_with_500_falls_back() {
    let alpha = Upstream::always(error(500, "boom")).await;
    let beta = Upstream::always(openai_stream(&["ok"], 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let (events, err) = env.stream("m", "hi").await.unwrap();
    assert!(err.is_none());
    assert_eq!(stream_text(&events).0, "ok");
    assert_eq!(alpha.count(), 2);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_opens_after_consecutive_failures_and_half_opens_after_cool_down() {
    let alpha = Upstream::start(|_, n| {
        if n < 3 {
            error(503, "down")
        } else {
            openai_ok("alpha is back", 1, 1)
        }
    })
    .await;
    let beta = Upstream::always(openai_ok("beta", 1, 1)).await;
    let mut env = Env::start_with(&two(&alpha, &beta), |c| {
        c.routing.max_attempts_per_provider = 1;
        c.routing.breaker_failure_threshold = 3;
        // Long enough that the calls made while open cannot outlast it even on a loaded machine.
        c.routing.breaker_cooldown = Duration::from_millis(1500);
    })
    .await;
    for _ in 0..3 {
        assert_eq!(env.chat("m", "hi").await.unwrap().provider, "beta");
    }
    assert_eq!(alpha.count(), 3);
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.circuit_state, pb::CircuitState::Open as i32);
    assert_eq!(a.consecutive_failures, 3);

    // Open: alpha is skipped entirely.
    for _ in 0..3 {
        assert_eq!(env.chat("m", "hi").await.unwrap().provider, "beta");
    }
    assert_eq!(alpha.count(), 3, "no call reaches an open circuit");

    // After the cool-down one trial goes through; it succeeds and closes the circuit.
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "alpha");
    assert_eq!(alpha.count(), 4);
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.circuit_state, pb::CircuitState::Closed as i32);
    assert!(
        env.gw
            .handle
            .metrics_text()
            .contains("iaf_llm_circuit_state{provider=\"alpha\"} 0")
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_circuits_open_is_unavailable_without_calling_anyone() {
    let alpha = Upstream::always(error(500, "down")).await;
    let toml = format!(
        "{}{}",
        provider("alpha", "openai", &alpha.url("/v1")),
        model("m", &[("alpha", "a", 1.0, 1.0)])
    );
    let mut env = Env::start_with(&toml, |c| {
        c.routing.max_attempts_per_provider = 1;
        c.routing.breaker_failure_threshold = 1;
    })
    .await;
    assert_eq!(
        error_code(&env.chat("m", "hi").await.unwrap_err()),
        "upstream_error"
    );
    let err = env.chat("m", "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(error_code(&err), "unavailable");
    let retry: u64 = md(&err, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(alpha.count(), 1);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowest_cost_policy_prefers_the_cheaper_route() {
    let alpha = Upstream::always(openai_ok("alpha", 1, 1)).await;
    let beta = Upstream::always(openai_ok("beta", 1, 1)).await;
    let toml = format!(
        "{}{}[[models]]\nname = \"m\"\npolicy = \"lowest-cost\"\nroutes = [{{ provider = \"alpha\", model = \"a\", input_usd_per_mtok = 9.0, output_usd_per_mtok = 9.0 }}, {{ provider = \"beta\", model = \"b\", input_usd_per_mtok = 0.1, output_usd_per_mtok = 0.2 }}]\n",
        provider("alpha", "openai", &alpha.url("/v1")),
        provider("beta", "openai", &beta.url("/v1")),
    );
    let mut env = Env::start(&toml).await;
    assert_eq!(env.chat("m", "hi").await.unwrap().provider, "beta");
    // A per-request policy overrides the model's.
    let mut req = chat_req("m", "hi");
    req.policy = pb::RoutingPolicy::Fallback as i32;
    let r = env
        .gw
        .client
        .chat(authed(req, &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.provider, "alpha");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowest_latency_policy_learns_the_faster_provider() {
    let alpha = Upstream::always(openai_ok("slow", 1, 1).delayed(Duration::from_millis(400))).await;
    let beta = Upstream::always(openai_ok("fast", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    let send = |env: &mut Env| {
        let mut req = chat_req("m", "hi");
        req.policy = pb::RoutingPolicy::LowestLatency as i32;
        let key = env.key.clone();
        let mut client = env.gw.client.clone();
        async move { client.chat(authed(req, &key)).await.unwrap().into_inner() }
    };
    // Unmeasured providers are tried first (alpha, then beta), then the faster one wins.
    send(&mut env).await;
    send(&mut env).await;
    for _ in 0..3 {
        assert_eq!(send(&mut env).await.provider, "beta");
    }
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    let b = p.providers.iter().find(|p| p.name == "beta").unwrap();
    assert!(a.ewma_latency_ms > b.ewma_latency_ms);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_key_the_labelled_mock_answers() {
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let mut gw = Gw::start(config(&db, &promo, catalog)).await;
    let r = gw
        .client
        .chat(authed(chat_req("gpt-4o-mini", "Bonjour"), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.provider, "mock");
    assert!(text_of(r.message.as_ref()).starts_with("[mock]"));
    assert_eq!(r.cost_usd, 0.0);
    let mut s = gw
        .client
        .chat_stream(authed(chat_req("llama-3.3-70b", "Bonjour"), &key))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(ev) = s.message().await.unwrap() {
        events.push(ev);
    }
    let (text, end) = stream_text(&events);
    assert!(text.starts_with("[mock]"));
    assert!(end.is_some());
    let p = gw
        .client
        .list_providers(crate::helpers::internal(pb::ListProvidersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(p.mock_active);
    // The mock's speed is not the platform's: no median latency is published from it.
    assert_eq!((p.median_latency_ms, p.recent_calls), (None, 0));
    assert!(
        p.providers
            .iter()
            .filter(|p| p.name != "mock")
            .all(|p| !p.configured)
    );
    let m = gw
        .client
        .list_models(pb::ListModelsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(m.models.len() >= 8);
    assert!(m.models.iter().all(|m| m.available));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_4xx_never_5xx() {
    let alpha = Upstream::always(openai_ok("x", 1, 1)).await;
    let beta = Upstream::always(openai_ok("x", 1, 1)).await;
    let mut env = Env::start(&two(&alpha, &beta)).await;
    // Unknown model.
    let err = env.chat("nope", "hi").await.unwrap_err();
    assert_eq!(
        (err.code(), error_code(&err).as_str()),
        (Code::NotFound, "model_not_found")
    );
    // Invalid fields.
    let mut req = chat_req("m", "hi");
    req.temperature = Some(7.0);
    let err = env.gw.client.chat(authed(req, &env.key)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut req = chat_req("m", "hi");
    req.messages[1].role = 99;
    let err = env
        .gw
        .client
        .chat_stream(authed(req, &env.key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // No key, garbage key, unknown key.
    let err = env.gw.client.chat(chat_req("m", "hi")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = env
        .gw
        .client
        .chat(authed(chat_req("m", "hi"), "garbage"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = env
        .gw
        .client
        .chat(authed(
            chat_req("m", "hi"),
            "iaf_0000000000000000000000000000",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = env
        .gw
        .client
        .get_usage(pb::GetUsageRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(
        alpha.count() + beta.count(),
        0,
        "nothing reached a provider"
    );
    env.gw.stop().await;
}
