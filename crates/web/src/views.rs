//! How orders are shown: the JSON shape of the API and the page each state leads to. The
//! rules (state, next step, refund allowed) come from the domain; this only presents them.

use serde_json::{Value, json};
use yiqian_app::orders::OrderView;
use yiqian_domain::{OrderState, Step};
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
    out
}
