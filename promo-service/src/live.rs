//! The live "places left" counter behind `WatchRemaining`.
//!
//! One poller per process reads the code counters and publishes each change on a `watch` channel
//! per code. Polling the shared database (rather than LISTEN/NOTIFY) is what lets every replica see
//! signups made by the others, on SQLite and on any PostgreSQL-wire database; a local signup wakes
//! the poller at once so its own subscribers do not wait for the next tick. The poller only queries
//! while somebody is watching.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iafactory::db::Db;
use tokio::sync::{Notify, watch};

/// Places used and maximum of a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub used: u32,
    pub max: Option<u32>,
}

#[derive(Debug)]
pub struct LiveCounts {
    db: Db,
    channels: Mutex<HashMap<String, watch::Sender<Option<Count>>>>,
    wake: Notify,
    interval: Duration,
}

impl LiveCounts {
    pub fn new(db: Db, interval: Duration) -> Arc<LiveCounts> {
        Arc::new(LiveCounts {
            db,
            channels: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            interval,
        })
    }

    /// A receiver for `code` (canonical), primed with the current count by the next poll.
    pub fn subscribe(&self, code: &str) -> watch::Receiver<Option<Count>> {
        let rx = {
            let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            channels
                .entry(code.to_owned())
                .or_insert_with(|| watch::channel(None).0)
                .subscribe()
        };
        self.wake.notify_one();
        rx
    }

    /// Asks for a poll now (after a local signup or code change).
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Polls until `stop` flips to true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if self.has_watchers() {
                self.poll_once().await;
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = self.wake.notified() => {}
                () = iafactory::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    fn has_watchers(&self) -> bool {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|_, tx| tx.receiver_count() > 0);
        !channels.is_empty()
    }

    async fn poll_once(&self) {
        let counts = match crate::repo::code_counts(&self.db).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "live counter poll failed");
                return;
            }
        };
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for (code, used, max) in counts {
            if let Some(tx) = channels.get(&code) {
                let next = Some(Count { used, max });
                tx.send_if_modified(|cur| {
                    let changed = *cur != next;
                    *cur = next;
                    changed
                });
            }
        }
    }
}
