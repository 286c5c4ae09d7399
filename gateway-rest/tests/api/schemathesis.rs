//! schemathesis (from the project's .venv) fuzzes every documented operation from
//! `/openapi.json` against the full stack: no server error, and every answer conforms to the
//! document (status codes, content types, schemas).

use std::time::Duration;

use crate::llm::LlmStack;

async fn run_schemathesis(base: &str, auth: &str, workers: u32, filter: &[&str]) -> (bool, String) {
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/schemathesis");
    assert!(
        std::path::Path::new(bin).exists(),
        "{bin} is missing: run scripts/test-setup.sh"
    );
    let report = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--checks", "all"])
        // The document describes shapes; business rules (a well-formed e-mail, an existing
        // package, a 3-32 character code) cannot all be expressed in it, so schema-valid
        // input may still be refused with a documented 4xx.
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "25", "--seed", "20261124"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--request-timeout", "20", "--workers", &workers.to_string()])
        .args(["--suppress-health-check", "all"])
        .args(["--header", &format!("Authorization: Bearer {auth}")])
        .args(filter)
        .args(["--report", "har", "--report-dir"])
        .arg(
            std::env::var("SCHEMATHESIS_REPORT_DIR")
                .map_or_else(|_| report.path().to_owned(), std::path::PathBuf::from),
        )
        // Its cache folder (.schemathesis/) goes to the temp folder, not the source tree.
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(900), cmd.output())
        .await
        .expect("schemathesis did not finish")
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_or_schema_violation() {
    let s = LlmStack::spawn().await;
    let base = s.stack.gw.base.clone();
    // The admin token for /api routes (schemathesis learns user ids from the signup list and
    // revokes their keys, so the customer's key is made afterwards); that key for /v1.
    // One worker here too: since the console's query parameters (`/api/admin/clients`), the
    // first operation to reach that `ast.parse` is in this run, and two workers tripped the same
    // CPython 3.11 SystemError described below (2 full-suite runs in 3).
    let (ok_admin, admin_out) = run_schemathesis(
        &base,
        crate::helpers::ADMIN_TOKEN,
        1,
        // The endless event stream is covered by its own test.
        &["--exclude-path-regex", "(^/v1/|/stream$)"],
    )
    .await;
    let key = s.api_key("premium").await;
    // One worker for /v1: its schemas hold free-form JSON (tool parameters, JSON schemas, the
    // passthrough fields), which hypothesis draws through `st.recursive`, whose validation
    // parses lambda sources with `ast.parse`; two threads doing that at once trip CPython 3.11's
    // "AST constructor recursion depth mismatch" (a SystemError inside schemathesis, 2 runs in
    // 3 with two workers, none with one).
    let (ok_key, key_out) =
        run_schemathesis(&base, &key, 1, &["--include-path-regex", "^/v1/"]).await;
    assert!(
        ok_admin,
        "schemathesis (admin token, /api and ops):\n{admin_out}"
    );
    assert!(ok_key, "schemathesis (API key, /v1):\n{key_out}");
    if std::env::var_os("SCHEMATHESIS_LOG").is_some() {
        eprintln!("{admin_out}\n{key_out}");
    }
    s.stop().await;
}
