//! 审计日志 (`/console/audit`, auditors and administrators): the audit trail newest first, a
//! page at a time, and a check of the whole hash chain on request. Reading changes nothing,
//! so both are plain GET requests.

use super::{ConsoleStaff, beijing_time, console_error, console_layout};
use crate::WebState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use yiqian_store::audit::AuditVerdict;

const NAV: &str = "/console/audit";
/// Entries per page.
const PAGE: i64 = 50;

/// Routes of the audit log.
pub(super) fn routes() -> Router<WebState> {
    Router::new().route("/console/audit", get(log))
}

#[derive(Deserialize)]
struct AuditQuery {
    /// Show entries before this sequence number.
    before: Option<i64>,
    /// Check the chain.
    verify: Option<String>,
}

async fn log(State(s): State<WebState>, staff: ConsoleStaff, Query(q): Query<AuditQuery>) -> Response {
    let entries = match s.app.audit_log(&staff.member, q.before, PAGE).await {
        Ok(e) => e,
        Err(e) => return console_error(&s, Some(&staff.member), e),
    };
    let verdict = match q.verify.is_some() {
        true => match s.app.verify_audit_chain(&staff.member).await {
            Ok(v) => Some(v),
            Err(e) => return console_error(&s, Some(&staff.member), e),
        },
        false => None,
    };
    let older = (entries.len() as i64 == PAGE).then(|| entries.last().map(|e| e.seq)).flatten();
    let body = html! {
        @match &verdict {
            Some(AuditVerdict::Intact { entries, head }) => {
                p.c-ok role="status" id="audit-verdict" {
                    "审计链完整:共 " (entries) " 条记录,链头哈希 " code { (head) }
                }
            }
            Some(AuditVerdict::Broken { seq, reason }) => {
                p.c-error role="alert" id="audit-verdict" {
                    "审计链已被破坏:第 " (seq) " 条记录起不可信(" (reason) ")。请立即上报。"
                }
            }
            None => {}
        }
        div.c-toolbar {
            form method="get" action="/console/audit" {
                input type="hidden" name="verify" value="1";
                @if let Some(b) = q.before { input type="hidden" name="before" value=(b); }
                button.c-btn.c-primary type="submit" id="verify-chain" { "验证审计链" }
            }
            span.c-muted { "每条记录都包含上一条的哈希;任何修改或删除都会在验证时被发现。" }
        }
        section.c-card {
            table.c-table.c-audit id="audit-log" {
                thead { tr { th { "序号" } th { "时间(北京时间)" } th { "操作者" } th { "操作" } th { "对象" } th { "详情" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (e.seq) }
                            td.c-nowrap { (beijing_time(yiqian_store::from_millis(e.at))) }
                            td { code { (e.actor) } }
                            td { code { (e.action) } }
                            td { code { (e.subject) } }
                            td.c-detail { code { (e.detail) } }
                        }
                    }
                    @if entries.is_empty() { tr { td colspan="6" { span.c-muted { "没有记录" } } } }
                }
            }
            div.c-pager {
                @if q.before.is_some() { a.c-btn href="/console/audit" { "最新" } }
                @if let Some(seq) = older { a.c-btn href={ "/console/audit?before=" (seq) } id="older" { "更早" } }
            }
        }
    };
    console_layout(&s, &staff.member, "审计日志", NAV, body).into_response()
}
