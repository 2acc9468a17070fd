//! Payment reconciliation: every payment started on a day (Beijing time) is compared with the
//! gateway's own record of it (a trade query per payment), and every payment whose money is at
//! the gateway but is neither fulfilled (it paid for an order that is going ahead) nor
//! refunded is reported, together with disagreements between the two books. Where the gateway
//! offers a daily bill (WeChat Pay's trade bill), its payments are also looked up here, so money
//! taken for a trade we never started is reported too. The rule is [`classify`], a pure function; the daily
//! run and `yiqian payments reconcile --date D` both call [`App::reconcile`].

use crate::{App, AppError};
use chrono::{NaiveDate, TimeZone};
use serde::Serialize;
use yiqian_domain::payment::{Channel, GatewayState};
use yiqian_domain::{Fen, OrderId, OrderState, PaymentId};
use yiqian_providers::payment::GatewayTrade;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::payments::{PaymentRecord, RefundRecord};

/// What is wrong with one payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Discrepancy {
    /// The gateway took the money but we never recorded the payment (a lost notification).
    PaidNotRecorded,
    /// We recorded the payment but the gateway has no payment for it.
    RecordedNotPaid,
    /// The two books disagree on the amount.
    AmountMismatch {
        /// Ours.
        ours: Fen,
        /// The gateway's.
        gateway: Fen,
    },
    /// The money is at the gateway, the payment does not pay for a live order (a second
    /// payment, or the order was closed), and no refund went through.
    PaidNotFulfilled,
    /// We confirmed a refund but the gateway still shows the payment unrefunded.
    RefundNotAtGateway,
    /// The gateway's bill has a payment for a trade we never started.
    UnknownAtGateway {
        /// The gateway's transaction id.
        gateway_txn: String,
        /// Amount taken.
        amount: Fen,
    },
    /// The gateway could not be asked.
    GatewayUnavailable {
        /// Why (no personal data).
        detail: String,
    },
}

/// One payment that needs a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The out-trade-number (ours, or as the gateway's bill has it).
    pub payment: String,
    /// The order it was for, when we know the payment.
    pub order: Option<OrderId>,
    /// The channel.
    pub channel: Channel,
    /// What is wrong.
    #[serde(flatten)]
    pub discrepancy: Discrepancy,
}

/// The result of reconciling one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconciliationReport {
    /// The day (Beijing time).
    pub day: NaiveDate,
    /// Payments started that day.
    pub payments: usize,
    /// Of them, paid at the gateway and fulfilled or refunded.
    pub settled: usize,
    /// Of them, never paid (closed or abandoned at the cashier) on both sides.
    pub unpaid: usize,
    /// The ones that need a person.
    pub findings: Vec<Finding>,
}

/// Compares one payment in our books with the gateway's record of it. `None`: the two agree
/// and the payment is unpaid, fulfilled or refunded.
pub fn classify(
    payment: &PaymentRecord,
    refund: Option<&RefundRecord>,
    order_state: OrderState,
    order_paid_by: Option<&PaymentId>,
    trade: &GatewayTrade,
) -> Option<Discrepancy> {
    let refunded_here = refund.is_some_and(|r| r.state == GatewayState::Succeeded);
    let recorded = payment.state == GatewayState::Succeeded;
    let (amount, refunded_there) = match trade {
        GatewayTrade::NotFound | GatewayTrade::NotPaid | GatewayTrade::Closed => {
            return recorded.then_some(Discrepancy::RecordedNotPaid);
        }
        GatewayTrade::Paid { amount, .. } => (*amount, false),
        GatewayTrade::Refunded { amount, .. } => (*amount, true),
    };
    if amount != payment.amount {
        return Some(Discrepancy::AmountMismatch { ours: payment.amount, gateway: amount });
    }
    if !recorded {
        return Some(Discrepancy::PaidNotRecorded);
    }
    if refunded_here && !refunded_there {
        return Some(Discrepancy::RefundNotAtGateway);
    }
    if refunded_here || refunded_there {
        return None;
    }
    let pays_for_the_order = order_paid_by == Some(&payment.id);
    let order_going_ahead = !matches!(order_state, OrderState::Cancelled | OrderState::Refunded);
    if pays_for_the_order && order_going_ahead {
        // Fulfilled, or being refunded through the normal path (Refunding).
        None
    } else {
        Some(Discrepancy::PaidNotFulfilled)
    }
}

impl App {
    /// Reconciles the payments started on `day` (Beijing time) against their gateways and
    /// records the result in the audit log (when there were payments).
    pub async fn reconcile(&self, day: NaiveDate) -> Result<ReconciliationReport, AppError> {
        let start = crate::china_time()
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight exists"))
            .single()
            .expect("a fixed offset has no gaps")
            .with_timezone(&chrono::Utc);
        let end = start + chrono::Duration::days(1);
        let payments = self.store().read().await?.payments_created_between(start, end).await?;
        let mut report =
            ReconciliationReport { day, payments: payments.len(), settled: 0, unpaid: 0, findings: vec![] };
        for payment in payments {
            let (refund, order) = {
                let mut tx = self.store().read().await?;
                let refund = tx.refunds_of(&payment.order).await?.into_iter().find(|r| r.payment == payment.id);
                (refund, tx.load_order(&payment.order).await?)
            };
            let gateway = self.providers().payments.for_channel(payment.channel).clone();
            let discrepancy = match gateway.query_payment(&payment.id).await {
                Ok(trade) => {
                    let found =
                        classify(&payment, refund.as_ref(), order.order.state, order.order.paid_by.as_ref(), &trade);
                    if found.is_none() {
                        match trade {
                            GatewayTrade::Paid { .. } | GatewayTrade::Refunded { .. } => report.settled += 1,
                            _ => report.unpaid += 1,
                        }
                    }
                    found
                }
                Err(e) => Some(Discrepancy::GatewayUnavailable { detail: e.to_string() }),
            };
            if let Some(discrepancy) = discrepancy {
                report.findings.push(Finding {
                    payment: payment.id.to_string(),
                    order: Some(payment.order.clone()),
                    channel: payment.channel,
                    discrepancy,
                });
            }
        }
        self.check_bills(day, &mut report).await?;
        for f in &report.findings {
            tracing::warn!(payment = %f.payment, order = ?f.order, problem = ?f.discrepancy, "reconciliation finding");
        }
        if report.payments == 0 && report.findings.is_empty() {
            // Nothing happened that day; nothing worth an audit entry.
            return Ok(report);
        }
        let detail = serde_json::to_value(&report).map_err(|e| AppError::Internal(e.to_string()))?;
        crate::in_tx!(self, |tx| {
            let now = self.now();
            tx.audit(
                NewAuditEntry {
                    actor: "system",
                    action: "payments.reconciled",
                    subject: &format!("day:{day}"),
                    detail: detail.clone(),
                },
                now,
            )
            .await?;
            Ok(())
        })?;
        Ok(report)
    }

    /// Looks up every payment of the gateways' bills for `day` (where they offer one); a
    /// payment for a trade we never started is a finding.
    async fn check_bills(&self, day: NaiveDate, report: &mut ReconciliationReport) -> Result<(), AppError> {
        let payments = &self.providers().payments;
        let mut gateways = vec![(Channel::Wechat, payments.wechat.clone())];
        if payments.alipay.name() != payments.wechat.name() {
            gateways.push((Channel::Alipay, payments.alipay.clone()));
        }
        for (channel, gateway) in gateways {
            let bill = match gateway.daily_bill(day).await {
                Ok(Some(bill)) => bill,
                Ok(None) => continue,
                Err(e) => {
                    report.findings.push(Finding {
                        payment: String::new(),
                        order: None,
                        channel,
                        discrepancy: Discrepancy::GatewayUnavailable { detail: format!("daily bill: {e}") },
                    });
                    continue;
                }
            };
            let mut tx = self.store().read().await?;
            for entry in bill {
                let known = match PaymentId::parse(&entry.out_trade_no) {
                    Some(id) => match tx.payment(&id).await {
                        Ok(_) => true,
                        Err(yiqian_store::StoreError::NotFound(_)) => false,
                        Err(e) => return Err(e.into()),
                    },
                    None => false,
                };
                if !known {
                    report.findings.push(Finding {
                        payment: entry.out_trade_no.clone(),
                        order: None,
                        channel,
                        discrepancy: Discrepancy::UnknownAtGateway {
                            gateway_txn: entry.gateway_txn,
                            amount: entry.amount,
                        },
                    });
                }
            }
        }
        Ok(())
    }

    /// Yesterday, Beijing time (the day the daily run reconciles).
    pub fn yesterday_in_beijing(&self) -> NaiveDate {
        (self.now().with_timezone(&crate::china_time()) - chrono::Duration::days(1)).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use yiqian_domain::RefundId;
    use yiqian_domain::order::RefundReason;

    fn payment(state: GatewayState) -> PaymentRecord {
        PaymentRecord {
            id: PaymentId::parse("PY1").unwrap(),
            order: OrderId::parse("YQ1").unwrap(),
            channel: Channel::Wechat,
            amount: Fen(15000),
            state,
            gateway_txn: None,
            created_at: Utc::now(),
        }
    }

    fn refund(state: GatewayState) -> RefundRecord {
        RefundRecord {
            id: RefundId::parse("RF1").unwrap(),
            order: OrderId::parse("YQ1").unwrap(),
            payment: PaymentId::parse("PY1").unwrap(),
            amount: Fen(15000),
            reason: RefundReason::ApplicantRequest,
            state,
            created_at: Utc::now(),
        }
    }

    fn paid() -> GatewayTrade {
        GatewayTrade::Paid { gateway_txn: "T".into(), amount: Fen(15000) }
    }

    #[test]
    fn agreement_is_silent_and_every_disagreement_is_named() {
        let me = PaymentId::parse("PY1").unwrap();
        let other = PaymentId::parse("PY2").unwrap();
        let ok = GatewayState::Succeeded;
        // Fulfilled, unpaid on both sides, refunded on both sides.
        assert_eq!(classify(&payment(ok), None, OrderState::Shipped, Some(&me), &paid()), None);
        assert_eq!(
            classify(&payment(GatewayState::Pending), None, OrderState::Cancelled, None, &GatewayTrade::Closed),
            None
        );
        let refunded = GatewayTrade::Refunded { gateway_txn: "T".into(), amount: Fen(15000) };
        assert_eq!(classify(&payment(ok), Some(&refund(ok)), OrderState::Refunded, Some(&me), &refunded), None);
        // A refund on its way through the normal path is not a finding yet.
        assert_eq!(
            classify(&payment(ok), Some(&refund(GatewayState::Pending)), OrderState::Refunding, Some(&me), &paid()),
            None
        );

        assert_eq!(
            classify(&payment(GatewayState::Pending), None, OrderState::Created, None, &paid()),
            Some(Discrepancy::PaidNotRecorded)
        );
        assert_eq!(
            classify(&payment(ok), None, OrderState::Collecting, Some(&me), &GatewayTrade::NotFound),
            Some(Discrepancy::RecordedNotPaid)
        );
        assert_eq!(
            classify(
                &payment(ok),
                None,
                OrderState::Collecting,
                Some(&me),
                &GatewayTrade::Paid { gateway_txn: "T".into(), amount: Fen(1) }
            ),
            Some(Discrepancy::AmountMismatch { ours: Fen(15000), gateway: Fen(1) })
        );
        // A second payment of an order, never refunded.
        assert_eq!(
            classify(&payment(ok), None, OrderState::Collecting, Some(&other), &paid()),
            Some(Discrepancy::PaidNotFulfilled)
        );
        // Paid, then the order closed without the refund going through.
        assert_eq!(
            classify(&payment(ok), Some(&refund(GatewayState::Pending)), OrderState::Cancelled, Some(&me), &paid()),
            Some(Discrepancy::PaidNotFulfilled)
        );
        assert_eq!(
            classify(&payment(ok), Some(&refund(ok)), OrderState::Refunded, Some(&me), &paid()),
            Some(Discrepancy::RefundNotAtGateway)
        );
    }
}
