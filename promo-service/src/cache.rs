//! A short-lived read cache of promo codes and packages for the hot public reads (validate,
//! remaining, the signup pre-check), which would otherwise cost database round trips per call.
//!
//! Staleness is bounded by the time to live and never affects correctness: a signup's redemption
//! is decided by the guarded `UPDATE` in the database, not by this cache. Local writes invalidate
//! at once, so a replica always sees its own signups; other replicas' changes show within the TTL.
//! Unknown codes are cached too (attackers guessing codes cost no queries), and the map is bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iafactory::db::Db;

use crate::domain::CodeName;
use crate::error::Result;
use crate::repo::{self, CodeRow, PackageRow};

/// Entries kept at most; past it the map is cleared (cheap, and refills with what is hot).
const MAX_ENTRIES: usize = 10_000;

type Entry<T> = (Instant, T);

pub struct ReadCache {
    db: Db,
    ttl: Duration,
    codes: Mutex<HashMap<String, Entry<Option<Arc<CodeRow>>>>>,
    packages: Mutex<Option<Entry<Arc<Vec<PackageRow>>>>>,
    /// Bumped by every invalidation: a read that started before one must not be cached, or a
    /// request racing a signup would put back the count from before it.
    generation: AtomicU64,
}

impl ReadCache {
    pub fn new(db: Db, ttl: Duration) -> ReadCache {
        ReadCache {
            db,
            ttl,
            codes: Mutex::new(HashMap::new()),
            packages: Mutex::new(None),
            generation: AtomicU64::new(0),
        }
    }

    pub async fn code(&self, code: &CodeName) -> Result<Option<Arc<CodeRow>>> {
        if let Some((at, row)) = lock(&self.codes).get(code.as_str())
            && at.elapsed() < self.ttl
        {
            return Ok(row.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let row = repo::find_code(&self.db, code).await?.map(Arc::new);
        let mut codes = lock(&self.codes);
        if self.generation.load(Ordering::Acquire) == generation {
            if codes.len() >= MAX_ENTRIES {
                codes.clear();
            }
            codes.insert(code.as_str().to_owned(), (Instant::now(), row.clone()));
        }
        Ok(row)
    }

    pub fn forget_code(&self, code: &str) {
        let mut codes = lock(&self.codes);
        self.generation.fetch_add(1, Ordering::AcqRel);
        codes.remove(code);
    }

    /// After a package change: the next read goes to the database.
    pub fn forget_packages(&self) {
        *lock(&self.packages) = None;
    }

    pub async fn packages(&self) -> Result<Arc<Vec<PackageRow>>> {
        if let Some((at, list)) = lock(&self.packages).as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(repo::list_packages(&self.db).await?);
        *lock(&self.packages) = Some((Instant::now(), Arc::clone(&list)));
        Ok(list)
    }

    pub async fn package(&self, id: &str) -> Result<Option<PackageRow>> {
        Ok(self.packages().await?.iter().find(|p| p.id == id).cloned())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
