//! The landing page's reads, open to anyone: validate a code, places left (once or as a
//! stream), the packages, the summary.

use std::pin::Pin;

use futures::Stream;
use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::Status;

use super::PromoApi;
use super::to_pb::{package_pb, refused, remaining_msg};
use crate::domain::{self, CodeName};
use crate::error::{PromoError, Refusal, Result};
use crate::live::Count;

pub(super) type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Remaining, Status>> + Send>>;

impl PromoApi {
    pub(super) async fn validate(
        &self,
        req: pb::ValidateCodeRequest,
    ) -> Result<pb::ValidateCodeResponse> {
        let code = CodeName::lookup(&req.code)?;
        let package = if req.package.trim().is_empty() {
            None
        } else {
            let id = domain::package_id(&req.package)?;
            self.cache
                .package(&id)
                .await?
                .ok_or_else(|| PromoError::UnknownPackage(id.clone()))?;
            Some(id)
        };
        let Some(row) = self.cache.code(&code).await? else {
            return Ok(refused(Refusal::Unknown, String::new(), None));
        };
        let remaining = row.rules.remaining();
        Ok(
            match row.rules.check(package.as_deref(), self.clock.now()) {
                Ok(pct) => pb::ValidateCodeResponse {
                    valid: true,
                    reason: pb::RefusalReason::Unspecified.into(),
                    discount_percent: pct.get(),
                    duration_months: row.rules.duration_months,
                    message: domain::discount_message(
                        pct,
                        row.rules.duration_months,
                        package.is_none() && row.rules.discounts.len() > 1,
                    ),
                    code: row.code.clone(),
                    remaining,
                },
                Err(reason) => refused(reason, row.code.clone(), remaining),
            },
        )
    }

    pub(super) async fn remaining(&self, code: &str) -> Result<pb::Remaining> {
        let code = CodeName::lookup(code)?;
        let row = self
            .cache
            .code(&code)
            .await?
            .filter(|row| row.rules.publicly_visible(code == self.launch_code))
            .ok_or(PromoError::Refused(Refusal::Unknown))?;
        Ok(remaining_msg(
            &row.code,
            Count {
                used: row.rules.used,
                max: row.rules.max_redemptions,
            },
        ))
    }

    /// The places left now, then each change, until the service stops.
    pub(super) async fn watch(&self, code: &str) -> Result<WatchStream> {
        let first = self.remaining(code).await?;
        let code = first.code.clone();
        let mut rx = self.live.subscribe(&code);
        let mut stop = self.stop.clone();
        let stream = async_stream::stream! {
            let mut last = first.clone();
            yield Ok(first);
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() { break; }
                        let count = *rx.borrow_and_update();
                        if let Some(count) = count {
                            let msg = remaining_msg(&code, count);
                            if msg != last {
                                last = msg.clone();
                                yield Ok(msg);
                            }
                        }
                    }
                    // Ends the stream on shutdown so the server can drain.
                    () = iafactory::shutdown::stopped(&mut stop) => break,
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub(super) async fn packages(&self) -> Result<pb::ListPackagesResponse> {
        let packages = self.cache.packages().await?;
        Ok(pb::ListPackagesResponse {
            packages: packages.iter().cloned().map(package_pb).collect(),
        })
    }

    pub(super) async fn summary(&self) -> Result<pb::Summary> {
        let (active, clients) = crate::repo::summary(&self.db, self.clock.now_ms()).await?;
        Ok(pb::Summary {
            status: "healthy".into(),
            promo_codes_active: active,
            total_clients: clients,
        })
    }
}
