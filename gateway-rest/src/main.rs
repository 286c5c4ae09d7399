//! `gateway-rest` binary: parses flags (each with an environment variable), starts the library's
//! service and runs it until SIGINT/SIGTERM (or an unexpected end), then stops it gracefully.

use std::process::ExitCode;

use clap::Parser;
use gateway_rest::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.command == Some(gateway_rest::config::Command::Healthcheck) {
        // No logging set-up: one line on standard output and the exit code are the answer.
        let outcome =
            iafactory::healthcheck::http(args.listen, "/readyz", iafactory::healthcheck::TIMEOUT)
                .await;
        return iafactory::healthcheck::report("gateway-rest", &outcome);
    }
    iafactory::telemetry::init(args.log_format);
    let open_files = iafactory::net::raise_open_files_limit();
    let listen = args.listen;
    let config = match args.into_config() {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if (config.max_connections as u64).saturating_add(512) > open_files {
        tracing::warn!(
            max_connections = config.max_connections,
            open_files,
            "MAX_CONNECTIONS is close to the open-files limit: past it, connections fail instead of getting a 503"
        );
    }
    if config.admin_token.is_none() {
        tracing::warn!("ADMIN_TOKEN is not set: /api/gateway/providers is refused");
    }
    if config.internal_token.is_none() {
        tracing::warn!(
            "INTERNAL_TOKEN is not set: /api/gateway/providers and /api/platform/status answer 503"
        );
    }
    let listener = match iafactory::net::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match gateway_rest::start(config, listener).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("gateway-rest cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match handle.run_until(iafactory::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("gateway-rest failed: {e}");
            ExitCode::FAILURE
        }
    }
}
