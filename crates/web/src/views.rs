//! How orders, activations and invoices are shown: the JSON shape of the API and the page
//! each state leads to. The rules (state, next step, refund allowed, may verify, may ask for
//! an invoice) come from the domain and the application; this only presents them.

use serde_json::{Value, json};
use yiqian_app::activation::ActivationView;
use yiqian_app::orders::OrderView;
use yiqian_domain::invoice::{InvoiceBuyer, InvoiceState};
use yiqian_domain::{Fen, OrderState, Step};
use yiqian_store::fulfilment::{InvoiceRecord, Shipment};
use yiqian_store::orders::OrderRecord;

/// The page of a materials step.
pub fn step_path(order: &str, step: Step) -> String {
    match step {
        Step::Phone => format!("/orders/{order}/phone"),
        Step::IdCard => format!("/orders/{order}/prepare"),
        Step::Liveness => format!("/orders/{order}/liveness"),
        Step::Signature => format!("/orders/{order}/signature"),
        Step::Address => format!("/orders/{order}/address"),
    }
}

/// Where the applicant continues with this order.
pub fn next_path(rec: &OrderRecord) -> String {
    let id = rec.order.id.as_str();
    match rec.order.state {
        OrderState::Created => format!("/orders/{id}/pay"),
        OrderState::Collecting | OrderState::Returned => match rec.order.checklist.next_open() {
            Some(step) => step_path(id, step),
            None => format!("/orders/{id}/address"),
        },
        OrderState::Submitted => format!("/orders/{id}/accepted"),
        _ => format!("/orders/{id}"),
    }
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The short form of an order (lists).
pub fn order_summary(rec: &OrderRecord) -> Value {
    let s = rec.order.state;
    json!({
        "id": rec.order.id,
        "state": s.code(),
        "status_word": s.applicant_word(),
        "hint": s.applicant_hint(),
        "price_fen": rec.order.price,
        "price_yuan": rec.order.price.yuan(),
        "created_at": time(rec.created_at),
        "pay_deadline": time(rec.order.pay_deadline),
        "can_refund": s.refund_allowed(),
        "checklist": Step::ALL.iter().map(|st| json!({
            "step": st.code(), "title": st.title(), "done": rec.order.checklist.is_done(*st),
        })).collect::<Vec<_>>(),
        "next_url": next_path(rec),
    })
}

/// The full form of an order (details page and API).
pub fn order_detail(v: &OrderView) -> Value {
    let mut out = order_summary(&v.record);
    out["next_step"] = json!(v.next_step.map(Step::code));
    out["returned_reason"] = json!(v.returned_reason);
    out["history"] = v
        .history
        .iter()
        .map(|h| json!({"at": time(h.at), "text": h.event.applicant_text(), "status_word": h.state_after.applicant_word()}))
        .collect();
    out["payments"] = v
        .payments
        .iter()
        .map(|p| json!({"id": p.id, "channel": p.channel.code(), "amount_fen": p.amount, "state": p.state.code()}))
        .collect();
    out["refunds"] = v
        .refunds
        .iter()
        .map(|r| json!({"id": r.id, "amount_fen": r.amount, "reason": r.reason.code(), "state": r.state.code()}))
        .collect();
    out["pin_pending"] = json!(v.record.order.state == OrderState::ActivationReview);
    out["shipment"] = json!(v.shipment.as_ref().map(shipment));
    out["invoice"] = json!(v.invoice.as_ref().map(invoice_summary));
    out["can_request_invoice"] = json!(v.can_request_invoice());
    out
}

fn shipment(s: &Shipment) -> Value {
    json!({"courier": s.courier, "tracking_no": s.tracking_no, "shipped_at": time(s.shipped_at)})
}

/// The activation pages: the risk notice (本人已阅读并同意申请), the face video, the result.
pub fn activation_page(code: &str, page: ActivationPage) -> String {
    match page {
        ActivationPage::Notice => format!("/activate/{code}"),
        ActivationPage::Verify => format!("/activate/{code}/verify"),
        ActivationPage::Done => format!("/activate/{code}/done"),
    }
}

/// The steps of activation as pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationPage {
    /// Step 1: the risk notice and consent.
    Notice,
    /// Step 2: the face video.
    Verify,
    /// The result (or why there is nothing to do).
    Done,
}

/// Where the applicant continues an activation: the notice while it may still be accepted,
/// the face video once it was, otherwise the result page (activated, locked, not shipped).
pub fn activation_next(v: &ActivationView) -> ActivationPage {
    if v.can_verify() {
        ActivationPage::Verify
    } else if v.record.order.state == OrderState::Shipped && v.tries_left > 0 {
        ActivationPage::Notice
    } else {
        ActivationPage::Done
    }
}

/// An activation as the API shows it.
pub fn activation_detail(v: &ActivationView) -> Value {
    let s = v.record.order.state;
    json!({
        "order_id": v.record.order.id,
        "state": s.code(),
        "status_word": s.applicant_word(),
        "hint": s.applicant_hint(),
        "consent_given": v.fulfilment.activation_consent_at.is_some(),
        "consent_at": v.fulfilment.activation_consent_at.map(time),
        "tries_left": v.tries_left,
        "pin_pending": v.pin_pending(),
        "can_verify": v.can_verify(),
        "shipment": v.fulfilment.shipment.as_ref().map(shipment),
        "next_url": activation_page(&v.fulfilment.activation_code, activation_next(v)),
    })
}

/// Where the applicant downloads an issued invoice.
pub fn invoice_pdf_path(order: &str) -> String {
    format!("/api/v1/orders/{order}/invoice.pdf")
}

/// The invoice's place in the order JSON: state and, once issued, number and download.
pub fn invoice_summary(i: &InvoiceRecord) -> Value {
    json!({
        "state": i.state.code(),
        "status_word": i.state.applicant_word(),
        "invoice_no": i.invoice_no,
        "download_url": (i.state == InvoiceState::Issued).then(|| invoice_pdf_path(i.order.as_str())),
    })
}

/// An invoice in full, for its owner.
pub fn invoice_detail(i: &InvoiceRecord) -> Value {
    let (kind, tax_id) = match &i.request.buyer {
        InvoiceBuyer::Company { tax_id, .. } => ("company", Some(tax_id.as_str())),
        InvoiceBuyer::Personal { .. } => ("personal", None),
    };
    let mut out = invoice_summary(i);
    out["order_id"] = json!(i.order);
    out["buyer"] = json!({
        "kind": kind, "kind_word": i.request.buyer.kind_word(), "name": i.request.buyer.name(), "tax_id": tax_id,
    });
    out["email"] = json!(i.request.email);
    out["amount_fen"] = json!(i.amount_fen);
    out["amount_yuan"] = json!(Fen(u64::try_from(i.amount_fen).unwrap_or(0)).yuan());
    out["requested_at"] = json!(time(i.requested_at));
    out["issued_at"] = json!(i.issued.as_ref().map(|(t, _)| time(*t)));
    out
}
