//! `promo-service` binary: parse the configuration, start the library's service, run it until
//! SIGINT/SIGTERM (or an unexpected end), then stop it gracefully.

use std::process::ExitCode;

use clap::Parser;
use promo_service::config::{Args, Config};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.command == Some(promo_service::config::Command::Healthcheck) {
        // No logging set-up: one line on standard output and the exit code are the answer.
        let outcome =
            iafactory::healthcheck::grpc(args.listen, iafactory::healthcheck::TIMEOUT).await;
        return iafactory::healthcheck::report("promo-service", &outcome);
    }
    iafactory::telemetry::init(args.log_format);
    let open_files = iafactory::net::raise_open_files_limit();
    tracing::debug!(open_files, "open-files limit");
    let (config, generated) = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(token) = generated.admin {
        tracing::warn!(admin_token = %token, "dev mode: generated admin token (set ADMIN_TOKEN in production)");
    }
    if let Some(token) = generated.internal {
        tracing::warn!(internal_token = %token, "dev mode: generated internal token, give it to llm-gateway and gateway-rest as INTERNAL_TOKEN");
    }
    let listener = match iafactory::net::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let handle = match promo_service::start(config, listener).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("promo-service cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match handle.run_until(iafactory::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("promo-service failed: {e}");
            ExitCode::from(1)
        }
    }
}
