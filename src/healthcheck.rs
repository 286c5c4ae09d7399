//! The `healthcheck` subcommand of every binary (`promo-service healthcheck`, …): asks the service
//! running next to it — the address it listens on, read from the same flags and environment —
//! whether it is healthy, prints one line and exits 0 (healthy) or 1. Container health checks run
//! it (`["CMD", "promo-service", "healthcheck"]`), so the image needs neither curl nor a shell.
//!
//! The gRPC services are asked `grpc.health.v1.Health/Check` for the overall status (service
//! `""`), which turns NOT_SERVING while their database does not accept writes and while they
//! drain; gateway-rest is asked `GET /readyz`.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Time the whole check may take (connect and answer).
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Where a local client reaches a service listening on `listen`: an unspecified address
/// (`0.0.0.0`, `[::]`) means the loopback address of the same family, on the same port.
pub fn local_target(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// A check's outcome: `Ok` when healthy; either way the text of the line to print.
pub type Outcome = Result<String, String>;

/// Asks the gRPC service listening on `listen` for its overall health status.
pub async fn grpc(listen: SocketAddr, timeout: Duration) -> Outcome {
    let target = local_target(listen);
    let ask = async {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{target}"))
            .map_err(|e| format!("bad address {target}: {}", chain(&e)))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("unreachable at {target}: {}", chain(&e)))?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|s| {
                format!(
                    "no health answer from {target}: {:?} {}",
                    s.code(),
                    s.message()
                )
            })?;
        let status =
            ServingStatus::try_from(answer.into_inner().status).unwrap_or(ServingStatus::Unknown);
        match status {
            ServingStatus::Serving => Ok(format!("SERVING at {target}")),
            other => Err(format!("{} at {target}", other.as_str_name())),
        }
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer from {target} within {timeout:?}")),
    }
}

/// `GET path` on the HTTP service listening on `listen`: healthy on a 200.
pub async fn http(listen: SocketAddr, path: &str, timeout: Duration) -> Outcome {
    use http_body_util::BodyExt as _;
    let target = local_target(listen);
    let ask = async {
        let stream = tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| format!("unreachable at {target}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake with {target} failed: {}", chain(&e)))?;
        let driver = tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, target.to_string())
            .header(http::header::USER_AGENT, "iafactory-healthcheck")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .map_err(|e| format!("bad request {path}: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer from {target}{path}: {}", chain(&e)))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        driver.abort();
        let body = one_line(&String::from_utf8_lossy(&body), 300);
        if status == http::StatusCode::OK {
            Ok(format!("{status} from {target}{path}"))
        } else {
            Err(format!("{status} from {target}{path}: {body}"))
        }
    };
    match tokio::time::timeout(timeout, ask).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer from {target}{path} within {timeout:?}")),
    }
}

/// Prints `<name> healthcheck: ok|failed: <text>` on standard output (one line) and gives the exit
/// code: 0 when healthy, 1 otherwise.
pub fn report(name: &str, outcome: &Outcome) -> ExitCode {
    let (verdict, text, code) = match outcome {
        Ok(text) => ("ok", text, ExitCode::SUCCESS),
        Err(text) => ("failed", text, ExitCode::from(1)),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{name} healthcheck: {verdict}: {}",
        one_line(text, 500)
    );
    let _ = out.flush();
    code
}

/// An error with its sources (`transport error: tcp connect error: Connection refused`).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_mean_loopback() {
        let t = |s: &str| local_target(s.parse().unwrap()).to_string();
        assert_eq!(t("0.0.0.0:50051"), "127.0.0.1:50051");
        assert_eq!(t("[::]:8180"), "[::1]:8180");
        assert_eq!(t("10.0.0.5:50052"), "10.0.0.5:50052");
        assert_eq!(t("[::1]:1"), "[::1]:1");
    }

    #[test]
    fn lines_are_single_and_bounded() {
        assert_eq!(one_line("a\nb\r\n", 10), "a b");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_failure() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let outcome = grpc(addr, Duration::from_secs(2)).await;
        assert!(
            outcome.as_ref().is_err_and(|e| e.contains("unreachable")),
            "{outcome:?}"
        );
        let outcome = http(addr, "/readyz", Duration::from_secs(2)).await;
        assert!(
            outcome.as_ref().is_err_and(|e| e.contains("unreachable")),
            "{outcome:?}"
        );
    }
}
