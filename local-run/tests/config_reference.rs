//! The configuration reference (`docs/configuration.md`) is generated from the binaries' own flag
//! definitions, so it cannot drift: this test fails when the file differs from what the code
//! says, and `UPDATE_DOCS=1 cargo test -p iafactory-local --test config_reference` rewrites it.
//! That docker-compose.yml gives each service only variables it reads is checked, per binary,
//! by deploy.rs (from this file's output).

use std::fmt::Write as _;

use clap::CommandFactory;

/// Read by llm-gateway from the environment (not flags): provider keys and base URLs.
const PROVIDERS: [&str; 9] = [
    "OPENAI",
    "ANTHROPIC",
    "GROQ",
    "DEEPSEEK",
    "GOOGLE_GENERATIVE_AI",
    "MISTRAL",
    "COHERE",
    "TOGETHER",
    "OPEN_ROUTER",
];

fn commands() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("promo-service", promo_service::config::Args::command()),
        ("llm-gateway", llm_gateway::config::Args::command()),
        ("gateway-rest", gateway_rest::config::Args::command()),
    ]
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn render() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the binaries' flag definitions by `local-run/tests/config_reference.rs`\n\
         (`UPDATE_DOCS=1 cargo test -p iafactory-local --test config_reference` rewrites it). Every flag\n\
         can also be given through its environment variable. Log verbosity follows `RUST_LOG`\n\
         (default `info`).\n",
    );
    for (name, cmd) in commands() {
        let _ = write!(
            out,
            "\n## {name}\n\n| flag | environment | default | meaning |\n|---|---|---|---|\n"
        );
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            let env = arg
                .get_env()
                .map(|e| format!("`{}`", e.to_string_lossy()))
                .unwrap_or_default();
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join(",");
            let default = if default.is_empty() {
                "—".to_owned()
            } else {
                format!("`{default}`")
            };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "| `--{long}` | {env} | {} | {} |",
                cell(&default),
                cell(&help)
            );
        }
        for sub in cmd.get_subcommands() {
            let about = sub
                .get_long_about()
                .or(sub.get_about())
                .map(|a| {
                    a.to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let _ = write!(out, "\nSubcommand `{name} {}`: {about}\n", sub.get_name());
        }
    }
    out.push_str(
        "\n## llm-gateway: provider keys and base URLs\n\n\
         Read from the environment only. A provider without a key is reported as unconfigured; with no key\n\
         at all the offline `mock` provider answers (labelled `provider: mock`).\n\n\
         | provider | key | base URL override |\n|---|---|---|\n",
    );
    for p in PROVIDERS {
        let base = if p == "GOOGLE_GENERATIVE_AI" {
            "GEMINI"
        } else if p == "OPEN_ROUTER" {
            "OPENROUTER"
        } else {
            p
        };
        let _ = writeln!(
            out,
            "| {} | `{p}_API_KEY` | `{base}_BASE_URL` |",
            p.to_ascii_lowercase()
        );
    }
    out
}

#[test]
fn configuration_reference_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
    let expected = render();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs")).unwrap();
        std::fs::write(path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/configuration.md is out of date: run UPDATE_DOCS=1 cargo test -p iafactory-local --test config_reference"
    );
}

#[test]
fn every_flag_has_an_environment_variable_and_a_description() {
    for (name, cmd) in commands() {
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" || long == "version" {
                continue;
            }
            assert!(
                arg.get_env().is_some(),
                "{name} --{long} has no environment variable"
            );
            assert!(
                arg.get_help().is_some(),
                "{name} --{long} has no description"
            );
        }
    }
}
