//! Hostile input: every case gets its documented 4xx with a JSON error body; none gets a 5xx;
//! nothing is written (checked through the admin statistics at the end).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Option<Vec<u8>>,
    /// Expected status and `error.code` (an empty code: a 200 data answer is expected).
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, method: Method, path: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: None,
        status,
        code,
    }
}

impl Case {
    fn json(mut self, body: &str) -> Case {
        self.headers
            .push(("content-type", b"application/json".to_vec()));
        self.body = Some(body.as_bytes().to_vec());
        self
    }
    fn raw(mut self, content_type: Option<&str>, body: Vec<u8>) -> Case {
        if let Some(ct) = content_type {
            self.headers.push(("content-type", ct.as_bytes().to_vec()));
        }
        self.body = Some(body);
        self
    }
    fn header(mut self, name: &'static str, value: &[u8]) -> Case {
        self.headers.push((name, value.to_vec()));
        self
    }
}

const V: &str = "/api/promo/validate";
const S: &str = "/api/promo/signup";

fn cases() -> Vec<Case> {
    use Method as M;
    let ten_mb = vec![b'a'; 10 * 1024 * 1024];
    let mut big_json = b"{\"email\":\"".to_vec();
    big_json.extend(vec![b'x'; 10 * 1024 * 1024]);
    big_json.extend(b"@x.dz\",\"package\":\"dev\"}");
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let long_code = "A".repeat(10_000);
    vec![
        // Malformed JSON, wrong types, missing fields.
        case("truncated json", M::POST, V, 400, "malformed_json").json("{\"code\":"),
        case("not json at all", M::POST, V, 400, "malformed_json").json("code=LAUNCH30"),
        case("empty body", M::POST, V, 400, "malformed_json").json(""),
        case("trailing garbage", M::POST, S, 400, "malformed_json")
            .json("{\"email\":\"a@b.dz\",\"package\":\"dev\"} x"),
        case("deeply nested", M::POST, S, 400, "invalid_argument").json(&deep),
        case("invalid utf-8", M::POST, S, 400, "malformed_json").raw(
            Some("application/json"),
            b"{\"email\":\"\xff\xfe@b.dz\",\"package\":\"dev\"}".to_vec(),
        ),
        case("code is a number", M::POST, V, 400, "invalid_argument").json("{\"code\":123}"),
        case("package is an object", M::POST, V, 400, "invalid_argument")
            .json("{\"code\":\"LAUNCH30\",\"package\":{}}"),
        case(
            "array instead of object",
            M::POST,
            V,
            400,
            "invalid_argument",
        )
        .json("[]"),
        case("null body", M::POST, V, 400, "invalid_argument").json("null"),
        case(
            "array filling a struct",
            M::POST,
            V,
            400,
            "invalid_argument",
        )
        .json("[\"LAUNCH30\"]"),
        case(
            "array patch",
            M::PATCH,
            "/api/promo/codes/LAUNCH30",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes())
        .json("[false, 1]"),
        case("array signup", M::POST, S, 400, "invalid_argument")
            .json("[\"arr@b.dz\", \"dev\", \"\"]"),
        case("missing code", M::POST, V, 400, "invalid_argument").json("{}"),
        case("unknown field", M::POST, V, 400, "invalid_argument")
            .json("{\"code\":\"LAUNCH30\",\"admin\":true}"),
        case("email is a bool", M::POST, S, 400, "invalid_argument")
            .json("{\"email\":true,\"package\":\"dev\"}"),
        case("missing package", M::POST, S, 400, "invalid_argument").json("{\"email\":\"a@b.dz\"}"),
        case("empty email", M::POST, S, 400, "invalid_email")
            .json("{\"email\":\"\",\"package\":\"dev\"}"),
        case("malformed email", M::POST, S, 400, "invalid_email")
            .json("{\"email\":\"not-an-email\",\"package\":\"dev\"}"),
        case("unknown package", M::POST, S, 400, "unknown_package")
            .json("{\"email\":\"a@b.dz\",\"package\":\"gold\"}"),
        case(
            "client-chosen price (unknown field)",
            M::POST,
            S,
            400,
            "invalid_argument",
        )
        .json("{\"email\":\"a@b.dz\",\"package\":\"dev\",\"price_dzd\":-1}"),
        // SQL-looking and unicode strings.
        case("sql in email", M::POST, S, 400, "invalid_email")
            .json("{\"email\":\"a'); DROP TABLE signups;--@b.dz\",\"package\":\"dev\"}"),
        case("sql in package", M::POST, S, 400, "unknown_package")
            .json("{\"email\":\"a@b.dz\",\"package\":\"dev' OR '1'='1\"}"),
        case("sql in promo code", M::POST, S, 404, "promo_unknown")
            .json("{\"email\":\"sql@b.dz\",\"package\":\"dev\",\"promo_code\":\"' OR 1=1 --\"}"),
        case("sql in validate (a refusal is data)", M::POST, V, 200, "")
            .json("{\"code\":\"LAUNCH30' OR '1'='1\"}"),
        case("unicode package", M::POST, S, 400, "unknown_package")
            .json("{\"email\":\"a@b.dz\",\"package\":\"dév🚀\"}"),
        case("nul byte in email", M::POST, S, 400, "invalid_email")
            .json("{\"email\":\"a\\u0000@b.dz\",\"package\":\"dev\"}"),
        case("rtl override code (refused as data)", M::POST, V, 200, "")
            .json("{\"code\":\"\\u202eLAUNCH30\"}"),
        case("code too long", M::POST, V, 400, "invalid_argument")
            .json(&format!("{{\"code\":\"{long_code}\"}}")),
        case(
            "path code too long",
            M::GET,
            &format!("/api/promo/{long_code}/remaining"),
            400,
            "invalid_argument",
        ),
        case(
            "path code not utf-8",
            M::GET,
            "/api/promo/%FF%FE/remaining",
            400,
            "invalid_argument",
        ),
        case(
            "path code sql",
            M::GET,
            "/api/promo/'%20OR%201=1/remaining",
            404,
            "promo_unknown",
        ),
        // Sizes and content types.
        case("10 MB body", M::POST, S, 413, "payload_too_large")
            .raw(Some("application/json"), big_json),
        case(
            "10 MB body, text",
            M::POST,
            V,
            415,
            "unsupported_media_type",
        )
        .raw(Some("text/plain"), ten_mb),
        case(
            "form content type",
            M::POST,
            V,
            415,
            "unsupported_media_type",
        )
        .raw(
            Some("application/x-www-form-urlencoded"),
            b"code=LAUNCH30".to_vec(),
        ),
        case("no content type", M::POST, S, 415, "unsupported_media_type")
            .raw(None, b"{\"email\":\"a@b.dz\",\"package\":\"dev\"}".to_vec()),
        case(
            "garbage content type",
            M::POST,
            S,
            415,
            "unsupported_media_type",
        )
        .raw(Some("json; ;;; =="), b"{}".to_vec()),
        // Unknown routes and wrong methods.
        case(
            "unknown route",
            M::GET,
            "/admin.php",
            404,
            "route_not_found",
        ),
        case(
            "unknown api route",
            M::GET,
            "/api/promo",
            404,
            "route_not_found",
        ),
        case(
            "traversal",
            M::GET,
            "/api-packages/../../Cargo.toml",
            404,
            "route_not_found",
        ),
        case(
            "encoded traversal",
            M::GET,
            "/api-packages/..%2F..%2FCargo.toml",
            404,
            "route_not_found",
        ),
        case(
            "static file name longer than the file system allows",
            M::GET,
            "/api-packages/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.js",
            404,
            "route_not_found",
        ),
        case(
            "missing static file",
            M::GET,
            "/api-packages/nope.js",
            404,
            "route_not_found",
        ),
        case("GET on signup", M::GET, S, 405, "method_not_allowed"),
        case("DELETE on signup", M::DELETE, S, 405, "method_not_allowed"),
        case(
            "PUT on a code",
            M::PUT,
            "/api/promo/codes/LAUNCH30",
            405,
            "method_not_allowed",
        ),
        case(
            "POST on static",
            M::POST,
            "/api-packages/",
            405,
            "method_not_allowed",
        ),
        case(
            "GET on chat",
            M::GET,
            "/v1/chat/completions",
            405,
            "method_not_allowed",
        ),
        case(
            "unknown /v1 route",
            M::GET,
            "/v1/completions",
            404,
            "route_not_found",
        ),
        // Missing and invalid tokens on admin routes.
        case(
            "stats without token",
            M::GET,
            "/api/promo/stats",
            401,
            "unauthenticated",
        ),
        case(
            "stats wrong token",
            M::GET,
            "/api/promo/stats",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer wrong-token-1234567890"),
        case(
            "stats basic auth",
            M::GET,
            "/api/promo/stats",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Basic YWRtaW46YWRtaW4="),
        case(
            "stats empty bearer",
            M::GET,
            "/api/promo/stats",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer "),
        case(
            "stats non-ascii token",
            M::GET,
            "/api/promo/stats",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer \xc3\xa9t\xc3\xa9"),
        case(
            "signups without token",
            M::GET,
            "/api/promo/signups",
            401,
            "unauthenticated",
        ),
        case(
            "create code without token",
            M::POST,
            "/api/promo/codes",
            401,
            "unauthenticated",
        )
        .json("{\"code\":\"FREE100\",\"duration_months\":120,\"discounts\":{\"premium\":100}}"),
        case(
            "create code wrong token",
            M::POST,
            "/api/promo/codes",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer wrong-token-1234567890")
        .json("{\"code\":\"FREE100\",\"duration_months\":120,\"discounts\":{\"premium\":100}}"),
        case(
            "patch code wrong token",
            M::PATCH,
            "/api/promo/codes/LAUNCH30",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer wrong-token-1234567890")
        .json("{\"max_redemptions\":1000000}"),
        case(
            "revoke without token",
            M::POST,
            "/api/promo/signups/usr_x/revoke-key",
            401,
            "unauthenticated",
        ),
        case(
            "suspension wrong token",
            M::PUT,
            "/api/promo/signups/usr_x/suspension",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer wrong-token-1234567890")
        .json("{\"suspended\":true}"),
        case(
            "suspension, admin, unknown field",
            M::PUT,
            "/api/promo/signups/usr_x/suspension",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes())
        .json("{\"suspended\":true,\"forever\":true}"),
        case(
            "providers without token",
            M::GET,
            "/api/gateway/providers",
            401,
            "unauthenticated",
        ),
        case(
            "providers wrong token",
            M::GET,
            "/api/gateway/providers",
            401,
            "unauthenticated",
        )
        .header("authorization", b"Bearer wrong-token-1234567890"),
        case(
            "create code, admin, bad types",
            M::POST,
            "/api/promo/codes",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes())
        .json("{\"code\":\"X1X\",\"duration_months\":\"six\",\"discounts\":{}}"),
        case(
            "create code, admin, 100% forever",
            M::POST,
            "/api/promo/codes",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes())
        .json("{\"code\":\"X1X\",\"duration_months\":1000,\"discounts\":{\"dev\":100}}"),
        case(
            "signups bad page size",
            M::GET,
            "/api/promo/signups?page_size=abc",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes()),
        case(
            "signups bad page token",
            M::GET,
            "/api/promo/signups?page_token=%27%3B--",
            400,
            "invalid_argument",
        )
        .header("authorization", format!("Bearer {ADMIN_TOKEN}").as_bytes()),
        // Header abuse.
        case(
            "idempotency key too short",
            M::POST,
            S,
            400,
            "invalid_argument",
        )
        .header("idempotency-key", b"abc")
        .json("{\"email\":\"idem@b.dz\",\"package\":\"dev\"}"),
        case(
            "idempotency key non-ascii",
            M::POST,
            S,
            400,
            "invalid_argument",
        )
        .header(
            "idempotency-key",
            b"cl\xc3\xa9-\xc3\xa9\xc3\xa9\xc3\xa9-12345",
        )
        .json("{\"email\":\"idem@b.dz\",\"package\":\"dev\"}"),
        case("idempotency key huge", M::POST, S, 400, "invalid_argument")
            .header("idempotency-key", "k".repeat(4000).as_bytes())
            .json("{\"email\":\"idem@b.dz\",\"package\":\"dev\"}"),
        case("two idempotency keys", M::POST, S, 400, "invalid_argument")
            .header("idempotency-key", b"key-aaaaaaaa-1")
            .header("idempotency-key", b"key-bbbbbbbb-2")
            .json("{\"email\":\"idem@b.dz\",\"package\":\"dev\"}"),
        case(
            "chat 10 MB",
            M::POST,
            "/v1/chat/completions",
            413,
            "payload_too_large",
        )
        .header("authorization", b"Bearer iaf_some_key")
        .raw(Some("application/json"), {
            let mut b =
                b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"".to_vec();
            b.extend(vec![b'x'; 10 * 1024 * 1024]);
            b.extend(b"\"}]}");
            b
        }),
        case(
            "chat without key",
            M::POST,
            "/v1/chat/completions",
            401,
            "unauthenticated",
        )
        .json("{\"model\":1}"),
        case(
            "usage without key",
            M::GET,
            "/v1/usage",
            401,
            "unauthenticated",
        ),
        case(
            "chat model wrong type",
            M::POST,
            "/v1/chat/completions",
            400,
            "invalid_argument",
        )
        .header("authorization", b"Bearer iaf_some_key")
        .json("{\"model\":1}"),
        case(
            "chat malformed",
            M::POST,
            "/v1/chat/completions",
            400,
            "malformed_json",
        )
        .header("authorization", b"Bearer iaf_some_key")
        .json("{\"model\":"),
        case(
            "chat unsupported role",
            M::POST,
            "/v1/chat/completions",
            400,
            "invalid_argument",
        )
        .header("authorization", b"Bearer iaf_some_key")
        .json("{\"model\":\"m\",\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}"),
        case(
            "chat unknown field inside a message",
            M::POST,
            "/v1/chat/completions",
            400,
            "invalid_argument",
        )
        .header("authorization", b"Bearer iaf_some_key")
        .json("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"foo\":1}]}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_documented_4xx_and_writes_nothing() {
    let s = Stack::spawn().await;
    let before = s.stats().await;
    let mut failures = Vec::new();
    for c in cases() {
        let mut req = s.gw.request(c.method.clone(), &c.path);
        for (name, value) in &c.headers {
            req = req.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        if let Some(body) = c.body.clone() {
            req = req.body(body);
        }
        let a = match req.send().await {
            Ok(r) => Answer::of(r).await,
            Err(e) => {
                failures.push(format!("{}: transport error {e}", c.name));
                continue;
            }
        };
        if a.status.is_server_error() {
            failures.push(format!("{}: SERVER ERROR {a:?}", c.name));
            continue;
        }
        let json_body = a
            .header("content-type")
            .is_some_and(|v| v.starts_with("application/json"));
        let body_ok = json_body && (c.code.is_empty() || a.body["error"]["message"].is_string());
        if a.status.as_u16() != c.status || a.error_code() != c.code || !body_ok {
            failures.push(format!(
                "{}: expected {} {}, got {} {}",
                c.name,
                c.status,
                c.code,
                a.status,
                a.text.chars().take(300).collect::<String>()
            ));
        }
        if c.path.starts_with("/v1/") && a.status.is_client_error() {
            assert!(a.body["error"]["type"].is_string(), "{}: {a:?}", c.name);
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));

    // Nothing written: no signup, no new code, LAUNCH30 untouched.
    let after = s.stats().await;
    assert_eq!(after, before);
    assert_eq!(after["total_signups"], 0);
    assert_eq!(after["codes"].as_array().unwrap().len(), 1);
    assert_eq!(after["codes"][0]["max_redemptions"], 30);
    assert_eq!(after["codes"][0]["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_kept_or_replaced() {
    let s = Stack::spawn().await;
    let get = |id: Option<&'static str>| {
        let mut r = s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining");
        if let Some(id) = id {
            r = r.header("x-request-id", id);
        }
        r.send()
    };
    let kept = get(Some("abc-123.DEF")).await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123.DEF");
    let generated = get(None).await.unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(id.len() >= 16, "{id}");
    let other = get(None).await.unwrap();
    assert_ne!(other.headers()["x-request-id"].to_str().unwrap(), id);
    // Abusive ids (too long, odd characters) are replaced, not echoed.
    let long = "x".repeat(1000);
    let r =
        s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining")
            .header("x-request-id", long.as_str())
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()["x-request-id"].to_str().unwrap(), long);
    let r =
        s.gw.request(Method::GET, "/nope")
            .header("x-request-id", "<script>")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_ne!(r.headers()["x-request-id"], "<script>");
    // Many headers of junk do not produce a 5xx.
    let mut req = s.gw.request(Method::POST, "/api/promo/validate");
    for i in 0..50 {
        req = req.header(format!("x-junk-{i}"), "\u{1}".repeat(0).to_owned() + "zz");
    }
    let a = Answer::of(req.json(&json!({"code": "LAUNCH30"})).send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
}

/// A client that never finishes its headers (slowloris) loses its connection at the time limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_clients_are_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s =
        Stack::spawn_with(|c| c.header_read_timeout = std::time::Duration::from_millis(300)).await;
    let mut tcp = tokio::net::TcpStream::connect(s.gw.base.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut buf),
    )
    .await
    .expect("slow client kept its connection");
    // Closed (possibly after a 408); never a 5xx.
    assert!(read.is_ok() || buf.is_empty(), "{read:?}");
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.starts_with("HTTP/1.1 5"), "{text}");
    // The server still serves others.
    assert_eq!(s.get("/api/promo/health").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_in_the_static_folder_is_not_followed_out_of_it() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "top secret").unwrap();
    let site = tempfile::tempdir().unwrap();
    std::fs::write(
        site.path().join("index.html"),
        "<!doctype html><title>ok</title>",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        site.path().join("leak.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), site.path().join("outside")).unwrap();
    let dir = site.path().to_owned();
    let s = Stack::spawn_with(move |c| c.static_dir = Some(dir)).await;
    let page = s.get("/api-packages/").await;
    assert_eq!(page.status, StatusCode::OK);
    for path in ["/api-packages/leak.txt", "/api-packages/outside/secret.txt"] {
        let a = s.get(path).await;
        a.assert_error(404, "route_not_found");
        assert!(!a.text.contains("top secret"));
    }
}
