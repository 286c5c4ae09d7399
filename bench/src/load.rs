//! Closed-loop load: N workers, each with its own connection, send a request as soon as the
//! previous answer arrived, for a fixed time after a warm-up. Latencies are kept whole (a few
//! million u32 at most) so percentiles are exact.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde::Serialize;

/// Figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    pub requests: usize,
    pub errors: usize,
    pub rps: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub max_us: u32,
    /// CPU time of this whole process (load generator, services, upstream) per successful call
    /// while measuring, in µs; 0 when not measured. Less sensitive than latency to other load on
    /// a shared machine.
    pub cpu_us: f64,
}

/// CPU time used by this process so far.
pub fn process_cpu() -> Duration {
    crate::procstat::cpu_of("self")
}

pub fn stats(mut lat: Vec<u32>, errors: usize, elapsed: Duration) -> RunStats {
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    RunStats {
        requests: lat.len(),
        errors,
        rps: lat.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0),
        cpu_us: 0.0,
    }
}

/// A worker's client: makes one call, says whether it succeeded.
pub trait Caller: Send + 'static {
    fn call(&mut self) -> impl Future<Output = bool> + Send;
}

/// Runs one `Caller` per worker for `duration` after `warmup`; only successes count as latency.
pub async fn closed_loop<C: Caller>(
    callers: Vec<C>,
    warmup: Duration,
    duration: Duration,
) -> RunStats {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for mut c in callers {
        let stop = Arc::clone(&stop);
        let measuring = Arc::clone(&measuring);
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(1 << 16);
            let mut errors = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = c.call().await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(warmup).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_started = process_cpu();
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_started);
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        if let Ok((lat, e)) = w.await {
            all.extend(lat);
            errors += e;
        }
    }
    let mut s = stats(all, errors, elapsed);
    s.cpu_us = cpu.as_secs_f64() * 1e6 / s.requests.max(1) as f64;
    s
}

/// A lean HTTP/1.1 keep-alive connection (hyper's low-level client: no pool, no extra layers), so
/// the load generator spends as little of the shared CPU as possible.
pub struct Http1 {
    addr: std::net::SocketAddr,
    send: Option<SendRequest<Full<Bytes>>>,
}

impl Http1 {
    pub fn new(addr: std::net::SocketAddr) -> Http1 {
        Http1 { addr, send: None }
    }

    async fn connect(&mut self) -> Option<&mut SendRequest<Full<Bytes>>> {
        if self.send.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let _ = stream.set_nodelay(true);
            let (send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            self.send = Some(send);
        }
        self.send.as_mut()
    }

    /// Sends a request; returns the status and body, or None on a transport error.
    pub async fn request(&mut self, req: hyper::Request<Full<Bytes>>) -> Option<(u16, Bytes)> {
        let send = self.connect().await?;
        send.ready().await.ok()?;
        let resp = match send.send_request(req).await {
            Ok(r) => r,
            Err(_) => {
                self.send = None;
                return None;
            }
        };
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, body))
    }
}

/// Builds a request with a host header and optional JSON body and bearer token.
pub fn request(
    method: &str,
    addr: std::net::SocketAddr,
    path: &str,
    body: Option<&Bytes>,
    bearer: Option<&str>,
) -> hyper::Request<Full<Bytes>> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Full::new(body.cloned().unwrap_or_default()))
        .unwrap_or_else(|_| hyper::Request::new(Full::new(Bytes::new())))
}
