//! `iafactory-local`: the whole platform in one process on the embedded defaults — SQLite files in a
//! data folder, the offline `mock` provider when no provider key is set, a generated admin token —
//! for trying it out and for development. Production runs each service as its own binary; this
//! starts the very same libraries, wired over real gRPC on loopback.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;

/// Flags of the all-in-one run.
#[derive(Debug, Parser)]
#[command(
    name = "iafactory-local",
    version,
    about = "Run the whole IAFactory platform locally"
)]
struct Args {
    /// Folder of the SQLite files (created if missing).
    #[arg(long, env = "IAF_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Address every service binds to.
    #[arg(long, env = "IAF_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// REST port (landing page, browser JSON, OpenAI-compatible API); 0 picks a free one.
    #[arg(long, env = "IAF_HTTP_PORT", default_value_t = 8180)]
    http_port: u16,
    /// promo-service gRPC port.
    #[arg(long, env = "IAF_PROMO_PORT", default_value_t = 50051)]
    promo_port: u16,
    /// llm-gateway gRPC port.
    #[arg(long, env = "IAF_LLM_PORT", default_value_t = 50052)]
    llm_port: u16,
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    log_format: iafactory::telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    iafactory::telemetry::init(args.log_format);
    let open_files = iafactory::net::raise_open_files_limit();
    tracing::debug!(open_files, "open-files limit");
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn bind(host: IpAddr, port: u16, what: &str) -> Result<TcpListener, String> {
    let addr = SocketAddr::new(host, port);
    iafactory::net::bind(addr).map_err(|e| format!("cannot listen on {addr} for {what}: {e}"))
}

fn sqlite_url(dir: &std::path::Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

async fn run(args: Args) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.data_dir.display()))?;
    let admin_token = match std::env::var("ADMIN_TOKEN") {
        Ok(t) if t.trim().len() >= 16 => t.trim().to_owned(),
        _ => promo_service::secrets::random_token(24),
    };
    // One token for the three services' calls to each other (never printed: nobody types it).
    let internal_token = match std::env::var("INTERNAL_TOKEN") {
        Ok(t) if t.trim().len() >= 16 => t.trim().to_owned(),
        _ => promo_service::secrets::random_token(24),
    };

    let promo_listener = bind(args.host, args.promo_port, "promo-service")?;
    let llm_listener = bind(args.host, args.llm_port, "llm-gateway")?;
    let http_listener = bind(args.host, args.http_port, "gateway-rest")?;
    let local = |l: &TcpListener| l.local_addr().map_err(|e| e.to_string());
    let (promo_addr, llm_addr, http_addr) = (
        local(&promo_listener)?,
        local(&llm_listener)?,
        local(&http_listener)?,
    );

    // Each service reads the same flags and environment as its own binary; only the addresses,
    // databases and the shared admin and internal tokens are decided here.
    let promo_args = promo_service::config::Args::try_parse_from([
        "promo-service",
        "--listen",
        &promo_addr.to_string(),
        "--database-url",
        &sqlite_url(&args.data_dir, "promo.db"),
        "--admin-token",
        &admin_token,
        "--internal-token",
        &internal_token,
        "--public-url",
        &format!("http://{http_addr}"),
    ])
    .map_err(|e| format!("promo-service configuration: {e}"))?;
    let (promo_config, _) = promo_service::Config::from_args(&promo_args)
        .map_err(|e| format!("promo-service configuration: {e}"))?;
    let promo_url = format!("http://{promo_addr}");
    let llm_url = format!("http://{llm_addr}");
    let llm_config = llm_gateway::config::Args::try_parse_from([
        "llm-gateway",
        "--listen",
        &llm_addr.to_string(),
        "--database-url",
        &sqlite_url(&args.data_dir, "llm-gateway.db"),
        "--promo-service-url",
        &promo_url,
        "--internal-token",
        &internal_token,
    ])
    .map_err(|e| format!("llm-gateway configuration: {e}"))?
    .into_config(|k| std::env::var(k).ok())
    .map_err(|e| format!("llm-gateway configuration: {e}"))?;
    let rest_config = gateway_rest::config::Args::try_parse_from([
        "gateway-rest",
        "--listen",
        &http_addr.to_string(),
        "--promo-service-url",
        &promo_url,
        "--llm-gateway-url",
        &llm_url,
        "--admin-token",
        &admin_token,
        "--internal-token",
        &internal_token,
    ])
    .map_err(|e| format!("gateway-rest configuration: {e}"))?
    .into_config()
    .map_err(|e| format!("gateway-rest configuration: {e}"))?;

    // In dependency order: promo-service is migrated and serving before the others start.
    let mut promo = promo_service::start(promo_config, promo_listener)
        .await
        .map_err(|e| format!("promo-service: {e}"))?;
    let mut llm = llm_gateway::start(llm_config, llm_listener)
        .await
        .map_err(|e| format!("llm-gateway: {e}"))?;
    let mut rest = gateway_rest::start(rest_config, http_listener)
        .await
        .map_err(|e| format!("gateway-rest: {e}"))?;

    let banner = format!(
        "\nIAFactory platform running (data in {data}):\n\
         \x20 landing page   http://{http_addr}/api-packages/\n\
         \x20 REST API       http://{http_addr}/  (OpenAI-compatible: http://{http_addr}/v1)\n\
         \x20 promo-service  grpc://{promo_addr}  (grpcurl -plaintext {promo_addr} list)\n\
         \x20 llm-gateway    grpc://{llm_addr}\n\
         \x20 admin token    {admin_token}\n\
         Press Ctrl-C to stop.\n",
        data = args.data_dir.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes());
    let _ = out.flush();
    drop(out);

    // A service ending before a signal means it failed: stop the others too.
    let (mut rest_result, mut llm_result, mut promo_result) = (None, None, None);
    tokio::select! {
        () = iafactory::shutdown::signal() => {}
        r = promo.ended() => {
            tracing::error!("promo-service stopped on its own");
            promo_result = Some(r);
        }
        r = llm.ended() => {
            tracing::error!("llm-gateway stopped on its own");
            llm_result = Some(r);
        }
        r = rest.ended() => {
            tracing::error!("gateway-rest stopped on its own");
            rest_result = Some(r);
        }
    }
    // Stop the edge first so no new work arrives, then the gateway (flushes usage), then promo.
    // A service that already ended gave its outcome above; its shutdown is then a no-op.
    let rest_result = rest_result.unwrap_or(Ok(())).and(rest.shutdown().await);
    let llm_result = llm_result.unwrap_or(Ok(())).and(llm.shutdown().await);
    let promo_result = promo_result.unwrap_or(Ok(())).and(promo.shutdown().await);
    tracing::info!("all services stopped");
    match (rest_result, llm_result, promo_result) {
        (Ok(()), Ok(()), Ok(())) => Ok(()),
        (r, l, p) => Err(format!(
            "unclean stop: gateway-rest {r:?}, llm-gateway {l:?}, promo-service {p:?}"
        )),
    }
}
