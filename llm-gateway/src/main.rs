//! The `llm-gateway` binary: parse configuration, start, wait for SIGINT/SIGTERM, stop
//! gracefully. Every startup problem is a clear message and a non-zero exit, never a panic.

use std::process::ExitCode;

use clap::Parser;
use llm_gateway::config::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    iafactory::telemetry::init(args.log_format);
    let listen = args.listen;
    let config = match args.into_config(|name| std::env::var(name).ok()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("configuration error: {e}");
            eprintln!("llm-gateway: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("llm-gateway: cannot listen on {listen} (LLM_GATEWAY_ADDR): {e}");
            return ExitCode::from(1);
        }
    };
    match llm_gateway::serve(config, listener, iafactory::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("llm-gateway failed: {e}");
            eprintln!("llm-gateway: {e}");
            ExitCode::from(1)
        }
    }
}
