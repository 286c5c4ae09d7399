//! The request log's CSV export (`/api/admin/appels/export.csv`) over REST with promo-service,
//! llm-gateway and a local upstream: the owner gets exactly the rows the page's filters give
//! (walked page by page through `/api/admin/appels`, across several of the export's own pages),
//! with a header row, in UTF-8 and with formula-looking cells neutralised; a support operator,
//! an anonymous caller and a refused filter get their error and no CSV.

use std::collections::BTreeSet;

use futures::future::join_all;
use iafactory::proto::iafactory::promo::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::admin::{admin, operator_cookie, operators, send};
use crate::helpers::*;
use crate::llm::{LlmStack, MODEL};

/// Calls on a model that does not exist: each leaves an error row naming the model as the
/// caller typed it (more than one page of the export: it reads 200 rows at a time).
const UNKNOWN_CALLS: usize = 230;
/// Looks like a spreadsheet formula: the CSV must not hand it over as one.
const FORMULA_MODEL: &str = "=HYPERLINK(\"http://evil\";\"é\")";

/// Every id the console's page gives for `query`, walking `next_page_token` to the end.
async fn page_ids(s: &Stack, cookie: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = String::new();
    loop {
        let mut path = format!("/api/admin/appels?page_size=200&{query}");
        if !token.is_empty() {
            path.push_str(&format!("&page_token={token}"));
        }
        let a = send(s, Method::GET, &path, cookie, None, None).await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        for r in a.body["appels"].as_array().unwrap() {
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
        match a.body["next_page_token"].as_str() {
            Some(t) => token = t.to_owned(),
            None => return ids,
        }
    }
}

/// Parses the export: (header, rows), each row its cells. Quoted cells only (as written),
/// quotes doubled inside; no newline inside a cell in this log.
fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = text.split("\r\n");
    let cells = |line: &str| -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = line;
        while !rest.is_empty() {
            assert!(rest.starts_with('"'), "unquoted cell in {line:?}");
            let mut cell = String::new();
            let mut chars = rest[1..].char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if rest[1 + i + 1..].starts_with('"') {
                            cell.push('"');
                            chars.next();
                        } else {
                            break 1 + i + 1;
                        }
                    }
                    Some((_, c)) => cell.push(c),
                    None => panic!("unterminated cell in {line:?}"),
                }
            };
            out.push(cell);
            rest = &rest[end..];
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
        out
    };
    let header = cells(lines.next().unwrap());
    let rows: Vec<Vec<String>> = lines.filter(|l| !l.is_empty()).map(cells).collect();
    assert!(text.ends_with("\r\n"), "the last line is not ended");
    (header, rows)
}

async fn export(s: &Stack, cookie: &str, query: &str) -> Answer {
    send(
        s,
        Method::GET,
        &format!("/api/admin/appels/export.csv?{query}"),
        cookie,
        None,
        None,
    )
    .await
}

/// The export of `query` as (header, rows), checked to be the CSV answer of an owner.
async fn exported(s: &Stack, cookie: &str, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let a = export(s, cookie, query).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(
        a.header("content-type"),
        Some("text/csv; charset=utf-8"),
        "{a:?}"
    );
    assert!(
        a.header("content-disposition")
            .is_some_and(|d| d.contains("appels.csv")),
        "{a:?}"
    );
    assert_eq!(a.header("cache-control"), Some("no-store"));
    parse_csv(&a.text)
}

fn ids(rows: &[Vec<String>]) -> Vec<String> {
    rows.iter().map(|r| r[0].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_request_log_exports_as_csv_for_owners_only() {
    let s = LlmStack::spawn().await;
    let stack = &s.stack;
    let a = stack.signup("export-a@exemple.dz", "premium", "").await;
    let key_a = a.body["api_key"].as_str().unwrap().to_owned();
    let user_a = a.body["user_id"].as_str().unwrap().to_owned();
    let b = stack.signup("export-b@exemple.dz", "premium", "").await;
    let key_b = b.body["api_key"].as_str().unwrap().to_owned();
    let user_b = b.body["user_id"].as_str().unwrap().to_owned();

    let ok = json!({"model": MODEL, "messages": [{"role": "user", "content": "Salut"}]});
    for key in [&key_a, &key_a, &key_a, &key_b, &key_b] {
        assert_eq!(s.chat(key, ok.clone()).await.status(), StatusCode::OK);
    }
    let unknown = json!({"model": FORMULA_MODEL, "messages": [{"role": "user", "content": "x"}]});
    for batch in 0..UNKNOWN_CALLS.div_ceil(50) {
        let n = (UNKNOWN_CALLS - batch * 50).min(50);
        let answers = join_all((0..n).map(|_| s.chat(&key_a, unknown.clone()))).await;
        for r in answers {
            assert_eq!(r.status(), StatusCode::NOT_FOUND);
        }
    }
    let total = UNKNOWN_CALLS + 5;

    let mut ops = operators(stack).await;
    for (email, role) in [
        ("owner@iafactory.dz", pb::OperatorRole::Owner),
        ("support@iafactory.dz", pb::OperatorRole::Support),
    ] {
        ops.create_operator(admin(pb::CreateOperatorRequest {
            email: email.into(),
            display_name: email.split('@').next().unwrap().into(),
            role: role.into(),
            password: "a passphrase long enough".into(),
        }))
        .await
        .unwrap();
    }
    let sign_in = |email: &'static str| async move {
        let signed = stack
            .post(
                "/api/admin/session",
                json!({"email": email, "password": "a passphrase long enough"}),
            )
            .await;
        operator_cookie(&signed).0
    };
    let owner = sign_in("owner@iafactory.dz").await;
    let support = sign_in("support@iafactory.dz").await;

    // The log's writer works in batches: wait until every call is in it.
    let started = std::time::Instant::now();
    while page_ids(stack, &owner, "").await.len() < total {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the log never held {total} rows"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // No filter: every call, newest first, as the page walks them (two pages of the export).
    let (header, rows) = exported(stack, &owner, "").await;
    assert_eq!(
        header,
        gateway_rest::routes::admin_calls_export::HEADER
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(rows.len(), total);
    assert!(rows.iter().all(|r| r.len() == header.len()), "{rows:?}");
    assert_eq!(ids(&rows), page_ids(stack, &owner, "").await);
    assert_eq!(
        ids(&rows).into_iter().collect::<BTreeSet<_>>().len(),
        total,
        "a row twice"
    );

    // Each filter of the page gives exactly the page's rows.
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let prefix_b: String = key_b.chars().take(10).collect();
    for (query, expected) in [
        (format!("client={user_a}"), UNKNOWN_CALLS + 3),
        (format!("client={user_b}"), 2),
        (format!("cle={}", &prefix_b[..8]), 2),
        (format!("client={user_a}&statut=ok"), 3),
        ("statut=model_not_found".to_owned(), UNKNOWN_CALLS),
        (format!("modele={MODEL}&fournisseur=fake"), 5),
        ("depuis=1&jusqua=2".to_owned(), 0),
    ] {
        let (_, got) = exported(stack, &owner, &query).await;
        assert_eq!(got.len(), expected, "{query}");
        assert_eq!(ids(&got), page_ids(stack, &owner, &query).await, "{query}");
    }

    // What the cells hold: the ok calls' figures (7 + 5 tokens at 1 and 2 $/Mtok: 17 µ$),
    // the formula neutralised by a leading apostrophe and read back intact otherwise (UTF-8).
    let (_, b_rows) = exported(stack, &owner, &format!("client={user_b}")).await;
    for r in &b_rows {
        assert_eq!(r[col("customer_id")], user_b);
        assert_eq!(r[col("key_prefix")], prefix_b);
        assert_eq!(r[col("kind")], "chat");
        assert_eq!(r[col("model")], MODEL);
        assert_eq!(r[col("provider")], "fake");
        assert_eq!(
            (&*r[col("prompt_tokens")], &*r[col("completion_tokens")]),
            ("7", "5")
        );
        assert_eq!(r[col("cost_usd")], "0.000017000");
        assert_eq!((&*r[col("status")], &*r[col("error_code")]), ("ok", ""));
        assert!(r[col("at")].ends_with('Z'), "{r:?}");
    }
    let (_, errors) = exported(stack, &owner, "statut=error").await;
    assert_eq!(errors.len(), UNKNOWN_CALLS);
    for r in &errors {
        assert_eq!(r[col("model")], format!("'{FORMULA_MODEL}"));
        assert_eq!(r[col("error_code")], "model_not_found");
        assert_eq!(r[col("provider")], "");
    }
    let raw = export(stack, &owner, "statut=error").await.text;
    assert!(
        !raw.contains("\"=HYPERLINK") && !raw.contains(",=HYPERLINK"),
        "a cell starts with ="
    );

    // Support reads the log but may not export it; nor may anyone without a session; a refused
    // filter is a 400. None of them gets any CSV.
    assert_eq!(page_ids(stack, &support, "").await.len(), total);
    let refused = export(stack, &support, "").await;
    refused.assert_error(403, "permission_denied");
    assert!(!refused.text.contains("customer_id"), "{refused:?}");
    let anonymous = stack.get("/api/admin/appels/export.csv").await;
    anonymous.assert_error(401, "unauthenticated");
    for bad in ["cle=a%25", "page_size=2", "inconnu=1", "depuis=abc"] {
        let a = export(stack, &owner, bad).await;
        a.assert_error(400, "invalid_argument");
        assert!(
            !a.header("content-type")
                .is_some_and(|t| t.starts_with("text/csv")),
            "{bad}: {a:?}"
        );
    }
    s.stop().await;
}
