#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]
//! Browser tests of the landing page (`/api-packages/`, issue 5), of the customer account
//! (`/compte/`, issue 14) and of the operator console (`/admin/`, issue 16).
//!
//! Each starts the real stack in-process on random loopback ports, then runs a Node script in
//! `e2e/` that drives Debian's `/usr/bin/chromium` with `playwright-core`. The Node script does the
//! checking; the test asserts it exits 0 and prints its output otherwise.
//! - landing: promo-service on a SQLite file in a temp folder and gateway-rest in front of it
//!   (llm-gateway is left unreachable: the page never needs it), `e2e/landing.test.mjs`;
//!   screenshots in `test-artifacts/landing/`;
//! - account: the whole platform (promo-service e-mailing a real SMTP sink, llm-gateway with its
//!   offline mock provider, gateway-rest), `e2e/compte.test.mjs`; screenshots in
//!   `target/screenshots/compte/`;
//! - console: the same platform with promo-service on a manual clock, `e2e/admin.test.mjs`;
//!   screenshots in `target/screenshots/admin/`.
//!
//! Missing Chromium or `e2e/node_modules` is a failure, not a skip: `scripts/test-setup.sh`
//! installs both. Screenshots are relative to the workspace root.

mod stack;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use stack::{AccountStack, Stack};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("gateway-rest sits in the workspace")
        .to_path_buf()
}

fn chromium_path() -> PathBuf {
    std::env::var_os("LANDING_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails (never skips) when the browser or the Node packages are not installed.
fn check_prerequisites(root: &Path) {
    let hint = "run scripts/test-setup.sh (installs Debian's chromium and `npm ci` in e2e/)";
    let chromium = chromium_path();
    assert!(
        chromium.is_file(),
        "Chromium not found at {}: {hint}",
        chromium.display()
    );
    for package in ["playwright-core", "axe-core"] {
        let manifest = root.join(format!("e2e/node_modules/{package}/package.json"));
        assert!(
            manifest.is_file(),
            "{package} is not installed ({} missing): {hint}",
            manifest.display()
        );
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): Node.js 20+ is required"));
    assert!(node.status.success(), "`node --version` failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_in_chromium() {
    let root = workspace_root();
    check_prerequisites(&root);

    let stack = Stack::spawn().await;
    let artifacts = root.join("test-artifacts/landing");
    std::fs::create_dir_all(&artifacts).unwrap();
    let run = run_script(
        &root,
        "landing.test.mjs",
        &[
            ("LANDING_BASE_URL", stack.base.clone().into()),
            ("LANDING_STRICT_URL", stack.strict_base.clone().into()),
            ("LANDING_DOWN_URL", stack.down_base.clone().into()),
            ("LANDING_MAIL_DIR", stack.mail_dir.clone().into()),
            ("LANDING_SELLER_NAME", stack::SELLER_NAME.into()),
            ("LANDING_SELLER_EMAIL", stack::SELLER_EMAIL.into()),
            ("LANDING_SELLER_PHONE", stack::SELLER_PHONE.into()),
            ("LANDING_SELLER_NIF", stack::SELLER_NIF.into()),
            ("LANDING_ARTIFACTS", artifacts.into()),
        ],
    )
    .await;
    stack.stop().await;
    run.check();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_account_in_chromium() {
    let root = workspace_root();
    check_prerequisites(&root);

    let stack = AccountStack::spawn().await;
    let artifacts = root.join("target/screenshots/compte");
    std::fs::create_dir_all(&artifacts).unwrap();
    let run = run_script(
        &root,
        "compte.test.mjs",
        &[
            ("COMPTE_BASE_URL", stack.base.clone().into()),
            ("COMPTE_MAIL_DIR", stack.mail_dir.clone().into()),
            ("COMPTE_ADMIN_TOKEN", stack::ADMIN_TOKEN.into()),
            (
                "COMPTE_AUTH_CACHE_MS",
                stack::AUTH_CACHE_TTL.as_millis().to_string().into(),
            ),
            ("COMPTE_ARTIFACTS", artifacts.into()),
        ],
    )
    .await;
    stack.stop().await;
    run.check();
}

/// The waitlist (issue 17): once LAUNCH30 is full the landing page offers the form; the double
/// opt-in e-mail goes through the real SMTP sink; its link's page confirms on its button only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waitlist_in_chromium() {
    let root = workspace_root();
    check_prerequisites(&root);

    let stack = AccountStack::spawn().await;
    // The owner who runs the campaigns page (made with the admin token, the documented way).
    let mut ops =
        iafactory::proto::iafactory::promo::v1::operators_client::OperatorsClient::connect(
            format!("http://{}", stack.promo_addr),
        )
        .await
        .unwrap();
    let mut req = tonic::Request::new(
        iafactory::proto::iafactory::promo::v1::CreateOperatorRequest {
            email: "amel@iafactory.dz".into(),
            display_name: "Amel".into(),
            role: iafactory::proto::iafactory::promo::v1::OperatorRole::Owner.into(),
            password: OWNER_PASSWORD.into(),
        },
    );
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", stack::ADMIN_TOKEN).parse().unwrap(),
    );
    ops.create_operator(req).await.unwrap();
    let artifacts = root.join("target/screenshots/waitlist");
    std::fs::create_dir_all(&artifacts).unwrap();
    let run = run_script(
        &root,
        "waitlist.test.mjs",
        &[
            ("WAITLIST_BASE_URL", stack.base.clone().into()),
            ("WAITLIST_MAIL_DIR", stack.mail_dir.clone().into()),
            ("WAITLIST_ADMIN_TOKEN", stack::ADMIN_TOKEN.into()),
            ("WAITLIST_OWNER_PASSWORD", OWNER_PASSWORD.into()),
            ("WAITLIST_ARTIFACTS", artifacts.into()),
        ],
    )
    .await;
    stack.stop().await;
    run.check();
}

/// The operator console (`/admin/`, issue 16) against the whole platform, on a fixture built
/// through the public APIs: two operators made with the admin token (the documented way to
/// create the first owner), signups on three days reached by moving promo-service's manual
/// clock. The script adds landing views, chat calls and the console's own changes, and checks
/// every figure the pages show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_console_in_chromium() {
    use iafactory::proto::iafactory::promo::v1 as pb;
    use pb::operators_client::OperatorsClient;

    let root = workspace_root();
    check_prerequisites(&root);
    const DAY_MS: i64 = 24 * 3_600_000;
    let now = iafactory::db::now_millis();
    let clock = promo_service::clock::Clock::manual(now);
    let stack = AccountStack::spawn_priced(clock.clone(), CONSOLE_MODEL).await;

    let mut ops = OperatorsClient::connect(format!("http://{}", stack.promo_addr))
        .await
        .unwrap();
    for (email, name, role, password) in [
        (
            "amel@iafactory.dz",
            "Amel",
            pb::OperatorRole::Owner,
            OWNER_PASSWORD,
        ),
        (
            "sami@iafactory.dz",
            "Sami",
            pb::OperatorRole::Support,
            SUPPORT_PASSWORD,
        ),
    ] {
        let mut req = tonic::Request::new(pb::CreateOperatorRequest {
            email: email.into(),
            display_name: name.into(),
            role: role.into(),
            password: password.into(),
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", stack::ADMIN_TOKEN).parse().unwrap(),
        );
        ops.create_operator(req).await.unwrap();
    }

    // Signups through the REST API on three days: 2 the day before yesterday, 1 yesterday,
    // 1 today (whose key the script uses for chat calls).
    let http = reqwest::Client::new();
    let mut days = Vec::new();
    let mut key = String::new();
    for (ago, email, package, code) in [
        (2, "dev.client@exemple.dz", "dev", "LAUNCH30"),
        (2, "starter.client@exemple.dz", "starter", "LAUNCH30"),
        (1, "business.client@exemple.dz", "business", ""),
        (0, "premium.client@exemple.dz", "premium", "LAUNCH30"),
    ] {
        let at = now - ago * DAY_MS;
        clock.set(at);
        let r = http
            .post(format!("{}/api/promo/signup", stack.base))
            .json(&serde_json::json!({"email": email, "package": package, "promo_code": code}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let body: serde_json::Value = r.json().await.unwrap();
        key = body["api_key"].as_str().unwrap().to_owned();
        days.push(promo_service::domain::operator::day_of(at));
    }
    clock.set(now);

    let artifacts = root.join("target/screenshots/admin");
    std::fs::create_dir_all(&artifacts).unwrap();
    let run = run_script(
        &root,
        "admin.test.mjs",
        &[
            ("ADMIN_BASE_URL", stack.base.clone().into()),
            ("ADMIN_SIGNUP_DAYS", days.join(",").into()),
            ("ADMIN_CHAT_KEY", key.into()),
            ("ADMIN_MODEL", CONSOLE_MODEL.into()),
            ("ADMIN_PROVIDER", stack::Priced::PROVIDER.into()),
            (
                "ADMIN_PRICES_USD_PER_MTOK",
                format!(
                    "{},{}",
                    stack::Priced::INPUT_USD_PER_MTOK,
                    stack::Priced::OUTPUT_USD_PER_MTOK
                )
                .into(),
            ),
            (
                "ADMIN_UPSTREAM_USAGE",
                format!(
                    "{},{}",
                    stack::Priced::PROMPT_TOKENS,
                    stack::Priced::COMPLETION_TOKENS
                )
                .into(),
            ),
            (
                "ADMIN_USD_DZD_RATE_MILLI",
                stack::Priced::USD_DZD_RATE_MILLI.to_string().into(),
            ),
            ("ADMIN_OWNER_PASSWORD", OWNER_PASSWORD.into()),
            ("ADMIN_SUPPORT_PASSWORD", SUPPORT_PASSWORD.into()),
            ("ADMIN_ARTIFACTS", artifacts.into()),
        ],
    )
    .await;
    stack.stop().await;
    run.check();
}

const OWNER_PASSWORD: &str = "owner passphrase for the test";
/// The model the console's fixture calls (routed to the [`stack::Priced`] upstream).
const CONSOLE_MODEL: &str = "gpt-4o-mini";
const SUPPORT_PASSWORD: &str = "support passphrase for the test";

/// How a Node script ended.
struct Run {
    script: String,
    status: std::process::ExitStatus,
    out: String,
    err: String,
}

impl Run {
    fn check(self) {
        assert!(
            self.status.success(),
            "e2e/{} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            self.script,
            self.status,
            self.out,
            self.err
        );
        // Visible with `cargo test -- --nocapture`.
        eprintln!("{}", self.out);
    }
}

/// Runs `e2e/<script>` with `env` (and the Chromium path), at most 300 s.
async fn run_script(root: &Path, script: &str, env: &[(&str, std::ffi::OsString)]) -> Run {
    let path = root.join("e2e").join(script);
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(&path)
        .current_dir(root.join("e2e"))
        .env("LANDING_CHROMIUM", chromium_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {}: {e}", path.display()));
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read_out = tokio::spawn(read_all(stdout));
    let read_err = tokio::spawn(read_all(stderr));
    let status = match tokio::time::timeout(Duration::from_secs(300), child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = child.kill().await;
            let out = read_out.await.unwrap();
            let err = read_err.await.unwrap();
            panic!(
                "e2e/{script} did not finish within 300 s\n--- stdout\n{out}\n--- stderr\n{err}"
            );
        }
    };
    Run {
        script: script.to_owned(),
        status,
        out: read_out.await.unwrap(),
        err: read_err.await.unwrap(),
    }
}

async fn read_all(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf).await;
    String::from_utf8_lossy(&buf).into_owned()
}
