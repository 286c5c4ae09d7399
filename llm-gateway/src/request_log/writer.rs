//! The writer task: takes rows from the channel and inserts them in batches, many rows per
//! transaction, off the request path (see the module docs of [`super`]).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{LogMetrics, LogRow, Msg};
use crate::store::Store;

/// How long the writer waits for more rows after the first one of a batch: under load a batch
/// then holds many calls, so the log costs one transaction per `LINGER` rather than one per
/// call, and it takes SQLite's single write connection (shared with the usage writer, which
/// is on the request path) at most that often.
pub(super) const LINGER: Duration = Duration::from_millis(50);

/// Rows per batch (one transaction) at most.
const MAX_BATCH: usize = 2000;

/// Attempts for a batch before its rows are given up (and counted).
const ATTEMPTS: u32 = 3;

pub(super) async fn run(store: Store, mut rx: mpsc::Receiver<Msg>, metrics: LogMetrics) {
    let mut rows: Vec<LogRow> = Vec::with_capacity(256);
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        take(first, &mut rows, &mut acks);
        // Sleep through the linger instead of receiving row by row: while the writer is not
        // waiting on the channel, a call's `try_send` wakes nobody. Receiving each row as it came
        // woke this task (and often parked a worker thread) once per call, a cost every chat
        // call paid under load. A flush that finds the writer idle does not wait for the
        // linger (one sent during it waits at most `LINGER`).
        if acks.is_empty() {
            tokio::time::sleep(LINGER).await;
        }
        while rows.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => take(m, &mut rows, &mut acks),
                Err(_) => break,
            }
        }
        if !rows.is_empty() {
            write(&store, &rows, &metrics).await;
            rows.clear();
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn take(m: Msg, rows: &mut Vec<LogRow>, acks: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Row(r) => rows.push(*r),
        Msg::Flush(ack) => acks.push(ack),
    }
}

/// Writes one batch, retrying a few times; rows that cannot be written are counted and logged.
async fn write(store: &Store, rows: &[LogRow], metrics: &LogMetrics) {
    let mut attempt = 1;
    loop {
        match store.insert_request_log(rows).await {
            Ok(()) => {
                metrics.written.inc_by(rows.len() as u64);
                return;
            }
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, rows = rows.len(), attempt, "request log batch not written; retrying");
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = rows.len(), "request log batch lost");
                metrics.failed.inc_by(rows.len() as u64);
                return;
            }
        }
    }
}
