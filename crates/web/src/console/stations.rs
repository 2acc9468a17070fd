//! 制证工作站 (`/console/stations`, administrators only): the personalisation stations enrolled
//! by fulfilment and counter staff — who enrolled each, when its credential ends, when it was
//! last heard from, the orders it holds now — and revoking one (its orders go back to the
//! queue). Stations enrol themselves with `yiqian station enrol`; nothing is added here.

use super::{ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, csrf_field};
use crate::WebState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;
use yiqian_app::station::StationSummary;

const NAV: &str = "/console/stations";

/// Routes of the station list.
pub(super) fn routes() -> Router<WebState> {
    Router::new().route("/console/stations", get(list)).route("/console/stations/{id}/revoke", post(revoke))
}

#[derive(Deserialize)]
struct Done {
    ok: Option<String>,
}

fn state_tag(s: &StationSummary, now: chrono::DateTime<chrono::Utc>) -> maud::Markup {
    html! {
        @if let Some((at, by)) = &s.record.revoked {
            span.c-tag.c-bad title={ "由 " (by.trim_start_matches("staff:")) " 于 " (beijing_time(*at)) " 吊销" } { "已吊销" }
        } @else if s.record.expires_at <= now {
            span.c-tag.c-off { "已过期" }
        } @else {
            span.c-tag.c-on { "可用" }
        }
    }
}

async fn list(State(s): State<WebState>, staff: ConsoleStaff, Query(done): Query<Done>) -> Response {
    let stations = match s.app.list_stations(&staff.member).await {
        Ok(list) => list,
        Err(e) => return console_error(&s, Some(&staff.member), e),
    };
    let now = s.app.now();
    let body = html! {
        @if done.ok.as_deref() == Some("revoked") {
            p.c-ok role="status" { "已吊销该工作站的凭证;它领取中的订单已退回待制证。" }
        }
        section.c-card {
            p.c-muted {
                "制证工作站由制证员在插着UKEY集线器的电脑上运行 "
                code { "yiqian station enrol --server 本系统地址 --name 工作站名称" }
                " 登记(用户名、密码和动态验证码),凭证有效期7天。吊销后工作站立即无法再领取订单。"
            }
            table.c-table.c-rows id="station-list" {
                thead {
                    tr {
                        th { "工作站" } th { "登记人" } th { "登记时间" } th { "凭证到期" } th { "最近联系" }
                        th { "制证中" } th { "状态" } th { "操作" }
                    }
                }
                tbody {
                    @for st in &stations {
                        tr data-station=(st.record.id) {
                            td { (st.record.name) }
                            td { (st.staff_name) }
                            td.c-nowrap { (beijing_time(st.record.created_at)) }
                            td.c-nowrap { (beijing_time(st.record.expires_at)) }
                            td.c-nowrap { (beijing_time(st.record.last_seen)) }
                            td { (st.live_leases) }
                            td { (state_tag(st, now)) }
                            td {
                                @if st.is_usable(now) {
                                    form.c-inline method="post" action={ "/console/stations/" (st.record.id) "/revoke" } {
                                        (csrf_field(&staff.csrf))
                                        button.c-btn.c-small.c-danger type="submit" { "吊销" }
                                    }
                                }
                            }
                        }
                    }
                    @if stations.is_empty() { tr { td.c-empty colspan="8" { "还没有登记的工作站" } } }
                }
            }
        }
    };
    console_layout(&s, &staff.member, "制证工作站", NAV, body).into_response()
}

async fn revoke(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    match s.app.revoke_station(&staff.member, &id).await {
        Ok(()) => Redirect::to("/console/stations?ok=revoked").into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}
