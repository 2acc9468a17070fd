//! How long personal data is kept, and its deletion when that time is over or when the
//! applicant asks where the law allows it.
//!
//! - The materials of an order that closed without a certificate (cancelled, or refunded — a
//!   rejected application is refunded) go a short period after it closed (PIPL art. 19 and 47:
//!   no longer than the purpose needs).
//! - The identity materials of an order that got a certificate are kept until some years after
//!   its last certificate expired: at least five (Electronic Signature Law art. 24), which is
//!   the default. Until then a deletion request is refused, saying until when they are kept.
//!
//! Deletion is crypto-shredding (`yiqian_store::erasure`) with an audit entry recording what
//! kinds of data of which order went and why — never the data.

use crate::staff::StaffMember;
use crate::{App, AppError, in_tx};
use chrono::{DateTime, Duration, Months, Utc};
use serde_json::json;
use yiqian_domain::staff::Permission;
use yiqian_domain::{OrderId, OrderState};
use yiqian_store::audit::NewAuditEntry;

/// The least number of years identity materials are kept after a certificate expires.
pub const LAWFUL_MINIMUM_YEARS: u32 = 5;

/// Orders looked at per retention run, per rule (the job runs every hour and takes the rest
/// next time).
const BATCH: i64 = 500;

/// The retention periods of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days the materials of a cancelled or refunded order are kept after it closed.
    pub closed_order_days: u32,
    /// Years identity materials are kept after the order's last certificate expired (at least
    /// [`LAWFUL_MINIMUM_YEARS`]).
    pub years_after_certificate_expiry: u32,
}

impl Default for RetentionPolicy {
    fn default() -> RetentionPolicy {
        RetentionPolicy { closed_order_days: 30, years_after_certificate_expiry: LAWFUL_MINIMUM_YEARS }
    }
}

/// Why an order's personal data is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureReason {
    /// The order closed without a certificate and its period passed.
    ClosedOrder,
    /// The years after its last certificate expired passed.
    CertificateRetention,
    /// The applicant asked, and no law requires keeping it.
    ApplicantRequest,
}

impl ErasureReason {
    /// The stable code recorded with the erasure.
    pub fn code(self) -> &'static str {
        match self {
            ErasureReason::ClosedOrder => "closed_order",
            ErasureReason::CertificateRetention => "certificate_retention",
            ErasureReason::ApplicantRequest => "applicant_request",
        }
    }

    /// The reason recorded as `code`.
    pub fn from_code(code: &str) -> Option<ErasureReason> {
        [ErasureReason::ClosedOrder, ErasureReason::CertificateRetention, ErasureReason::ApplicantRequest]
            .into_iter()
            .find(|r| r.code() == code)
    }

    /// The reason in the words staff read.
    pub fn title(self) -> &'static str {
        match self {
            ErasureReason::ClosedOrder => "订单关闭后保存期满",
            ErasureReason::CertificateRetention => "证书失效后保存期满",
            ErasureReason::ApplicantRequest => "应申请人的删除请求",
        }
    }
}

/// The words staff read for a kind of data an erasure recorded (a material key, `blob:KIND`
/// or `phone`); the code itself when it is not one of ours.
pub fn kind_title(kind: &str) -> &str {
    match kind {
        "phone" => "绑定手机号",
        "id_card" => "身份证信息",
        "id_card_photos" => "身份证照片识别结果",
        "liveness" => "人脸识别记录",
        "activation" => "激活人脸识别记录",
        "signature" => "手写签名记录",
        "address" => "收货地址",
        "blob:id_front" => "身份证人像面照片",
        "blob:id_back" => "身份证国徽面照片",
        "blob:liveness_video" => "人脸识别视频",
        "blob:activation_video" => "激活人脸视频",
        "blob:signature" => "手写签名图片",
        other => other,
    }
}

/// An order whose personal data is due for deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueErasure {
    /// The order.
    pub order: OrderId,
    /// Under which rule.
    pub reason: ErasureReason,
    /// What the rule counted from: when the order closed, or when its last certificate expired.
    pub since: DateTime<Utc>,
}

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Each order and the kinds of data that went (on a dry run: the orders due, no kinds).
    pub erased: Vec<(DueErasure, Vec<String>)>,
    /// Blobs removed from the blob store.
    pub purged_blobs: usize,
}

impl App {
    /// The orders whose personal data is due for deletion now (at most a batch per rule).
    pub async fn retention_due(&self) -> Result<Vec<DueErasure>, AppError> {
        let policy = self.config().retention;
        let now = self.now();
        let closed_cutoff = now - Duration::days(i64::from(policy.closed_order_days));
        let certified_cutoff = now
            .checked_sub_months(Months::new(12 * policy.years_after_certificate_expiry))
            .ok_or_else(|| AppError::Internal("retention years out of range".into()))?;
        let mut due = Vec::new();
        for (order, since) in self.store().closed_orders_to_erase(closed_cutoff, BATCH).await? {
            due.push(DueErasure { order, reason: ErasureReason::ClosedOrder, since });
        }
        for (order, since) in self.store().certified_orders_to_erase(certified_cutoff, BATCH).await? {
            due.push(DueErasure { order, reason: ErasureReason::CertificateRetention, since });
        }
        Ok(due)
    }

    /// Deletes the personal data of every order due (see the module comment), then removes
    /// the given-up blobs from the blob store. With `dry_run`, only says which orders are due.
    pub async fn run_retention(&self, dry_run: bool) -> Result<RetentionReport, AppError> {
        let due = self.retention_due().await?;
        let mut report = RetentionReport::default();
        if dry_run {
            report.erased = due.into_iter().map(|d| (d, Vec::new())).collect();
            return Ok(report);
        }
        for d in due {
            let kinds = self.erase(&d.order, d.reason, "system", rule_text(self, &d)).await?;
            report.erased.push((d, kinds));
        }
        report.purged_blobs = self.store().purge_erased_blobs(self.now(), BATCH * 8).await?;
        Ok(report)
    }

    /// Deletes the personal data of `order_id` because its applicant asked (recorded by an
    /// administrator, with how the request came). Refused while the order is still going (it
    /// must be cancelled or refunded first) and while the law requires keeping it: an order
    /// that got a certificate keeps its identity materials until the years after its last
    /// certificate expired.
    pub async fn erase_on_request(
        &self,
        by: &StaffMember,
        order_id: &str,
        request: &str,
    ) -> Result<Vec<String>, AppError> {
        by.require(Permission::ManageStaff)?;
        let order = OrderId::parse(order_id).ok_or(AppError::NotFound("订单"))?;
        let rec = match self.store().read().await?.load_order(&order).await {
            Err(yiqian_store::StoreError::NotFound(_)) => return Err(AppError::NotFound("订单")),
            loaded => loaded?,
        };
        if let Some(expiry) = self.store().last_certificate_expiry(&order).await? {
            let years = self.config().retention.years_after_certificate_expiry;
            let until = expiry.checked_add_months(Months::new(12 * years)).unwrap_or(expiry);
            return Err(AppError::Conflict {
                code: "retention_required",
                message: format!(
                    "该订单已签发数字证书,依《电子签名法》第二十四条,身份资料须保存至证书失效后{years}年(至{}),届时自动删除",
                    until.with_timezone(&crate::china_time()).format("%Y年%m月%d日")
                ),
            });
        }
        if !matches!(rec.order.state, OrderState::Cancelled | OrderState::Refunded) {
            return Err(AppError::Conflict {
                code: "order_in_progress",
                message: "订单仍在办理中:请申请人先取消订单或申请退款,再删除其个人资料".into(),
            });
        }
        let request: String = request.trim().chars().filter(|c| !c.is_control()).take(200).collect();
        if request.is_empty() {
            return Err(AppError::invalid_field("request_required", "request", "请注明申请人提出删除请求的方式和日期"));
        }
        let rule = format!("the applicant's request ({request})");
        self.erase(&order, ErasureReason::ApplicantRequest, &format!("staff:{}", by.name), rule).await
    }

    /// The latest erasures (by the retention job or on request), newest first, for
    /// administrators.
    pub async fn recent_erasures(
        &self,
        by: &StaffMember,
        limit: i64,
    ) -> Result<Vec<(OrderId, yiqian_store::erasure::Erasure)>, AppError> {
        by.require(Permission::ManageStaff)?;
        Ok(self.store().recent_erasures(limit).await?)
    }

    /// Erases one order's personal data with its audit entry, in one unit of work, then
    /// removes its blobs from the blob store. Returns the kinds of data that went.
    async fn erase(
        &self,
        order: &OrderId,
        reason: ErasureReason,
        by: &str,
        rule: String,
    ) -> Result<Vec<String>, AppError> {
        let erased = in_tx!(self, |tx| {
            let now = self.now();
            if tx.erasure(order).await?.is_some() {
                return Err(AppError::Conflict {
                    code: "already_erased", message: "该订单的个人资料已删除".into()
                });
            }
            let erased = tx.erase_order_personal_data(order, reason.code(), by, now).await?;
            let detail =
                json!({"reason": reason.code(), "rule": rule, "kinds": erased.kinds(), "blobs": erased.blobs.len()});
            let subject = format!("order:{order}");
            tx.audit(NewAuditEntry { actor: by, action: "order.personal_data_erased", subject: &subject, detail }, now)
                .await?;
            Ok(erased)
        })?;
        crate::metrics::personal_data_erased(reason.code());
        if !erased.blobs.is_empty()
            && let Err(e) = self.store().purge_erased_blobs(self.now(), erased.blobs.len() as i64 * 4).await
        {
            tracing::warn!(error = %e, "erased blobs not removed yet; the retention job tries again");
        }
        Ok(erased.kinds())
    }
}

/// The rule that made `due` due, in words for the audit trail.
fn rule_text(app: &App, due: &DueErasure) -> String {
    let policy = app.config().retention;
    match due.reason {
        ErasureReason::ClosedOrder => {
            format!("{} days after the order closed ({})", policy.closed_order_days, due.since.to_rfc3339())
        }
        ErasureReason::CertificateRetention => format!(
            "{} years after its last certificate expired ({})",
            policy.years_after_certificate_expiry,
            due.since.to_rfc3339()
        ),
        ErasureReason::ApplicantRequest => "the applicant's request".into(),
    }
}
