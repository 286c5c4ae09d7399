//! Routing policies: the order in which a model's configured routes are tried.

use std::sync::Arc;

use super::table::Route;
use crate::catalog::Policy;

/// `routes` (catalogue order) reordered by `policy`: unchanged for fallback, cheapest first
/// (input + output price) for lowest cost, fastest moving average first for lowest latency.
pub fn order(mut routes: Vec<Arc<Route>>, policy: Policy) -> Vec<Arc<Route>> {
    match policy {
        Policy::Fallback => {}
        Policy::LowestCost => routes.sort_by(|a, b| {
            (a.input_usd_per_mtok + a.output_usd_per_mtok)
                .total_cmp(&(b.input_usd_per_mtok + b.output_usd_per_mtok))
        }),
        Policy::LowestLatency => {
            // Unmeasured routes (0) come first so that each gets measured.
            let mut keyed: Vec<(f64, Arc<Route>)> = routes
                .into_iter()
                .map(|r| (r.ewma_latency_ms(), r))
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            routes = keyed.into_iter().map(|(_, r)| r).collect();
        }
    }
    routes
}
