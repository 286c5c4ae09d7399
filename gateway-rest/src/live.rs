//! The live counter at crowd scale: one upstream `WatchRemaining` stream per code and gateway
//! process, fanned out to any number of viewers.
//!
//! A launch e-mail sends thousands of browsers to `/api/promo/{code}/remaining/stream` within
//! seconds. One gRPC stream per viewer would multiplex thousands of server streams on the few
//! HTTP/2 connections to promo-service, whose own client side then answers with
//! `GOAWAY(ENHANCE_YOUR_CALM)` and takes every signup on that connection down with it. Here a
//! viewer costs memory only: the first viewer (or poll) of a code starts its upstream stream, on a
//! connection of its own that unary calls do not share; every later viewer subscribes to the same
//! [`watch`] channel, also while the first answer is still on its way (a cold burst of a thousand
//! viewers is one upstream call, not a thousand). Each change promo-service pushes is encoded once
//! and every viewer's task writes it out.
//!
//! Failure: when the upstream answers an error before its first value (unknown code, promo-service
//! down), every waiting viewer gets that error as its HTTP answer and the entry is dropped, so the
//! next viewer asks again. When an established stream fails or ends, the entry is dropped and the
//! viewers' event streams end; browsers reconnect after the jittered `retry:` delay each stream
//! announced, and the first of them starts a new upstream stream. A value is never served from an
//! entry whose stream is gone, so neither viewers nor cached polls see a stale count.
//!
//! With `REMAINING_CACHE=true`, polls of `/remaining` are also answered from the entries (see
//! [`LiveCounters::get`]); after a signup or a code change made through this gateway, polls of
//! that code go to promo-service for `WRITE_GRACE`, longer than the live counter takes to push
//! the change, so a client reads its own writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use iafactory::ErrorCode;
use iafactory::clients::promo::v1::PromoServiceClient;
use iafactory::proto::iafactory::promo::v1 as pb;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::error::ApiError;

/// Codes watched at most (they exist only if the operator created them; this bounds abuse).
const MAX_ENTRIES: usize = 1024;
/// A code nobody polled or viewed for this long stops being watched.
const IDLE: Duration = Duration::from_secs(300);
/// After a write through this gateway, polls bypass the cache this long (the live counter's
/// push delay is the promo-service poll interval, 500 ms by default).
const WRITE_GRACE: Duration = Duration::from_secs(2);

/// What viewers of one code see.
#[derive(Debug, Clone)]
pub enum Feed {
    /// The upstream stream is being opened.
    Pending,
    /// The current answer, encoded once as the JSON of `GET /remaining`.
    Value(Bytes),
    /// The upstream refused before any value (unknown code, promo-service unavailable).
    Failed(ApiError),
}

struct Entry {
    feed: watch::Sender<Feed>,
    /// Milliseconds since `epoch` of the last poll or new viewer.
    last_used: AtomicU64,
    /// Until then (milliseconds since `epoch`), polls go to promo-service (a local write).
    bypass_until: AtomicU64,
}

/// The hub (one per gateway process).
pub struct LiveCounters {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    epoch: Instant,
    /// Connection(s) reserved for the upstream streams.
    channel: Channel,
    stop: watch::Receiver<bool>,
    encode: fn(pb::Remaining) -> Bytes,
}

/// The key of a code as a client wrote it (promo-service's canonical form).
pub fn key(code: &str) -> String {
    code.trim().to_uppercase()
}

impl LiveCounters {
    pub fn new(
        channel: Channel,
        stop: watch::Receiver<bool>,
        encode: fn(pb::Remaining) -> Bytes,
    ) -> LiveCounters {
        LiveCounters {
            entries: RwLock::new(HashMap::new()),
            epoch: Instant::now(),
            channel,
            stop,
            encode,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The current answer for `key` to serve a poll from, if a live stream feeds one.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        let now = self.now_ms();
        entry.last_used.store(now, Ordering::Relaxed);
        if now < entry.bypass_until.load(Ordering::Relaxed) {
            return None;
        }
        match &*entry.feed.borrow() {
            Feed::Value(body) => Some(body.clone()),
            Feed::Pending | Feed::Failed(_) => None,
        }
    }

    /// Starts watching `key` unless it is already watched (a poll promo-service answered).
    pub fn watch(self: &Arc<Self>, key: String) {
        let _ = self.entry(key);
    }

    /// A viewer of `key`: waits (at most `within`) for the first value, then follows every
    /// change. The receiver's sender goes away when the upstream stream ends.
    pub async fn subscribe(
        self: &Arc<Self>,
        key: String,
        within: Duration,
    ) -> Result<watch::Receiver<Feed>, ApiError> {
        let entry = self.entry(key).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "Trop de compteurs suivis, veuillez réessayer.",
            )
            .with_retry_after(5)
        })?;
        let mut rx = entry.feed.subscribe();
        drop(entry);
        let first = tokio::time::timeout(within, rx.wait_for(|f| !matches!(f, Feed::Pending)))
            .await
            .map(|r| {
                r.map(|feed| match &*feed {
                    Feed::Failed(e) => Some(e.clone()),
                    Feed::Value(_) | Feed::Pending => None,
                })
            });
        match first {
            Ok(Ok(None)) => {
                // The current value is the viewer's first event.
                rx.mark_changed();
                Ok(rx)
            }
            Ok(Ok(Some(failure))) => Err(failure),
            Ok(Err(_)) => Err(unavailable()),
            Err(_) => Err(ApiError::new(
                ErrorCode::Timeout,
                "Le compteur n'a pas répondu à temps.",
            )),
        }
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

    /// [`Self::invalidate`] for a code as the client wrote it (empty: no code, nothing to do).
    pub fn invalidate_code(&self, code: &str) {
        if !code.is_empty() {
            self.invalidate(&key(code));
        }
    }

    /// The entry of `key`, started if needed; `None` when the hub is full.
    fn entry(self: &Arc<Self>, key: String) -> Option<Arc<Entry>> {
        let now = self.now_ms();
        if let Ok(entries) = self.entries.read()
            && let Some(entry) = entries.get(&key)
        {
            entry.last_used.store(now, Ordering::Relaxed);
            return Some(entry.clone());
        }
        let mut entries = self.entries.write().ok()?;
        if let Some(entry) = entries.get(&key) {
            return Some(entry.clone());
        }
        if entries.len() >= MAX_ENTRIES {
            return None;
        }
        let entry = Arc::new(Entry {
            feed: watch::Sender::new(Feed::Pending),
            last_used: AtomicU64::new(now),
            bypass_until: AtomicU64::new(0),
        });
        entries.insert(key.clone(), entry.clone());
        tokio::spawn(Arc::clone(self).run(key, entry.clone()));
        Some(entry)
    }

    /// Feeds one entry from its upstream stream until the stream ends, nobody uses it any more,
    /// or the gateway stops; then drops it (which ends its viewers' streams).
    async fn run(self: Arc<Self>, key: String, entry: Arc<Entry>) {
        let mut stop = self.stop.clone();
        let mut client = PromoServiceClient::new(self.channel.clone());
        let mut req = tonic::Request::new(pb::GetRemainingRequest { code: key.clone() });
        // The channel's unary deadline must not cut a long-lived stream.
        req.set_timeout(Duration::from_secs(365 * 24 * 3600));
        let opened = tokio::select! {
            r = client.watch_remaining(req) => r,
            () = iafactory::shutdown::stopped(&mut stop) => {
                self.remove(&key, &entry);
                return;
            }
        };
        match opened {
            Ok(response) => {
                let mut stream = response.into_inner();
                let mut idle_check = tokio::time::interval(IDLE / 4);
                idle_check.tick().await;
                loop {
                    tokio::select! {
                        msg = stream.message() => match msg {
                            Ok(Some(r)) => {
                                entry.feed.send_replace(Feed::Value((self.encode)(r)));
                            }
                            Ok(None) => break,
                            Err(status) => {
                                fail_if_pending(&entry, &status);
                                break;
                            }
                        },
                        _ = idle_check.tick() => {
                            let last = entry.last_used.load(Ordering::Relaxed);
                            let idle_ms = self.now_ms().saturating_sub(last);
                            let idle = idle_ms > u64::try_from(IDLE.as_millis()).unwrap_or(u64::MAX);
                            // The sender holds no receiver of its own: the count is the viewers.
                            if idle && entry.feed.receiver_count() == 0 {
                                break;
                            }
                        }
                        () = iafactory::shutdown::stopped(&mut stop) => break,
                    }
                }
            }
            Err(status) => fail_if_pending(&entry, &status),
        }
        self.remove(&key, &entry);
    }

    fn remove(&self, key: &str, entry: &Arc<Entry>) {
        if let Ok(mut entries) = self.entries.write()
            && entries.get(key).is_some_and(|e| Arc::ptr_eq(e, entry))
        {
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

/// Viewers still waiting for a first value get the upstream's refusal as their answer.
fn fail_if_pending(entry: &Entry, status: &tonic::Status) {
    entry.feed.send_if_modified(|feed| {
        if matches!(feed, Feed::Pending) {
            *feed = Feed::Failed(ApiError::from_status(status));
            true
        } else {
            false
        }
    });
}

fn unavailable() -> ApiError {
    ApiError::new(ErrorCode::Unavailable, "Le compteur n'est pas disponible.").with_retry_after(1)
}
