//! Connection hygiene of the public edge: how long a client connection may stay open doing
//! nothing, and how many may be open at once.
//!
//! hyper's header-read limit only starts once HTTP/1 or HTTP/2 has been told apart, and HTTP/1
//! keep-alive and HTTP/2 connections have no idle limit of their own: a socket that sends
//! nothing, or less than a protocol preface, would stay open forever, and enough of them exhaust
//! the process's file descriptors (then `/healthz` stops answering too). So every connection has
//! a watchdog ([`Activity`]): a connection that has not started its first request within the
//! first-request deadline, or that has had no request in progress for the idle timeout, is
//! closed. A request is in progress from its head until its response body is done, so a long
//! chat completion or an open event stream keeps its connection. Past `max_connections`, a new
//! connection is answered a bare 503 and closed at once, before it can hold anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
/// What the watchdog of one connection knows: requests in progress, and since when the
/// connection has been doing nothing.
pub struct Activity {
    epoch: Instant,
    in_progress: AtomicUsize,
    started: AtomicU64,
    /// Milliseconds since `epoch` of the last request start or end.
    last_change_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            in_progress: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last_change_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A request started; the guard ends it (drop it when the response body is done).
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_progress.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }

    /// Resolves when the connection has been doing nothing for too long: no first request within
    /// `first_request`, or no request in progress for `idle` since the last one ended.
    pub async fn idle(&self, first_request: Duration, idle: Duration) {
        loop {
            let limit = if self.started.load(Ordering::Relaxed) == 0 {
                first_request
            } else {
                idle
            };
            let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
            let wait_ms = if self.in_progress.load(Ordering::Relaxed) > 0 {
                limit_ms
            } else {
                let quiet = self
                    .now_ms()
                    .saturating_sub(self.last_change_ms.load(Ordering::Relaxed));
                if quiet >= limit_ms {
                    return;
                }
                limit_ms - quiet
            };
            tokio::time::sleep(Duration::from_millis(wait_ms.max(10))).await;
        }
    }
}

/// One request in progress on a connection.
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let now = self.0.now_ms();
        self.0.last_change_ms.store(now, Ordering::Relaxed);
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts open client connections against the cap.
pub struct OpenConnections {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One open connection, counted until dropped.
pub struct ConnectionSlot(Arc<AtomicUsize>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OpenConnections {
    pub fn new(max: usize) -> OpenConnections {
        OpenConnections {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot for a new connection, or `None` when the cap is reached.
    pub fn try_open(&self) -> Option<ConnectionSlot> {
        let before = self.open.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectionSlot(Arc::clone(&self.open));
        (before < self.max).then_some(slot)
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// The answer to a connection over the cap: a complete HTTP/1.1 503 with the platform's JSON
/// error body, then the socket is closed. (Written raw: no request is read, nothing is kept.)
pub async fn refuse(mut tcp: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"unavailable","message":"Trop de connexions ouvertes, veuillez réessayer."}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        let _ = tcp.write_all(answer.as_bytes()).await;
        let _ = tcp.shutdown().await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_the_first_request_then_for_quiet() {
        let a = Activity::new();
        let started = tokio::time::Instant::now();
        a.idle(Duration::from_secs(10), Duration::from_secs(60))
            .await;
        assert!(started.elapsed() >= Duration::from_secs(10));

        let a = Activity::new();
        let guard = a.begin();
        let watch = {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                a.idle(Duration::from_secs(10), Duration::from_secs(60))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(
            !watch.is_finished(),
            "closed while a request was in progress"
        );
        drop(guard);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert!(watch.is_finished(), "not closed after the idle timeout");
    }

    #[test]
    fn the_cap_refuses_past_its_maximum_and_frees_on_drop() {
        let open = OpenConnections::new(2);
        let a = open.try_open();
        let b = open.try_open();
        assert!(a.is_some() && b.is_some());
        assert!(open.try_open().is_none());
        drop(a);
        assert!(open.try_open().is_some());
    }
}
