//! Request ids: the caller's `x-request-id` when it is plain, otherwise one of ours.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};

use crate::error::X_REQUEST_ID;

/// Generates request ids: a random per-process prefix and a counter (unique across replicas, and
/// no system call per request, unlike a random UUID each time).
pub struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl RequestIds {
    pub fn new() -> RequestIds {
        let prefix = uuid::Uuid::new_v4().simple().to_string();
        RequestIds {
            prefix: prefix.get(..16).unwrap_or(&prefix).to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{}-{n:x}", self.prefix))
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// A caller's `x-request-id` is kept when it is short and plain; anything else is replaced.
pub fn caller_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(&X_REQUEST_ID).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let bytes = value.as_bytes();
    let plain = (1..=128).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(b));
    plain.then(|| value.clone())
}
