//! The production deployment's files, checked with the real tools (`scripts/test-setup.sh`
//! installs them in `.venv/bin`; a missing tool fails the test, it never skips it):
//! - `docker-compose.yml` parses with docker-compose 1.29 (`config`, no Docker engine needed) with
//!   an environment made from `.env.example`, and refuses to start without the secrets;
//! - every service running one of our binaries has a healthcheck through its `healthcheck`
//!   subcommand; the gRPC ports, Prometheus and Grafana are published on 127.0.0.1 only and
//!   gateway-rest not at all;
//! - `.env.example` and the compose file's `${VAR}`s are the same set;
//! - every variable the compose file gives one of our services is one that service reads
//!   (`docs/configuration.md`, generated from the code);
//! - Prometheus: `promtool check config`, `check rules` and `test rules`, scrape targets matching the services'
//!   metrics addresses; Grafana: the dashboard is JSON whose queries parse (promtool) and name
//!   metrics the services register, as do the alert rules;
//! - Caddy: the Caddyfile adapts (`caddy adapt`), overwrites X-Forwarded-For, keeps /metrics
//!   private and proxies to gateway-rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BINARIES: [&str; 3] = ["promo-service", "llm-gateway", "gateway-rest"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A tool from the project's virtualenv (or the PATH); panics with the remedy if missing.
fn tool(name: &str) -> PathBuf {
    let local = root().join(".venv/bin").join(name);
    if local.is_file() {
        return local;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("`{name}` is missing: run scripts/test-setup.sh (it installs it in .venv/bin)");
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(cmd: &mut Command) -> String {
    let desc = format!("{cmd:?}");
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "{desc} failed:\n{stdout}\n{stderr}");
    stdout
}

/// YAML text to JSON, through the virtualenv's PyYAML (docker-compose's own parser).
fn yaml_to_json(yaml: &str) -> Value {
    use std::io::Write as _;
    let mut child = Command::new(tool("python"))
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "YAML does not parse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `NAME=value` lines of `.env.example`, in order.
fn env_example() -> Vec<(String, String)> {
    read(".env.example")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// Runs `docker-compose config` on the production file with `vars` as its `.env`, from an empty
/// folder and an emptied environment (a developer's own `.env` or exported DOMAIN must not count).
fn compose_config(vars: &[(String, String)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    run(Command::new(tool("docker-compose"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .arg("--env-file")
        .arg(&env_file)
        .arg("-f")
        .arg(root().join("docker-compose.yml"))
        .arg("config"))
}

/// `.env.example` with every empty value (the secrets) filled in.
fn filled_env() -> Vec<(String, String)> {
    env_example()
        .into_iter()
        .map(|(k, v)| {
            let v = if v.is_empty() {
                format!("test-{}", k.to_ascii_lowercase())
            } else {
                v
            };
            (k, v)
        })
        .collect()
}

/// The production file as docker-compose resolves it (anchors merged, variables substituted).
fn resolved_compose() -> Value {
    let (ok, stdout, stderr) = compose_config(&filled_env());
    assert!(ok, "docker-compose config failed:\n{stderr}");
    yaml_to_json(&stdout)
}

fn services(config: &Value) -> &serde_json::Map<String, Value> {
    config["services"].as_object().expect("no services")
}

/// The binary a service runs, if it is one of ours (our image, first word of its command).
fn our_binary(service: &Value) -> Option<String> {
    let ours = service.get("build").is_some()
        || service["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("iafactory"));
    if !ours {
        return None;
    }
    let first = service["command"][0]
        .as_str()
        .expect("a service of our image without a command");
    Some(first.to_owned())
}

#[test]
fn compose_file_parses_and_requires_its_secrets() {
    let config = resolved_compose();
    assert!(services(&config).len() >= 9);

    // Unfilled secrets stop docker-compose with the variable's name.
    let (ok, _, stderr) = compose_config(&env_example());
    assert!(!ok, "the compose file starts without its secrets");
    assert!(
        stderr.contains("set ") && stderr.contains("in .env"),
        "unexpected message: {stderr}"
    );

    // PUBLIC_URL (written into queued e-mails) is the public HTTPS address.
    let domain = filled_env()
        .into_iter()
        .find(|(k, _)| k == "DOMAIN")
        .unwrap()
        .1;
    for (name, s) in services(&config) {
        if our_binary(s).as_deref() == Some("promo-service") {
            assert_eq!(
                s["environment"]["PUBLIC_URL"].as_str(),
                Some(format!("https://{domain}").as_str()),
                "{name}"
            );
        }
    }
}

#[test]
fn services_of_our_binaries_have_healthchecks_through_the_subcommand() {
    let config = resolved_compose();
    let mut seen = BTreeMap::<String, usize>::new();
    for (name, s) in services(&config) {
        // Every service of the deployment has some healthcheck.
        assert!(
            s["healthcheck"]["test"].is_array() && s["healthcheck"]["disable"] != true,
            "{name} has no healthcheck"
        );
        let Some(binary) = our_binary(s) else {
            continue;
        };
        assert!(
            BINARIES.contains(&binary.as_str()),
            "{name} runs {binary:?}"
        );
        let test: Vec<&str> = s["healthcheck"]["test"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            test,
            ["CMD", binary.as_str(), "healthcheck"],
            "{name}'s healthcheck"
        );
        *seen.entry(binary).or_default() += 1;
    }
    assert_eq!(
        seen.get("promo-service"),
        Some(&2),
        "two promo-service replicas"
    );
    assert_eq!(
        seen.get("llm-gateway"),
        Some(&2),
        "two llm-gateway replicas"
    );
    assert_eq!(seen.get("gateway-rest"), Some(&1));
}

#[test]
fn only_caddy_is_public_everything_else_on_loopback() {
    let config = resolved_compose();
    for (name, s) in services(&config) {
        let ports = s["ports"].as_array().cloned().unwrap_or_default();
        if name == "caddy" {
            let published: BTreeSet<u64> = ports
                .iter()
                .map(|p| p["published"].as_u64().unwrap())
                .collect();
            assert_eq!(published, BTreeSet::from([80, 443]));
            continue;
        }
        if name == "gateway-rest" {
            assert!(
                ports.is_empty(),
                "gateway-rest must be reached through Caddy"
            );
        }
        for p in &ports {
            let on_loopback = match p {
                Value::String(s) => s.starts_with("127.0.0.1:"),
                other => other["host_ip"] == "127.0.0.1",
            };
            assert!(on_loopback, "{name} publishes {p} beyond 127.0.0.1");
        }
    }
    // grpcurl reaches a replica of each gRPC service.
    let published: String = ["promo-a", "llm-a"]
        .iter()
        .map(|n| services(&config)[*n]["ports"].to_string())
        .collect();
    assert!(published.contains("127.0.0.1:50051:50051"), "{published}");
    assert!(published.contains("127.0.0.1:50052:50052"), "{published}");
}

/// `${NAME...}` references of a text.
fn references(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(!name.is_empty(), "malformed ${{...}} in docker-compose.yml");
        out.insert(name);
    }
    out
}

#[test]
fn env_example_lists_exactly_the_compose_variables() {
    let compose = read("docker-compose.yml");
    let used = references(&compose);
    let listed: Vec<String> = env_example().into_iter().map(|(k, _)| k).collect();
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        listed_set.len(),
        ".env.example repeats a name"
    );
    let missing: Vec<_> = used.difference(&listed_set).collect();
    let unused: Vec<_> = listed_set.difference(&used).collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
    assert!(
        unused.is_empty(),
        ".env.example lists {unused:?}, which docker-compose.yml does not use"
    );
    // A bare $NAME (without braces) would escape this check.
    for (i, _) in compose.match_indices('$') {
        let next = compose[i + 1..].chars().next();
        assert!(
            matches!(next, Some('{') | Some('$')),
            "docker-compose.yml: use ${{NAME}}, not $NAME (at byte {i})"
        );
    }
    // What the deployment cannot run without has no default anywhere: `${NAME:?message}` at
    // every use, so a forgotten secret stops docker compose instead of running with a blank one.
    for required in [
        "POSTGRES_PASSWORD",
        "ADMIN_TOKEN",
        "INTERNAL_TOKEN",
        "GRAFANA_ADMIN_PASSWORD",
        "DOMAIN",
        "ACME_EMAIL",
    ] {
        let pattern = format!("${{{required}");
        let uses: Vec<&str> = compose
            .match_indices(&pattern)
            .map(|(i, _)| &compose[i + pattern.len()..])
            .collect();
        assert!(!uses.is_empty(), "{required} is not used");
        for rest in uses {
            assert!(
                rest.starts_with(":?"),
                "docker-compose.yml: every use of {required} must be ${{{required}:?...}}"
            );
        }
    }
    // Secrets are marked and left empty in the example.
    let example = read(".env.example");
    assert!(example.contains("openssl rand -hex 32"));
    for secret in [
        "POSTGRES_PASSWORD",
        "ADMIN_TOKEN",
        "INTERNAL_TOKEN",
        "GRAFANA_ADMIN_PASSWORD",
    ] {
        assert!(
            env_example().contains(&(secret.to_owned(), String::new())),
            "{secret} must be empty in .env.example"
        );
    }
}

/// Environment variables each binary reads, from `docs/configuration.md` (generated from the
/// flags by config_reference.rs): the backticked UPPER_CASE names of its section, the provider
/// table for llm-gateway, and RUST_LOG for all.
fn variables_read() -> BTreeMap<String, BTreeSet<String>> {
    let doc = read("docs/configuration.md");
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.split(':').next().unwrap().trim().to_owned();
            continue;
        }
        if !BINARIES.contains(&section.as_str()) || !line.starts_with('|') {
            continue;
        }
        for (i, part) in line.split('`').enumerate() {
            let is_name = i % 2 == 1
                && part.len() > 1
                && part
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                out.entry(section.clone())
                    .or_default()
                    .insert(part.to_owned());
            }
        }
    }
    for b in BINARIES {
        let vars = out
            .get_mut(b)
            .unwrap_or_else(|| panic!("docs/configuration.md has no section for {b}"));
        assert!(vars.len() > 5, "{b}: {vars:?}");
        vars.insert("RUST_LOG".to_owned());
    }
    assert!(out["llm-gateway"].contains("GROQ_API_KEY"));
    out
}

#[test]
fn compose_gives_our_services_only_variables_they_read() {
    let read_by = variables_read();
    let config = resolved_compose();
    for (name, s) in services(&config) {
        let Some(binary) = our_binary(s) else {
            continue;
        };
        let env = s["environment"].as_object().unwrap();
        for key in env.keys() {
            assert!(
                read_by[&binary].contains(key),
                "docker-compose.yml gives {name} ({binary}) {key}, which {binary} does not read"
            );
        }
    }
    // The client address travels end to end: gateway-rest trusts the header Caddy overwrites.
    assert_eq!(
        services(&config)["gateway-rest"]["environment"]["CLIENT_IP_HEADER"],
        "x-forwarded-for"
    );
}

/// Metric names the services export: the families each service registers at start-up, read
/// from the registries themselves (the gRPC layer's, promo-service's gauges, llm-gateway's and
/// gateway-rest's), so a rule or panel cannot name a metric that no code registers.
fn exported_metrics() -> BTreeSet<String> {
    let mut registry = iafactory::metrics::Registry::new();
    iafactory::grpc::rpc_metrics(&mut registry);
    promo_service::gauges::BusinessGauges::register(&mut registry);
    llm_gateway::metrics::Metrics::register(&mut registry);
    let rest = gateway_rest::metrics::Metrics::new([]);
    let names: BTreeSet<String> = registry
        .exported_names()
        .iter()
        .chain(rest.exported_names())
        .cloned()
        .collect();
    for name in &names {
        assert!(
            name.starts_with("iaf_"),
            "{name} lacks the platform's prefix"
        );
    }
    for must in [
        "iaf_promo_places_remaining",
        "iaf_outbox_messages",
        "iaf_grpc_requests_total",
        "iaf_llm_circuit_state",
        "iaf_llm_upstream_attempts_total",
        "iaf_http_requests_total",
        "iaf_http_request_duration_seconds",
    ] {
        assert!(names.contains(must), "{must} is not registered: {names:?}");
    }
    names
}

const PROMQL_WORDS: [&str; 22] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
];

/// Metric names used by a PromQL expression: identifiers outside label matchers, ranges, strings
/// and grouping lists that are neither functions, operators nor keywords.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| -> usize {
        let mut j = from;
        while j < chars.len() && chars[j] != close {
            if chars[j] == '"' {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    j += if chars[j] == '\\' { 2 } else { 1 };
                }
            }
            j += 1;
        }
        j + 1
    };
    let mut grouping = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => i = skip_to(i + 1, '}'),
            '[' => i = skip_to(i + 1, ']'),
            '"' => i = skip_to(i + 1, '"'),
            '(' if grouping => {
                grouping = false;
                i = skip_to(i + 1, ')');
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j] == ' ' {
                    j += 1;
                }
                let call = chars.get(j) == Some(&'(');
                if matches!(
                    word.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    grouping = true;
                } else if !call && !PROMQL_WORDS.contains(&word.as_str()) {
                    out.insert(word);
                }
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

#[test]
fn promql_metric_extraction() {
    let m = metrics_in(
        r#"histogram_quantile(0.99, sum by (le, provider) (rate(iaf_llm_upstream_latency_seconds_bucket{x="a{b}"}[5m]))) > 0.5 and max by (code) (iaf_promo_places_remaining) == 0 or up"#,
    );
    assert_eq!(
        m,
        BTreeSet::from([
            "iaf_llm_upstream_latency_seconds_bucket".to_owned(),
            "iaf_promo_places_remaining".to_owned(),
            "up".to_owned()
        ])
    );
}

fn assert_known_metrics(what: &str, expr: &str, known: &BTreeSet<String>) {
    let used = metrics_in(expr);
    assert!(!used.is_empty(), "{what}: no metric in {expr}");
    for name in used {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| known.contains(*b)))
            .unwrap_or(&name);
        assert!(
            base == "up" || known.contains(base),
            "{what} uses {name}, which no service exports (known: {known:?})"
        );
    }
}

fn promtool() -> Command {
    Command::new(tool("promtool"))
}

#[test]
fn prometheus_config_and_rules_pass_promtool_and_use_real_metrics() {
    let dir = root().join("deploy/prometheus");
    run_ok(
        promtool()
            .args(["check", "config"])
            .arg(dir.join("prometheus.yml")),
    );
    run_ok(
        promtool()
            .args(["check", "rules"])
            .arg(dir.join("alerts.yml")),
    );
    // The alerts fire on the series they are meant for (and not before).
    run_ok(
        promtool()
            .args(["test", "rules"])
            .arg(dir.join("alerts.test.yml")),
    );

    let known = exported_metrics();
    let rules = yaml_to_json(&read("deploy/prometheus/alerts.yml"));
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            alerts.insert(name.to_owned());
            assert_known_metrics(name, rule["expr"].as_str().unwrap(), &known);
        }
    }
    // The alerts the deployment promises.
    let text = read("deploy/prometheus/alerts.yml");
    for metric in [
        "iaf_promo_places_remaining",
        "iaf_llm_circuit_state",
        "iaf_outbox_messages{status=\"dead\"}",
        "iaf_http_requests_total{status=~\"5..\"}",
        "iaf_grpc_requests_total{method=~\"/iafactory.llm.v1.LlmGateway/.*\",code=~\"Unavailable",
    ] {
        assert!(text.contains(metric), "no alert on {metric}");
    }

    // Scrape targets: one job per service, on the ports the compose file gives them.
    let prom = yaml_to_json(&read("deploy/prometheus/prometheus.yml"));
    let config = resolved_compose();
    let mut jobs = BTreeSet::new();
    for job in prom["scrape_configs"].as_array().unwrap() {
        jobs.insert(job["job_name"].as_str().unwrap().to_owned());
        for target in job["static_configs"][0]["targets"].as_array().unwrap() {
            let (host, port) = target.as_str().unwrap().split_once(':').unwrap();
            let s = &services(&config)[host];
            let binary = our_binary(s).unwrap();
            assert_eq!(binary, job["job_name"], "{target}");
            let listen = match binary.as_str() {
                "promo-service" => s["environment"]["PROMO_METRICS_ADDR"].as_str().unwrap(),
                "llm-gateway" => s["environment"]["LLM_GATEWAY_METRICS_ADDR"]
                    .as_str()
                    .unwrap(),
                // /metrics on its HTTP port (default 0.0.0.0:8180, see docs/configuration.md).
                _ => s["environment"]["GATEWAY_REST_ADDR"]
                    .as_str()
                    .unwrap_or("0.0.0.0:8180"),
            };
            assert!(
                listen.ends_with(&format!(":{port}")),
                "{target}: {host} listens on {listen}"
            );
        }
    }
    assert_eq!(
        jobs,
        BINARIES
            .iter()
            .map(|b| (*b).to_owned())
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn grafana_dashboard_queries_parse_and_use_real_metrics() {
    let known = exported_metrics();
    let dir = root().join("deploy/grafana/dashboards");
    let mut exprs = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let dash: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
        assert!(dash["uid"].is_string() && dash["title"].is_string());
        for panel in dash["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{title}");
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{title} has no query");
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                assert_known_metrics(title, expr, &known);
                exprs.push(expr.to_owned());
            }
        }
    }
    let all = exprs.join("\n");
    for topic in [
        "iaf_promo_places_remaining",
        "PromoService/Signup",
        "iaf_http_requests_total{status=~\"5..\"}",
        "route=\"/v1/chat/completions\"",
        "iaf_llm_circuit_state",
    ] {
        assert!(all.contains(topic), "the dashboard shows no {topic}");
    }

    // The queries parse: promtool checks them as recording rules.
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "      - record: dashboard:query_{i}\n        expr: {}\n",
                serde_json::to_string(e).unwrap()
            )
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("dashboard-queries.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    run_ok(promtool().args(["check", "rules"]).arg(&file));

    // Grafana finds the datasource under the uid the panels name, and the dashboards' folder.
    let ds = yaml_to_json(&read(
        "deploy/grafana/provisioning/datasources/prometheus.yml",
    ));
    assert_eq!(ds["datasources"][0]["uid"], "prometheus");
    assert_eq!(ds["datasources"][0]["url"], "http://prometheus:9090");
    let providers = yaml_to_json(&read(
        "deploy/grafana/provisioning/dashboards/iafactory.yml",
    ));
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    let config = resolved_compose();
    let mounts = services(&config)["grafana"]["volumes"].to_string();
    assert!(
        mounts.contains(&format!("deploy/grafana/dashboards:{path}")),
        "{mounts}"
    );
}

#[test]
fn caddy_overwrites_the_client_address_and_keeps_metrics_private() {
    let dir = root().join("deploy/caddy");
    let stdout = run_ok(
        Command::new(tool("caddy"))
            .env("DOMAIN", "api.example.dz")
            .env("ACME_EMAIL", "ops@example.dz")
            .current_dir(&dir)
            .args(["adapt", "--adapter", "caddyfile", "--config", "Caddyfile"]),
    );
    let json: Value = serde_json::from_str(&stdout).unwrap();
    let text = json.to_string();
    assert!(
        !text.contains("trusted_proxies"),
        "Caddy must trust no proxy before it (it is the first hop)"
    );
    let server = &json["apps"]["http"]["servers"]["srv0"];
    assert_eq!(server["routes"][0]["match"][0]["host"][0], "api.example.dz");
    let routes = server["routes"][0]["handle"][0]["routes"]
        .as_array()
        .unwrap();
    let metrics_at = routes
        .iter()
        .position(|r| r["match"][0]["path"].to_string().contains("/metrics"))
        .expect("no /metrics route");
    assert_eq!(routes[metrics_at]["handle"][0]["status_code"], 404);
    let proxy_at = routes
        .iter()
        .position(|r| r["handle"][0]["handler"] == "reverse_proxy")
        .expect("no reverse_proxy");
    assert!(metrics_at < proxy_at);
    let proxy = &routes[proxy_at]["handle"][0];
    assert_eq!(
        proxy["headers"]["request"]["set"]["X-Forwarded-For"],
        serde_json::json!(["{http.request.remote.host}"]),
        "X-Forwarded-For must be set (replaced), not appended"
    );
    assert_eq!(proxy["upstreams"][0]["dial"], "gateway-rest:8180");
    assert_eq!(
        json["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]["email"],
        "ops@example.dz"
    );
    // The compose file mounts this Caddyfile and gives it DOMAIN and ACME_EMAIL.
    let config = resolved_compose();
    let caddy = &services(&config)["caddy"];
    assert!(
        caddy["volumes"]
            .to_string()
            .contains("deploy/caddy/Caddyfile:/etc/caddy/Caddyfile")
    );
    assert!(caddy["environment"]["DOMAIN"].is_string());
    assert!(caddy["environment"]["ACME_EMAIL"].is_string());
}
