//! promo-service's business gauges, read from the shared database at scrape time (every replica
//! reports the database's truth).
//!
//! Only the configured launch code (the one the landing page shows) appears as a `code` label:
//! the other codes are handed out privately, and `/metrics` is usually less guarded than the
//! admin RPCs (which list every code with its usage); it also keeps the label set to one value
//! however many codes the operator creates.

use std::sync::Arc;

use iafactory::db::Db;
use iafactory::metrics::{CountGauge, EncodeLabelSet, Family, Refresh, Registry};

use crate::{domain, repo};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// The gauges, registered at start-up.
pub struct BusinessGauges {
    places_remaining: Family<CodeLabels, CountGauge>,
    places_used: Family<CodeLabels, CountGauge>,
    customers: CountGauge,
    revenue_monthly_dzd: CountGauge,
    outbox: Family<StatusLabels, CountGauge>,
}

impl BusinessGauges {
    pub fn register(registry: &mut Registry) -> BusinessGauges {
        BusinessGauges {
            places_remaining: registry.register(
                "promo_places_remaining",
                "Places left on the launch code (LAUNCH_CODE), if it is limited.",
                Family::default(),
            ),
            places_used: registry.register(
                "promo_places_used",
                "Redemptions of the launch code (LAUNCH_CODE).",
                Family::default(),
            ),
            customers: registry.register(
                "promo_customers",
                "Customers signed up.",
                CountGauge::default(),
            ),
            revenue_monthly_dzd: registry.register(
                "promo_revenue_monthly_dzd",
                "Sum of the monthly prices currently paid, in DZD.",
                CountGauge::default(),
            ),
            outbox: registry.register(
                "outbox_messages",
                "Outbox e-mails by delivery status.",
                Family::default(),
            ),
        }
    }

    /// The scrape-time callback that reads the gauges from `db`.
    pub fn refresh(self: Arc<Self>, db: Db, launch_code: domain::CodeName) -> Refresh {
        Arc::new(move || {
            let (gauges, db, launch_code) = (Arc::clone(&self), db.clone(), launch_code.clone());
            Box::pin(async move { gauges.read(&db, &launch_code).await })
        })
    }

    async fn read(&self, db: &Db, launch_code: &domain::CodeName) {
        if let Ok(counts) = repo::code_counts(db).await {
            let launch = counts
                .into_iter()
                .filter(|(code, _, _)| code == launch_code.as_str());
            for (code, used, max) in launch {
                let labels = CodeLabels { code };
                self.places_used.get_or_create(&labels).set(u64::from(used));
                if let Some(max) = max {
                    self.places_remaining
                        .get_or_create(&labels)
                        .set(u64::from(max.saturating_sub(used)));
                }
            }
        }
        match repo::gauges(db, iafactory::db::now_millis()).await {
            Ok(g) => {
                self.customers.set(g.customers);
                self.revenue_monthly_dzd.set(g.revenue_monthly_dzd);
                for (status, n) in g.outbox {
                    self.outbox.get_or_create(&StatusLabels { status }).set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read business gauges"),
        }
    }
}
