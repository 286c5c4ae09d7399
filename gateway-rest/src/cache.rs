//! Optional push-fed cache of `GET /api/promo/{code}/remaining` (`REMAINING_CACHE=true`).
//!
//! The landing page polls the counter; every poll would otherwise be a gRPC call and a database
//! read in promo-service. With the cache on, the first successful answer for a code starts one
//! `WatchRemaining` stream per code and gateway replica; every message promo-service pushes (one
//! per change of the count, from any replica sharing the database) replaces the cached, already
//! encoded answer, and polls are answered from memory.
//!
//! Freshness is the live counter's: a change is seen when promo-service pushes it (immediately
//! for signups on the same promo-service replica, within its poll interval for others). After a
//! signup or a code change made through this gateway, polls of that code go to promo-service for
//! `WRITE_GRACE` — longer than the live counter takes to push the change — so a client reads its
//! own writes. When the stream fails or ends (promo-service restarting), the entry is dropped and calls
//! go to promo-service again until a new stream is up. Codes nobody asked for in `IDLE` stop being
//! watched. Only codes promo-service answered for get an entry, and at most `MAX_ENTRIES`.
//!
//! The live counter's event streams (`/remaining/stream`) of a watched code subscribe to the same
//! entry, so a thousand visitors on the landing page cost promo-service one stream, not a
//! thousand. When the entry goes away, their streams end (browsers' `EventSource` reconnects).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use tokio::sync::watch;

use crate::backend::Backend;

/// Codes watched at most (they exist only if the operator created them; this bounds abuse).
const MAX_ENTRIES: usize = 1024;
/// A code nobody polled for this long stops being watched.
const IDLE: Duration = Duration::from_secs(300);
/// After a write through this gateway, polls bypass the cache this long (the live counter's
/// push delay is the promo-service poll interval, 500 ms by default).
const WRITE_GRACE: Duration = Duration::from_secs(2);

struct Entry {
    /// The encoded JSON answer; `None` until the stream's first message.
    /// Event-stream subscribers hold receivers; the sender lives as long as the entry is watched.
    body: watch::Sender<Option<Bytes>>,
    /// Milliseconds since `epoch` of the last poll.
    last_used: AtomicU64,
    /// Until then (milliseconds since `epoch`), polls go to promo-service (a local write).
    bypass_until: AtomicU64,
}

/// The cache (one per gateway process).
pub struct RemainingCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    epoch: Instant,
}

/// The cache key of a code as a client wrote it (promo-service's canonical form).
pub fn key(code: &str) -> String {
    code.trim().to_uppercase()
}

impl RemainingCache {
    pub fn new() -> RemainingCache {
        RemainingCache {
            entries: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The cached answer for `key`, if a live stream feeds one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        let now = self.now_ms();
        entry.last_used.store(now, Ordering::Relaxed);
        if now < entry.bypass_until.load(Ordering::Relaxed) {
            return None;
        }
        entry.body.borrow().clone()
    }

    /// Updates of `key`'s answer, if it is watched and has a value: the current answer is marked
    /// unseen so a new subscriber gets it first. Ends when the entry goes away.
    pub fn subscribe(&self, key: &str) -> Option<watch::Receiver<Option<Bytes>>> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        let mut rx = entry.body.subscribe();
        if rx.borrow().is_none() {
            return None;
        }
        rx.mark_changed();
        Some(rx)
    }

    /// A write through this gateway changed `key`'s count or limit: polls bypass the cache for
    /// `WRITE_GRACE`, while the stream brings the change. (Dropping the value instead would lose
    /// it for good when the stream's push arrived before this call.)
    pub fn invalidate(&self, key: &str) {
        if let Ok(entries) = self.entries.read()
            && let Some(entry) = entries.get(key)
        {
            let until = self.now_ms() + u64::try_from(WRITE_GRACE.as_millis()).unwrap_or(0);
            entry.bypass_until.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Starts watching `key` unless it is already watched (or the cache is full).
    pub fn watch(
        self: &Arc<Self>,
        key: String,
        backend: &Backend,
        stop: watch::Receiver<bool>,
        encode: fn(pb::Remaining) -> Bytes,
    ) {
        let entry = {
            let Ok(mut entries) = self.entries.write() else {
                return;
            };
            if entries.contains_key(&key) || entries.len() >= MAX_ENTRIES {
                return;
            }
            let entry = Arc::new(Entry {
                body: watch::Sender::new(None),
                last_used: AtomicU64::new(self.now_ms()),
                bypass_until: AtomicU64::new(0),
            });
            entries.insert(key.clone(), entry.clone());
            entry
        };
        let client = PromoServiceClient::new(backend.channel());
        tokio::spawn(Arc::clone(self).run(key, entry, client, stop, encode));
    }

    async fn run(
        self: Arc<Self>,
        key: String,
        entry: Arc<Entry>,
        mut client: PromoServiceClient<tonic::transport::Channel>,
        mut stop: watch::Receiver<bool>,
        encode: fn(pb::Remaining) -> Bytes,
    ) {
        let mut req = tonic::Request::new(pb::GetRemainingRequest { code: key.clone() });
        req.set_timeout(Duration::from_secs(365 * 24 * 3600));
        let stream = tokio::select! {
            r = client.watch_remaining(req) => r,
            () = iafactory::shutdown::stopped(&mut stop) => {
                self.remove(&key);
                return;
            }
        };
        if let Ok(response) = stream {
            let mut stream = response.into_inner();
            let mut idle_check = tokio::time::interval(IDLE / 4);
            idle_check.tick().await;
            loop {
                tokio::select! {
                    msg = stream.message() => match msg {
                        Ok(Some(r)) => {
                            entry.body.send_replace(Some(encode(r)));
                        }
                        Ok(None) | Err(_) => break,
                    },
                    _ = idle_check.tick() => {
                        let idle_ms = self.now_ms().saturating_sub(entry.last_used.load(Ordering::Relaxed));
                        let idle = idle_ms > u64::try_from(IDLE.as_millis()).unwrap_or(u64::MAX);
                        if idle && entry.body.receiver_count() == 0 {
                            break;
                        }
                    }
                    () = iafactory::shutdown::stopped(&mut stop) => break,
                }
            }
        }
        self.remove(&key);
    }

    fn remove(&self, key: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }

    /// Codes currently watched (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for RemainingCache {
    fn default() -> Self {
        RemainingCache::new()
    }
}
