//! Optional push-fed cache of `GET /api/promo/{code}/remaining` (`REMAINING_CACHE=true`).
//!
//! The landing page polls the counter; every poll would otherwise be a gRPC call and a database
//! read in promo-service. With the cache on, the first successful answer for a code starts one
//! `WatchRemaining` stream per code and gateway replica; every message promo-service pushes (one
//! per change of the count, from any replica sharing the database) replaces the cached, already
//! encoded answer, and polls are answered from memory.
//!
//! Freshness is the live counter's: a change is seen when promo-service pushes it (immediately
//! for signups on the same promo-service replica, within its poll interval for others). A signup
//! or a code change made through this gateway drops the entry at once, so a client reads its own
//! writes. When the stream fails or ends (promo-service restarting), the entry is dropped and calls
//! go to promo-service again until a new stream is up. Codes nobody asked for in `IDLE` stop being
//! watched. Only codes promo-service answered for get an entry, and at most `MAX_ENTRIES`.

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

struct Entry {
    /// The encoded JSON answer; `None` until the stream's first message or after a local write.
    body: RwLock<Option<Bytes>>,
    /// Milliseconds since `epoch` of the last poll.
    last_used: AtomicU64,
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
        entry.last_used.store(self.now_ms(), Ordering::Relaxed);
        entry.body.read().ok()?.clone()
    }

    /// Drops the cached answer (a write through this gateway changed it); the stream refills it.
    pub fn invalidate(&self, key: &str) {
        if let Ok(entries) = self.entries.read()
            && let Some(entry) = entries.get(key)
            && let Ok(mut body) = entry.body.write()
        {
            *body = None;
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
                body: RwLock::new(None),
                last_used: AtomicU64::new(self.now_ms()),
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
                            if let Ok(mut body) = entry.body.write() {
                                *body = Some(encode(r));
                            }
                        }
                        Ok(None) | Err(_) => break,
                    },
                    _ = idle_check.tick() => {
                        let idle_ms = self.now_ms().saturating_sub(entry.last_used.load(Ordering::Relaxed));
                        if idle_ms > u64::try_from(IDLE.as_millis()).unwrap_or(u64::MAX) {
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
