//! Idempotent signups: a client that repeats a request with the same Idempotency-Key gets the
//! first answer again (API key included) instead of a second account, for 24 hours.
//!
//! `key` checks the key where it enters the service; `seal` turns it into what is stored (a
//! lookup hash, and a cipher key for the answer, which must not sit in the database in clear);
//! `store` holds the table, claimed in the signup's own transaction so the record exists if and
//! only if the signup committed. [`IdempotentRequest`] ties them together for the handler.

mod key;
mod seal;
pub mod store;

use iafactory::db::Db;
use prost::Message;

pub use key::IdempotencyKey;
pub use store::IdempotencyClaim;

use crate::error::{PromoError, Result};

/// A request made under an Idempotency-Key: the key and the fingerprint of what was asked, so a
/// key reused for another request is refused rather than answered with the wrong account.
#[derive(Debug)]
pub struct IdempotentRequest {
    key: IdempotencyKey,
    fingerprint: String,
}

impl IdempotentRequest {
    /// `parts` are the request's fields that decide its answer, in a fixed order.
    pub fn new(key: IdempotencyKey, parts: &[&str]) -> IdempotentRequest {
        IdempotentRequest {
            fingerprint: seal::request_fingerprint(parts),
            key,
        }
    }

    /// The stored answer for this Idempotency-Key, if the same request was made before.
    pub async fn replay<M: Message + Default>(&self, db: &Db) -> Result<Option<M>> {
        let key_hash = seal::idempotency_key_hash(self.key.as_str());
        let Some(record) = store::find_idempotency(db, &key_hash).await? else {
            return Ok(None);
        };
        if record.request_hash != self.fingerprint {
            return Err(PromoError::IdempotencyKeyReused);
        }
        let plain = seal::open(self.key.as_str(), &record.sealed_response)
            .ok_or_else(|| PromoError::internal("idempotent answer does not open"))?;
        let answer = M::decode(plain.as_slice()).map_err(PromoError::internal)?;
        Ok(Some(answer))
    }

    /// What the signup transaction stores for this key: its hash, the fingerprint, the answer
    /// sealed.
    pub fn claim(&self, answer: &impl Message) -> Result<IdempotencyClaim> {
        Ok(IdempotencyClaim {
            key_hash: seal::idempotency_key_hash(self.key.as_str()),
            request_hash: self.fingerprint.clone(),
            sealed_response: seal::seal(self.key.as_str(), &answer.encode_to_vec())
                .ok_or_else(|| PromoError::internal("cannot seal idempotent answer"))?,
        })
    }
}
