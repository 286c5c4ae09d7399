//! What the router tells the request log (`request_log`) about a call while it runs: upstream attempts, routes
//! tried, the last route tried. A task-local, so the router's signature stays as it is and a
//! failed call (whose error carries no route) still reports them; the router records nothing
//! when no trace is in scope (unit tests, internal calls).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::Route;

/// Filled by the router during one call.
#[derive(Default)]
pub struct CallTrace {
    attempts: AtomicU32,
    routes: AtomicU32,
    last: Mutex<Option<Arc<Route>>>,
}

impl CallTrace {
    /// (attempts, routes tried, last route tried).
    pub fn snapshot(&self) -> (u32, u32, Option<Arc<Route>>) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.routes.load(Ordering::Relaxed),
            self.last.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        )
    }
}

tokio::task_local! {
    static TRACE: Arc<CallTrace>;
}

/// Runs `f` with `trace` receiving what the router does.
pub async fn scope<F: std::future::Future>(trace: Arc<CallTrace>, f: F) -> F::Output {
    TRACE.scope(trace, f).await
}

/// An upstream attempt on `route` starts; `first_on_route`: the first on this route.
pub fn attempted(route: &Arc<Route>, first_on_route: bool) {
    let _ = TRACE.try_with(|t| {
        t.attempts.fetch_add(1, Ordering::Relaxed);
        if first_on_route {
            t.routes.fetch_add(1, Ordering::Relaxed);
        }
        *t.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(route.clone());
    });
}

/// The attempt just counted never reached the network (the route's wire format cannot carry a
/// field): it is not an attempt, and the route was not tried.
pub fn untried(first_on_route: bool) {
    let _ = TRACE.try_with(|t| {
        t.attempts.fetch_sub(1, Ordering::Relaxed);
        if first_on_route {
            t.routes.fetch_sub(1, Ordering::Relaxed);
        }
    });
}
