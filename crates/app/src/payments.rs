//! Paying for an order, the gateway's notifications (the only way a payment or refund is
//! confirmed), and refunds requested by the applicant.

use crate::apply::Actor;
use crate::{App, AppError, in_tx, new_id};
use yiqian_domain::RefundId;
use yiqian_domain::payment::{Channel, GatewayState};
use yiqian_domain::{ApplicantId, Command, OrderState, PaymentId, RefundReason};
use yiqian_providers::payment::{
    GatewayNotification, GatewayTrade, NotificationRejected, Payer, PaymentGateway, PaymentRequest, PaymentStart,
    SignedNotification,
};
use yiqian_store::StoreError;
use yiqian_store::Tx;
use yiqian_store::audit::NewAuditEntry;
use yiqian_store::orders::OrderRecord;
use yiqian_store::payments::PaymentRecord;

/// What became of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// It changed something.
    Applied,
    /// We had it already (a replay or a retry); nothing changed.
    Duplicate,
    /// Genuine, but nothing here changes because of it (recorded so a replay is a duplicate).
    Acknowledged,
}

/// How a payment can go ahead for this applicant, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayerRoute {
    /// Start it with this payer.
    Pay(Payer),
    /// Inside WeChat, WeChat Pay needs the applicant's openid first (web authorisation).
    AuthoriseFirst,
}

impl App {
    /// What the gateway must know about the payer of `channel`: inside WeChat, WeChat Pay
    /// takes JSAPI with the applicant's openid (its H5 cashier refuses to open there), so an
    /// applicant without one authorises first — or, without WeChat authorisation configured,
    /// is asked to pay another way.
    pub async fn payer_for(
        &self,
        applicant: &ApplicantId,
        channel: &str,
        in_wechat: bool,
        client_ip: String,
    ) -> Result<PayerRoute, AppError> {
        let wechat_openid = self.wechat_openid_of(applicant).await?;
        let real_wechat_pay = self.providers().payments.wechat.name() == "wechatpay";
        if channel == Channel::Wechat.code() && in_wechat && wechat_openid.is_none() && real_wechat_pay {
            if !self.wechat_login_enabled() {
                return Err(AppError::invalid(
                    "wechat_authorisation_off",
                    "在微信内支付需要微信授权,请改用支付宝,或在手机浏览器中打开本页面支付",
                ));
            }
            return Ok(PayerRoute::AuthoriseFirst);
        }
        Ok(PayerRoute::Pay(Payer { wechat_openid, client_ip: Some(client_ip) }))
    }

    /// Starts paying for an unpaid order through `channel`; returns how the applicant goes on
    /// (a cashier page, or WeChat's in-app cashier with its parameters).
    pub async fn start_payment(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        channel: &str,
        payer: Payer,
    ) -> Result<PaymentStart, AppError> {
        let channel = Channel::from_code(channel)
            .ok_or_else(|| AppError::invalid("invalid_channel", "请选择微信支付或支付宝"))?;
        let rec = {
            let mut tx = self.store().read().await?;
            self.own_order(&mut tx, applicant, order_id).await?
        };
        self.check_payable(&rec)?;
        let payment = PaymentId::parse(&new_id("PY", 20)).expect("generated ids are valid");
        let request = PaymentRequest {
            payment: payment.clone(),
            order: rec.order.id.clone(),
            amount: rec.order.price,
            channel,
            description: self.config().product.name.clone(),
            return_url: format!("{}/orders/{}/paying", self.config().public_url, rec.order.id),
            payer,
            expires_at: rec.order.pay_deadline,
        };
        let gateway = self.providers().payments.for_channel(channel).clone();
        // The gateway call comes first: an unused prepay at the gateway is harmless, a
        // payment record without one would not be.
        let start = gateway.create_payment(&request).await?;
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = tx.load_order(&rec.order.id).await?;
            self.check_payable(&rec)?;
            tx.insert_payment(&PaymentRecord {
                id: payment.clone(),
                order: rec.order.id.clone(),
                channel,
                amount: rec.order.price,
                state: GatewayState::Pending,
                gateway_txn: None,
                created_at: now,
            })
            .await?;
            let actor = Actor::Applicant(applicant.clone()).label();
            let subject = format!("order:{}", rec.order.id);
            let detail = serde_json::json!({"payment": payment, "channel": channel.code(), "gateway": gateway.name()});
            tx.audit(NewAuditEntry { actor: &actor, action: "payment.started", subject: &subject, detail }, now)
                .await?;
            Ok(())
        })?;
        crate::metrics::payment(gateway.name(), "started");
        Ok(start)
    }

    fn check_payable(&self, rec: &OrderRecord) -> Result<(), AppError> {
        match rec.order.state {
            OrderState::Created if rec.order.pay_deadline > self.now() => Ok(()),
            OrderState::Created | OrderState::Cancelled => Err(AppError::Conflict {
                code: "order_closed",
                message: "订单已超时或已取消,请重新办理".into(),
            }),
            _ => Err(yiqian_domain::OrderError::AlreadyPaid.into()),
        }
    }

    /// The gateway whose webhook is `/notify/{name}`.
    pub fn gateway_named(&self, name: &str) -> Result<std::sync::Arc<dyn PaymentGateway>, AppError> {
        self.providers().payments.by_name(name).cloned().ok_or(AppError::NotFound("gateway"))
    }

    /// Takes a notification posted to gateway `gateway_name`'s webhook: verifies its
    /// signature, then confirms the payment or refund exactly once. A replay, or a second
    /// delivery, changes nothing.
    pub async fn handle_notification(
        &self,
        gateway_name: &str,
        signed: &SignedNotification,
    ) -> Result<NotificationOutcome, AppError> {
        let gateway = self.gateway_named(gateway_name)?;
        let notification = gateway.verify_notification(signed, self.now()).map_err(|e| {
            tracing::warn!(gateway = gateway.name(), reason = %e, "payment notification rejected");
            let (code, verdict) = match e {
                NotificationRejected::Stale => ("notification_stale", "stale"),
                NotificationRejected::Malformed(_) => ("notification_malformed", "malformed"),
                _ => ("notification_signature", "signature"),
            };
            crate::metrics::payment_notification(gateway.name(), verdict);
            AppError::invalid(code, e.to_string())
        })?;
        let taken = self.take_notification(gateway.as_ref(), &notification).await;
        let verdict = match &taken {
            Ok(NotificationOutcome::Applied) => "applied",
            Ok(NotificationOutcome::Duplicate) => "duplicate",
            Ok(NotificationOutcome::Acknowledged) => "acknowledged",
            Err(_) => "refused",
        };
        crate::metrics::payment_notification(gateway.name(), verdict);
        if let Ok(NotificationOutcome::Applied) = taken {
            match notification {
                GatewayNotification::PaymentSucceeded { .. } => crate::metrics::payment(gateway.name(), "confirmed"),
                GatewayNotification::RefundSucceeded { .. } => crate::metrics::refund(gateway.name(), "succeeded"),
                GatewayNotification::RefundFailed { .. } => crate::metrics::refund(gateway.name(), "failed"),
                GatewayNotification::Informational { .. } => {}
            }
        }
        taken
    }

    /// Applies a verified notification (or a trade query's answer in its form) exactly once.
    async fn take_notification(
        &self,
        gateway: &dyn PaymentGateway,
        notification: &GatewayNotification,
    ) -> Result<NotificationOutcome, AppError> {
        let actor = Actor::Gateway(gateway.name());
        in_tx!(self, |tx| {
            let now = self.now();
            let kind = match notification {
                GatewayNotification::PaymentSucceeded { .. } => "payment",
                GatewayNotification::RefundSucceeded { .. } | GatewayNotification::RefundFailed { .. } => "refund",
                GatewayNotification::Informational { .. } => "informational",
            };
            match tx.record_notification(notification.id(), kind, now).await {
                Ok(()) => {}
                Err(StoreError::Duplicate) => return Ok(NotificationOutcome::Duplicate),
                Err(e) => return Err(e.into()),
            }
            match notification {
                GatewayNotification::PaymentSucceeded { payment, gateway_txn, amount, .. } => {
                    let paid = match tx.payment(payment).await {
                        Ok(p) => p,
                        Err(StoreError::NotFound(_)) => {
                            return Err(AppError::invalid("unknown_payment", "unknown payment"));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    yiqian_domain::payment::check_amount(paid.amount, *amount)
                        .map_err(|e| AppError::invalid("amount_mismatch", e.to_string()))?;
                    match tx.confirm_payment(payment, gateway_txn, now).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => return Ok(NotificationOutcome::Duplicate),
                        Err(e) => return Err(e.into()),
                    }
                    let rec = tx.load_order(&paid.order).await?;
                    self.apply(
                        &mut tx,
                        &rec,
                        &actor,
                        Command::ConfirmPayment { payment: payment.clone(), amount: *amount },
                    )
                    .await?;
                }
                GatewayNotification::RefundSucceeded { refund, .. } => {
                    if !self.confirm_refund_in(&mut tx, refund, &actor).await? {
                        return Ok(NotificationOutcome::Duplicate);
                    }
                }
                GatewayNotification::RefundFailed { refund, status, .. } => {
                    let r = tx.refund(refund).await.map_err(|e| match e {
                        StoreError::NotFound(_) => AppError::invalid("unknown_refund", "unknown refund"),
                        e => e.into(),
                    })?;
                    tracing::error!(refund = %refund, status = %status, "the gateway reports a failed refund; staff must act");
                    let subject = format!("order:{}", r.order);
                    let detail = serde_json::json!({"refund": refund, "status": status});
                    tx.audit(
                        NewAuditEntry { actor: &actor.label(), action: "refund.failed", subject: &subject, detail },
                        now,
                    )
                    .await?;
                }
                GatewayNotification::Informational { summary, .. } => {
                    tracing::info!(gateway = gateway.name(), summary = %summary, "gateway notification acknowledged");
                    return Ok(NotificationOutcome::Acknowledged);
                }
            }
            Ok(NotificationOutcome::Applied)
        })
    }

    /// While the applicant waits on 支付结果 and the gateway's notification is late, asks the
    /// gateway about the order's open payments (those started more than a few seconds ago)
    /// and takes a payment it reports — exactly as its notification would be taken, so the
    /// notification arriving later changes nothing. WeChat Pay's H5 flow has no front-end
    /// callback; this is its recommended "query the order".
    pub async fn check_open_payments(&self, applicant: &ApplicantId, order_id: &str) -> Result<(), AppError> {
        let open = {
            let mut tx = self.store().read().await?;
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            if rec.order.state != OrderState::Created {
                return Ok(());
            }
            let settle = self.now() - chrono::Duration::seconds(5);
            tx.payments_of(&rec.order.id)
                .await?
                .into_iter()
                .filter(|p| p.state == GatewayState::Pending && p.created_at < settle)
                .collect::<Vec<_>>()
        };
        for p in open {
            let gateway = self.providers().payments.for_channel(p.channel).clone();
            let trade = match gateway.query_payment(&p.id).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(payment = %p.id, error = %e, "trade query failed");
                    continue;
                }
            };
            if let GatewayTrade::Paid { gateway_txn, amount } | GatewayTrade::Refunded { gateway_txn, amount } = trade {
                let found = GatewayNotification::PaymentSucceeded {
                    notification_id: format!("query:{}", p.id),
                    payment: p.id.clone(),
                    gateway_txn,
                    amount,
                };
                self.take_notification(gateway.as_ref(), &found).await?;
            }
        }
        Ok(())
    }

    /// Confirms a refund the gateway reports done (by notification, or in its answer to
    /// the request); `false` when it was confirmed before.
    pub(crate) async fn confirm_refund_in(
        &self,
        tx: &mut Tx,
        refund: &RefundId,
        actor: &Actor,
    ) -> Result<bool, AppError> {
        let now = self.now();
        let r = match tx.refund(refund).await {
            Ok(r) => r,
            Err(StoreError::NotFound(_)) => return Err(AppError::invalid("unknown_refund", "unknown refund")),
            Err(e) => return Err(e.into()),
        };
        match tx.confirm_refund(refund, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        let rec = tx.load_order(&r.order).await?;
        if rec.order.paid_by.as_ref() == Some(&r.payment) {
            self.apply(tx, &rec, actor, Command::ConfirmRefund).await?;
        } else {
            // A refund of a duplicate payment: the order itself is unaffected.
            let subject = format!("order:{}", rec.order.id);
            let detail = serde_json::json!({"refund": refund, "payment": r.payment});
            tx.audit(
                NewAuditEntry { actor: &actor.label(), action: "refund.succeeded", subject: &subject, detail },
                now,
            )
            .await?;
        }
        Ok(true)
    }

    /// The applicant asks for the money back (any time before shipping).
    pub async fn request_refund(&self, applicant: &ApplicantId, order_id: &str) -> Result<OrderRecord, AppError> {
        in_tx!(self, |tx| {
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            let command = Command::RequestRefund { reason: RefundReason::ApplicantRequest };
            let (rec, _) = self.apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), command).await?;
            Ok(rec)
        })
    }
}
