//! The `Billing` service: the customer's own subscription and invoices (session), and the
//! operator's invoices, payments, credit notes and job run (admin token). Shares the state of
//! [`PromoApi`] (database, tokens, clock, mail settings) so both services authenticate alike.

use std::sync::Arc;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::billing_server::Billing;
use tonic::{Request, Response, Status};

use super::PromoApi;
use crate::audit::Audit;
use crate::billing::chargily::{Event, NewCheckout};
use crate::billing::job::BillingJobs;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::domain::billing::{self as rules, InvoiceStatus, State};
use crate::domain::operator::Actor;
use crate::error::{PromoError, Result};
use crate::repo::billing::{self as bill, Ctx, InvoiceRow, NewPayment};

/// Serves `iafactory.promo.v1.Billing` next to `PromoService`.
pub struct BillingApi {
    api: Arc<PromoApi>,
}

impl BillingApi {
    pub fn new(api: Arc<PromoApi>) -> BillingApi {
        BillingApi { api }
    }
}

fn state_pb(s: State) -> i32 {
    (match s {
        State::Active => pb::SubscriptionState::Active,
        State::PastDue => pb::SubscriptionState::PastDue,
        State::Suspended => pb::SubscriptionState::Suspended,
        State::Cancelled => pb::SubscriptionState::Cancelled,
    }) as i32
}

pub(super) fn invoice_pb(i: InvoiceRow) -> pb::Invoice {
    pb::Invoice {
        id: i.id,
        number: i.number,
        customer_id: i.customer_id,
        email: i.email,
        period_start: rfc3339(i.period_start),
        period_end: rfc3339(i.period_end),
        package_id: i.package_id,
        lines: i
            .lines
            .into_iter()
            .map(|l| pb::InvoiceLine {
                label: l.label,
                amount_dzd: l.amount_dzd,
            })
            .collect(),
        net_dzd: i.net_dzd,
        tax_dzd: i.tax_dzd,
        total_dzd: i.total_dzd,
        tax_rate_bp: i.tax_rate_bp,
        prices_include_tax: i.prices_include_tax,
        issued_at: rfc3339(i.issued_at),
        due_at: rfc3339(i.due_at),
        credited_dzd: i.credited_dzd,
        balance_dzd: i.balance_dzd,
        status: i.status.as_str().to_owned(),
        kind: i.kind.as_str().to_owned(),
        period_last_day: rules::last_day_iso(i.period_end),
    }
}

impl PromoApi {
    pub(super) fn billing_ctx(&self) -> Ctx<'_> {
        Ctx {
            config: &self.billing,
            public_url: &self.mail.public_url,
        }
    }

    fn billing_jobs(&self) -> BillingJobs {
        BillingJobs {
            db: self.db.clone(),
            clock: self.clock.clone(),
            config: self.billing.clone(),
            public_url: self.mail.public_url.clone(),
            mail_wake: Arc::clone(&self.mail_wake),
            interval: std::time::Duration::from_secs(60),
        }
    }

    /// The refusal of a suspended subscription's key, for `/v1` callers (English, OpenAI
    /// style): which invoice, how much, where to pay, how soon the key works again.
    pub(super) async fn payment_required(&self, customer_id: &str) -> PromoError {
        let owed = match bill::customer_invoices(&self.db, customer_id).await {
            Ok((invoices, _)) => invoices
                .into_iter()
                .find(|i| i.balance_dzd > 0)
                .map(|i| format!("invoice {} has {} DZD unpaid", i.number, i.balance_dzd)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the unpaid invoice for a 402");
                None
            }
        };
        PromoError::PaymentRequired(format!(
            "Payment required: {}, so your subscription is suspended. Pay by card (Edahabia/CIB) \
             or by bank transfer, CCP or BaridiMob quoting the invoice number, from {}/compte/ ; \
             your API keys work again within seconds of the payment.",
            owed.unwrap_or_else(|| "an invoice is unpaid".to_owned()),
            self.mail.public_url
        ))
    }

    async fn overview(&self, customer_id: &str) -> Result<pb::BillingOverview> {
        let now = self.clock.now_ms();
        let sub = bill::billing_subscription(&self.db, customer_id).await?;
        let (invoices, balance) = bill::customer_invoices(&self.db, customer_id).await?;
        let state = bill::billing_state(&self.db, customer_id).await?;
        let oldest = invoices.iter().find(|i| i.balance_dzd > 0);
        let message = match (state, oldest) {
            (State::Cancelled, _) => "Votre abonnement a pris fin.".to_owned(),
            (_, None) if balance < 0 => format!(
                "Tout est réglé. Vous disposez d'un crédit de {} DZD, déduit de vos prochaines factures.",
                -balance
            ),
            (_, None) => "Tout est réglé.".to_owned(),
            (State::Suspended, Some(i)) => format!(
                "Abonnement suspendu : la facture {} reste impayée ({} DZD). Vos clés API fonctionnent de nouveau dès le paiement enregistré.",
                i.number, i.balance_dzd
            ),
            (_, Some(i)) => format!(
                "Facture {} : {} DZD à régler avant le {}.",
                i.number,
                i.balance_dzd,
                crate::clock::french_date(i.due_at)
            ),
        };
        let t = &self.billing.transfer;
        let quote = oldest.map_or("de votre facture".to_owned(), |i| i.number.clone());
        Ok(pb::BillingOverview {
            state: state_pb(state),
            next_amount_dzd: bill::next_amount(&sub, now, &self.billing),
            balance_dzd: balance,
            invoices: invoices.into_iter().rev().map(invoice_pb).collect(),
            payment_details: Some(pb::PaymentDetails {
                beneficiary: t.beneficiary.clone(),
                bank_account: t.bank_account.clone(),
                ccp_account: t.ccp_account.clone(),
                baridimob_rip: t.baridimob_rip.clone(),
                instructions: format!(
                    "Indiquez le numéro {quote} en référence du virement : le paiement est enregistré à réception."
                ),
            }),
            message,
        })
    }

    /// A Chargily checkout for what remains to pay on one of the customer's invoices.
    async fn pay_by_card(&self, customer_id: &str, number: &str) -> Result<pb::CardCheckout> {
        let Some(client) = &self.chargily else {
            return Err(PromoError::Conflict(
                "le paiement par carte n'est pas proposé : payez par virement (coordonnées dans votre espace client)".into(),
            ));
        };
        let invoice = bill::find_invoice(&self.db, number).await?;
        if invoice.customer_id != customer_id {
            // The same answer as an unknown number: another customer's invoices do not exist.
            return Err(PromoError::NotFound(format!(
                "facture inconnue : {:?}",
                number.chars().take(40).collect::<String>()
            )));
        }
        if invoice.balance_dzd == 0 {
            return Err(PromoError::Conflict(format!(
                "la facture {} est déjà réglée",
                invoice.number
            )));
        }
        let base = &self.mail.public_url;
        let checkout = client
            .create_checkout(&NewCheckout {
                amount: invoice.balance_dzd,
                currency: "dzd",
                success_url: format!("{base}/compte/?paiement=recu"),
                failure_url: format!("{base}/compte/?paiement=echec"),
                webhook_endpoint: format!("{base}/api/billing/chargily/webhook"),
                description: format!("Facture IAFactory {}", invoice.number),
                locale: "fr",
                metadata: serde_json::json!({
                    "invoice_number": invoice.number,
                    "customer_id": invoice.customer_id,
                }),
            })
            .await?;
        bill::insert_checkout(
            &self.db,
            &checkout.id,
            &invoice,
            invoice.balance_dzd,
            self.clock.now_ms(),
        )
        .await?;
        Ok(pb::CardCheckout {
            checkout_url: checkout.checkout_url.unwrap_or_default(),
            checkout_id: checkout.id,
            amount_dzd: invoice.balance_dzd,
        })
    }

    /// A Chargily webhook: verified first, then acted on once.
    async fn chargily_webhook(&self, raw: &[u8], signature: &str) -> Result<&'static str> {
        let Some(client) = &self.chargily else {
            return Err(PromoError::Conflict(
                "paiement par carte non configuré (CHARGILY_SECRET_KEY)".into(),
            ));
        };
        if !iafactory::webhook::verify(client.secret(), raw, signature) {
            tracing::warn!("Chargily webhook with a bad signature refused");
            return Err(PromoError::Forbidden("signature de webhook invalide"));
        }
        let event: Event = serde_json::from_slice(raw).map_err(|e| {
            PromoError::InvalidArgument(format!("événement Chargily illisible : {e}"))
        })?;
        match event.kind.as_str() {
            "checkout.paid" => {}
            "checkout.failed" | "checkout.canceled" | "checkout.expired" => {
                tracing::info!(checkout = %event.data.id, kind = %event.kind, "card payment did not go through");
                return Ok("failed");
            }
            _ => return Ok("ignored"),
        }
        let (number, amount) = bill::find_checkout(&self.db, &event.data.id)
            .await?
            .ok_or_else(|| PromoError::NotFound("paiement Chargily inconnu".into()))?;
        if event.data.amount_dzd() != Some(amount)
            || !event.data.currency.eq_ignore_ascii_case("dzd")
            || event.data.status != "paid"
        {
            tracing::warn!(checkout = %event.data.id, event = %event.id, expected = amount, "Chargily event does not match its checkout");
            return Err(PromoError::Conflict(
                "l'événement ne correspond pas au paiement demandé (montant, devise ou statut)"
                    .into(),
            ));
        }
        let now = self.clock.now_ms();
        let recorded = bill::record_payment(
            &self.db,
            &NewPayment {
                invoice_number: &number,
                amount_dzd: rules::amount("amount", amount)?,
                method: "card",
                reference: format!("Chargily {}", event.data.id),
                external_id: Some(event.data.id.clone()),
                paid_at: now,
            },
            now,
            &self.billing.dunning,
            None,
        )
        .await?;
        Ok(if recorded.is_some() {
            tracing::info!(checkout = %event.data.id, invoice = %number, amount, "card payment recorded");
            "paid"
        } else {
            "duplicate"
        })
    }

    async fn record_payment(
        &self,
        req: pb::RecordPaymentRequest,
        actor: &Actor,
    ) -> Result<pb::RecordedPayment> {
        let amount = rules::amount("amount_dzd", req.amount_dzd)?;
        let method = rules::method_name(req.method)?;
        let reference = rules::text_field("reference", &req.reference, 120)?;
        let now = self.clock.now_ms();
        let paid_at = if req.paid_at.trim().is_empty() {
            now
        } else {
            parse_rfc3339("paid_at", &req.paid_at)?
        };
        let recorded = bill::record_payment(
            &self.db,
            &NewPayment {
                invoice_number: &req.invoice_number,
                amount_dzd: amount,
                method,
                reference,
                external_id: None,
                paid_at,
            },
            now,
            &self.billing.dunning,
            Some(&Audit::new(
                actor,
                "payment.record",
                req.invoice_number.trim(),
            )),
        )
        .await?;
        let Some((id, _)) = recorded else {
            return Err(PromoError::internal(
                "operator payment reported as duplicate",
            ));
        };
        let invoice = bill::find_invoice(&self.db, &req.invoice_number).await?;
        let (_, balance) = bill::customer_invoices(&self.db, &invoice.customer_id).await?;
        let state = bill::billing_state(&self.db, &invoice.customer_id).await?;
        tracing::info!(payment = %id, invoice = %invoice.number, amount, method, "payment recorded");
        Ok(pb::RecordedPayment {
            id,
            invoice: Some(invoice_pb(invoice)),
            state: state_pb(state),
            balance_dzd: balance,
        })
    }
}

#[tonic::async_trait]
impl Billing for BillingApi {
    async fn get_billing(
        &self,
        req: Request<pb::GetBillingRequest>,
    ) -> Result<Response<pb::BillingOverview>, Status> {
        let session = self.api.session(&req).await?;
        Ok(Response::new(
            self.api.overview(&session.customer_id).await?,
        ))
    }

    async fn pay_invoice_by_card(
        &self,
        req: Request<pb::PayInvoiceByCardRequest>,
    ) -> Result<Response<pb::CardCheckout>, Status> {
        let session = self.api.session_for_change(&req).await?;
        Ok(Response::new(
            self.api
                .pay_by_card(&session.customer_id, req.get_ref().invoice_number.trim())
                .await?,
        ))
    }

    async fn handle_chargily_webhook(
        &self,
        req: Request<pb::ChargilyWebhookRequest>,
    ) -> Result<Response<pb::ChargilyWebhookResponse>, Status> {
        self.api.require_internal(&req)?;
        let r = req.into_inner();
        let outcome = self.api.chargily_webhook(&r.raw_body, &r.signature).await?;
        Ok(Response::new(pb::ChargilyWebhookResponse {
            outcome: outcome.to_owned(),
        }))
    }

    async fn get_invoice_pdf(
        &self,
        req: Request<pb::GetInvoicePdfRequest>,
    ) -> Result<Response<pb::InvoicePdf>, Status> {
        // The operator's token opens any invoice; otherwise the session's own invoices only.
        let owner = if iafactory::grpc::bearer_token(req.metadata()).is_some() {
            self.api.require_admin(&req)?;
            None
        } else {
            Some(self.api.session(&req).await?.customer_id)
        };
        let number = req.get_ref().invoice_number.trim();
        let invoice = bill::find_invoice(&self.api.db, number).await?;
        if owner.is_some_and(|c| c != invoice.customer_id) {
            return Err(PromoError::NotFound(format!(
                "facture inconnue : {:?}",
                number.chars().take(40).collect::<String>()
            ))
            .into());
        }
        let pdf = crate::billing::pdf::render(&invoice)?;
        Ok(Response::new(pb::InvoicePdf {
            invoice_number: invoice.number,
            pdf,
        }))
    }

    async fn list_invoices(
        &self,
        req: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        self.api.require_admin(&req)?;
        let r = req.into_inner();
        let status: Option<InvoiceStatus> = InvoiceStatus::parse(&r.status)?;
        let limit = match r.limit {
            0 => 100,
            n => n.min(1000) as usize,
        };
        let customer = Some(r.customer_id.trim()).filter(|c| !c.is_empty());
        let invoices = bill::list_invoices(&self.api.db, customer, status, limit).await?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: invoices.into_iter().map(invoice_pb).collect(),
        }))
    }

    async fn issue_invoice(
        &self,
        req: Request<pb::IssueInvoiceRequest>,
    ) -> Result<Response<pb::IssuedInvoice>, Status> {
        self.api.require_admin(&req)?;
        let customer = req.get_ref().customer_id.trim();
        if customer.is_empty() {
            return Err(PromoError::InvalidArgument("customer_id est requis".into()).into());
        }
        let now = self.api.clock.now_ms();
        let (invoice, created) =
            bill::issue_current_invoice(&self.api.db, customer, now, self.api.billing_ctx())
                .await?;
        if created {
            self.api.mail_wake.notify_one();
        }
        Ok(Response::new(pb::IssuedInvoice {
            invoice: Some(invoice_pb(invoice)),
            created,
        }))
    }

    async fn record_payment(
        &self,
        req: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordedPayment>, Status> {
        self.api.require_admin(&req)?;
        Ok(Response::new(
            self.api
                .record_payment(req.into_inner(), &Actor::AdminToken)
                .await?,
        ))
    }

    async fn issue_credit_note(
        &self,
        req: Request<pb::IssueCreditNoteRequest>,
    ) -> Result<Response<pb::CreditNote>, Status> {
        self.api.require_admin(&req)?;
        let r = req.into_inner();
        let amount = rules::amount("amount_dzd", r.amount_dzd)?;
        let reason = rules::text_field("reason", &r.reason, 300)?;
        let note = bill::issue_credit_note(
            &self.api.db,
            &r.invoice_number,
            amount,
            &reason,
            self.api.clock.now_ms(),
            &self.api.billing.dunning,
            &Audit::new(
                &Actor::AdminToken,
                "credit_note.issue",
                r.invoice_number.trim(),
            ),
        )
        .await?;
        Ok(Response::new(pb::CreditNote {
            id: note.id,
            number: note.number,
            invoice_number: note.invoice_number,
            amount_dzd: note.amount_dzd,
            reason: note.reason,
            issued_at: rfc3339(note.issued_at),
        }))
    }

    async fn run_billing(
        &self,
        req: Request<pb::RunBillingRequest>,
    ) -> Result<Response<pb::BillingRun>, Status> {
        self.api.require_admin(&req)?;
        let report = self.api.billing_jobs().pass().await?;
        Ok(Response::new(pb::BillingRun {
            issued: report.issued,
            state_changes: report.state_changes,
            mrr_dzd: report.mrr_dzd,
        }))
    }
}
