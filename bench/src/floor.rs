//! `floor`: the platform's transport doing none of the platform's work.
//!
//! The performance issue asks for a chat call under 100 µs and a promo read under 50 µs of server
//! CPU, or for the floor that stops them, measured. This program is that floor. It makes the same
//! exchanges as the deployed services, with the same libraries and the same settings, and nothing
//! else:
//! - `floor edge` is gateway-rest's shape: HTTP/1.1 keep-alive in (hyper-util's server built by
//!   [`gateway_rest::connection_builder`], an axum router), one unary gRPC call out per request
//!   over gateway-rest's own [`Backend`] channels, a small JSON answer back;
//! - `floor grpc` is llm-gateway's and promo-service's shape: a tonic server on a `TCP_NODELAY`
//!   listener ([`iafactory::grpc::incoming`]); `Chat` makes one HTTP/1.1 call to the upstream
//!   with llm-gateway's own provider client ([`llm_gateway::providers::http_client`]) and returns
//!   its body; `GetRemaining` answers at once.
//!
//! No JSON is parsed, no key checked, no quota, usage row, request log, metric or span: what is
//! left is what any edge → gRPC → upstream design pays on this machine. `deployed --scenarios
//! floor-chat,floor-remaining` measures it exactly as it measures the platform, so the two rows
//! compare.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::routing::{get, post};
use clap::{Parser, Subcommand};
use gateway_rest::backend::Backend;
use http::{StatusCode, header};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use iafactory::clients::llm::v1::LlmGatewayClient;
use iafactory::clients::promo::v1::PromoServiceClient;
use iafactory::proto::iafactory::llm::v1 as llm;
use iafactory::proto::iafactory::promo::v1 as promo;
use tonic::server::Grpc;
use tonic_prost::ProstCodec;

#[derive(Parser, Debug)]
#[command(
    name = "floor",
    about = "The platform's transport (HTTP edge → gRPC → upstream) doing none of its work: the floor `deployed` compares the platform with"
)]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// The HTTP edge: `POST /v1/chat/completions` and `GET /api/promo/{code}/remaining`, each
    /// one unary gRPC call to `--grpc`.
    Edge {
        #[arg(long)]
        listen: SocketAddr,
        /// The `floor grpc` URL (`http://127.0.0.1:PORT`).
        #[arg(long)]
        grpc: String,
    },
    /// The gRPC hop: `LlmGateway/Chat` (one POST to `--upstream`) and
    /// `PromoService/GetRemaining` (answered at once).
    Grpc {
        #[arg(long)]
        listen: SocketAddr,
        /// The chat completions URL of the upstream.
        #[arg(long)]
        upstream: String,
    },
}

/// The request the floor's `Chat` sends upstream: what llm-gateway sends for the benchmark's call.
const UPSTREAM_REQUEST: &str =
    r#"{"model":"llama-3.3-70b-versatile","messages":[{"role":"user","content":"Bonjour"}]}"#;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let result = match args.role {
        Role::Edge { listen, grpc } => edge(listen, &grpc).await,
        Role::Grpc { listen, upstream } => grpc_hop(listen, upstream).await,
    };
    if let Err(e) = result {
        let _ = writeln!(std::io::stderr(), "floor: {e}");
        std::process::exit(1);
    }
}

async fn grpc_hop(listen: SocketAddr, upstream: String) -> Result<(), String> {
    let http =
        llm_gateway::providers::http_client(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let upstream: Arc<str> = upstream.into();
    let chat = tower::service_fn(move |req: tonic::Request<llm::ChatRequest>| {
        let http = http.clone();
        let upstream = Arc::clone(&upstream);
        async move {
            let model = req.into_inner().model;
            let answer = http
                .post(&*upstream)
                .header(header::CONTENT_TYPE, "application/json")
                .bearer_auth("bench-key")
                .body(UPSTREAM_REQUEST)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?
                .bytes()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let text = String::from_utf8_lossy(&answer).into_owned();
            Ok::<_, tonic::Status>(tonic::Response::new(llm::ChatResponse {
                model,
                message: Some(llm::ChatMessage {
                    role: llm::Role::Assistant.into(),
                    content: Some(llm::chat_message::Content::Text(text)),
                    ..Default::default()
                }),
                finish_reason: "stop".into(),
                ..Default::default()
            }))
        }
    });
    let remaining = tower::service_fn(
        |req: tonic::Request<promo::GetRemainingRequest>| async move {
            Ok::<_, tonic::Status>(tonic::Response::new(promo::Remaining {
                code: req.into_inner().code,
                remaining: 30,
                total: 30,
                ..Default::default()
            }))
        },
    );
    let routes = axum::Router::new()
        .route(
            "/iafactory.llm.v1.LlmGateway/Chat",
            post(move |req: Request| {
                let chat = chat.clone();
                async move { Grpc::new(ProstCodec::default()).unary(chat, req).await }
            }),
        )
        .route(
            "/iafactory.promo.v1.PromoService/GetRemaining",
            post(move |req: Request| async move {
                Grpc::new(ProstCodec::default()).unary(remaining, req).await
            }),
        );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    tonic::transport::Server::builder()
        .add_routes(tonic::service::Routes::from(routes))
        .serve_with_incoming(iafactory::grpc::incoming(listener))
        .await
        .map_err(|e| e.to_string())
}

/// The edge's backends: gateway-rest's own [`Backend`] (its channels, settings and round-robin).
struct Backends {
    llm: Backend,
    promo: Backend,
}

async fn edge(listen: SocketAddr, grpc_url: &str) -> Result<(), String> {
    let config = gateway_rest::Config::new(grpc_url, grpc_url);
    let backends = Arc::new(Backends {
        llm: Backend::new("llm-gateway", grpc_url, &config, config.chat_timeout)
            .map_err(|e| e.to_string())?,
        promo: Backend::new("promo-service", grpc_url, &config, config.request_timeout)
            .map_err(|e| e.to_string())?,
    });
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/api/promo/{code}/remaining", get(remaining))
        .with_state(backends);
    let builder = gateway_rest::connection_builder(&config);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{listen}: {e}"))?;
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = builder
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(app.clone()))
            .into_owned();
        tokio::spawn(conn);
    }
}

fn json(status: StatusCode, body: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The request body is read (as gateway-rest must) and not parsed: the call sent is fixed.
async fn chat(State(b): State<Arc<Backends>>, _body: Bytes) -> http::Response<Body> {
    let req = llm::ChatRequest {
        model: "llama-3.3-70b".into(),
        messages: vec![llm::ChatMessage {
            role: llm::Role::User.into(),
            content: Some(llm::chat_message::Content::Text("Bonjour".into())),
            ..Default::default()
        }],
        ..Default::default()
    };
    match LlmGatewayClient::new(b.llm.channel()).chat(req).await {
        Ok(answer) => {
            let content = match answer.into_inner().message.and_then(|m| m.content) {
                Some(llm::chat_message::Content::Text(t)) => t,
                _ => String::new(),
            };
            // The upstream's own body, as the answer's bytes.
            json(StatusCode::OK, content)
        }
        Err(status) => json(StatusCode::BAD_GATEWAY, format!("{:?}", status.message())),
    }
}

async fn remaining(
    State(b): State<Arc<Backends>>,
    Path(code): Path<String>,
) -> http::Response<Body> {
    match PromoServiceClient::new(b.promo.channel())
        .get_remaining(promo::GetRemainingRequest { code })
        .await
    {
        Ok(r) => {
            let r = r.into_inner();
            json(
                StatusCode::OK,
                format!(
                    r#"{{"code":"{}","remaining":{},"total":{}}}"#,
                    r.code, r.remaining, r.total
                ),
            )
        }
        Err(status) => json(StatusCode::BAD_GATEWAY, format!("{:?}", status.message())),
    }
}
