//! 人员管理 (`/console/staff`, administrators only): the staff list, adding a member of staff,
//! disabling or re-enabling an account, and resetting a lost authenticator.

use super::{ConsoleStaff, CsrfForm, beijing_time, console_error, console_layout, csrf_field};
use crate::WebState;
use crate::auth::urlencode;
use crate::error::status_of;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use yiqian_app::AppError;
use yiqian_app::staff::{Role, StaffName, StaffSummary};

const NAV: &str = "/console/staff";

/// Routes of staff management.
pub(super) fn routes() -> Router<WebState> {
    Router::new()
        .route("/console/staff", get(list).post(add))
        .route("/console/staff/{name}/disable", post(disable))
        .route("/console/staff/{name}/enable", post(enable))
        .route("/console/staff/{name}/reset-totp", post(reset_totp))
}

#[derive(Deserialize)]
struct Done {
    ok: Option<String>,
    name: Option<String>,
}

/// What the form had, shown again after a refusal (never the password).
#[derive(Default)]
struct Draft {
    name: String,
    role: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

fn notice(done: &Done) -> Option<String> {
    // Only a valid login name is repeated back (the query can be made up by anyone).
    let name = StaffName::parse(done.name.as_deref().unwrap_or("")).ok()?;
    let text = match done.ok.as_deref()? {
        "added" => format!("已添加 {name}。首次登录时需绑定动态验证码。"),
        "disabled" => format!("已停用 {name},其登录会话已全部结束。"),
        "enabled" => format!("已启用 {name}。"),
        "reset" => format!("已重置 {name} 的动态验证码,下次登录时需重新绑定。"),
        _ => return None,
    };
    Some(text)
}

fn status_of_member(m: &StaffSummary) -> Markup {
    html! {
        @if m.disabled { span.c-tag.c-off { "已停用" } }
        @else if let Some(until) = m.locked_until { span.c-tag.c-warn { "锁定至 " (beijing_time(until)) } }
        @else { span.c-tag.c-on { "正常" } }
    }
}

fn page(s: &WebState, staff: &ConsoleStaff, members: &[StaffSummary], notice: Option<String>, draft: Draft) -> Markup {
    let csrf = &staff.csrf;
    let body = html! {
        @if let Some(n) = notice { p.c-ok role="status" { (n) } }
        section.c-card {
            h2 { "工作人员" }
            table.c-table id="staff-list" {
                thead { tr { th { "用户名" } th { "角色" } th { "动态验证码" } th { "状态" } th { "创建时间" } th { "操作" } } }
                tbody {
                    @for m in members {
                        tr data-name=(m.name) {
                            td { code { (m.name) } }
                            td { (m.role.title()) }
                            td { @if m.totp_enrolled { "已绑定" } @else { span.c-muted { "未绑定" } } }
                            td { (status_of_member(m)) }
                            td { (beijing_time(m.created_at)) }
                            td.c-actions {
                                @if m.name != staff.member.name {
                                    @if m.disabled {
                                        form method="post" action={ "/console/staff/" (m.name) "/enable" } {
                                            (csrf_field(csrf)) button.c-btn.c-small type="submit" { "启用" }
                                        }
                                    } @else {
                                        form method="post" action={ "/console/staff/" (m.name) "/disable" } {
                                            (csrf_field(csrf)) button.c-btn.c-small.c-danger type="submit" { "停用" }
                                        }
                                    }
                                }
                                @if m.totp_enrolled {
                                    form method="post" action={ "/console/staff/" (m.name) "/reset-totp" } {
                                        (csrf_field(csrf)) button.c-btn.c-small type="submit" { "重置动态验证码" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.c-card {
            h2 { "添加工作人员" }
            form.c-form.c-wide method="post" action="/console/staff" id="add-staff" {
                (csrf_field(csrf))
                @if let Some(e) = &draft.error { p.c-error role="alert" { (e) } }
                label {
                    span { "用户名" }
                    input type="text" name="name" value=(draft.name) autocomplete="off" autocapitalize="none" spellcheck="false" required pattern="[a-z][a-z0-9._\\-]{2,31}";
                    small.c-muted { "3至32个字符:小写字母、数字、点、下划线、连字符,以字母开头" }
                }
                label {
                    span { "角色" }
                    select name="role" required {
                        @for r in Role::ALL {
                            option value=(r.code()) selected[draft.role == r.code()] { (r.title()) }
                        }
                    }
                }
                label { span { "初始密码" } input type="password" name="password" autocomplete="new-password" minlength="12" required; small.c-muted { "至少12个字符" } }
                label { span { "再次输入密码" } input type="password" name="password_again" autocomplete="new-password" minlength="12" required; }
                button.c-btn.c-primary type="submit" { "添加" }
                p.c-muted { "新成员首次登录时绑定手机身份验证器。系统管理员不能审核、制证、发货或开票(职责分离)。" }
            }
        }
    };
    console_layout(s, &staff.member, "人员管理", NAV, body)
}

async fn list(State(s): State<WebState>, staff: ConsoleStaff, Query(done): Query<Done>) -> Response {
    match s.app.list_staff(&staff.member).await {
        Ok(members) => page(&s, &staff, &members, notice(&done), Draft::default()).into_response(),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

fn done(what: &str, name: &str) -> Response {
    Redirect::to(&format!("/console/staff?ok={what}&name={}", urlencode(name))).into_response()
}

async fn add(State(s): State<WebState>, staff: ConsoleStaff, CsrfForm(f): CsrfForm<AddForm>) -> Response {
    let result = match Role::from_code(&f.role) {
        None => Err(AppError::invalid("invalid_role", "请选择角色")),
        Some(_) if f.password != f.password_again => {
            Err(AppError::invalid("password_mismatch", "两次输入的密码不一致"))
        }
        Some(role) => s.app.add_staff_as(&staff.member, &f.name, role, &f.password).await,
    };
    match result {
        Ok(added) => done("added", added.name.as_str()),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let members = match s.app.list_staff(&staff.member).await {
                Ok(m) => m,
                Err(e) => return console_error(&s, Some(&staff.member), e),
            };
            let draft = Draft { name: f.name.trim().to_owned(), role: f.role, error: Some(e.to_string()) };
            (status_of(&e), page(&s, &staff, &members, None, draft)).into_response()
        }
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn disable(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(name): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.set_staff_disabled(&staff.member, &name, true).await {
        Ok(()) => done("disabled", &name),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn enable(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(name): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.set_staff_disabled(&staff.member, &name, false).await {
        Ok(()) => done("enabled", &name),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}

async fn reset_totp(
    State(s): State<WebState>,
    staff: ConsoleStaff,
    Path(name): Path<String>,
    _form: CsrfForm<super::login::Empty>,
) -> Response {
    match s.app.reset_staff_totp(&staff.member, &name).await {
        Ok(()) => done("reset", &name),
        Err(e) => console_error(&s, Some(&staff.member), e),
    }
}
