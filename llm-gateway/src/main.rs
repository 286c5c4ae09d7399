//! The `llm-gateway` binary: parse configuration, start, wait for SIGINT/SIGTERM, stop
//! gracefully. Every startup problem is a clear message and a non-zero exit, never a panic.

use std::process::ExitCode;

use clap::Parser;
use llm_gateway::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.command == Some(llm_gateway::config::Command::Healthcheck) {
        // No logging set-up: one line on standard output and the exit code are the answer.
        let outcome =
            iafactory::healthcheck::grpc(args.listen, iafactory::healthcheck::TIMEOUT).await;
        return iafactory::healthcheck::report("llm-gateway", &outcome);
    }
    iafactory::telemetry::init(args.log_format);
    let open_files = iafactory::net::raise_open_files_limit();
    tracing::debug!(open_files, "open-files limit");
    let listen = args.listen;
    let config = match args.into_config(|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration error: {e}");
            eprintln!("llm-gateway: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match iafactory::net::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("llm-gateway: cannot listen on {listen} (LLM_GATEWAY_ADDR): {e}");
            return ExitCode::from(1);
        }
    };
    let handle = match llm_gateway::start(config, listener).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!("llm-gateway cannot start: {e}");
            eprintln!("llm-gateway: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match handle.run_until(iafactory::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("llm-gateway failed: {e}");
            eprintln!("llm-gateway: {e}");
            ExitCode::from(1)
        }
    }
}
