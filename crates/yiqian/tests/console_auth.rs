//! Staff login to the console and its shell, over HTTP on SQLite and (when configured)
//! PostgreSQL, with the service's clock moved by hand so TOTP codes are exact: password and
//! authenticator enrolment, code login, wrong and replayed codes, lockout, session limits,
//! CSRF, what each role may open, staff management on the page, the audit log, and the
//! `yiqian admin` commands.

mod common;

use chrono::Duration;
use common::*;
use reqwest::StatusCode;
use yiqian_store::audit::AuditVerdict;

async fn audit_text(h: &Harness) -> String {
    let entries = h.server.app.store().audit_entries(1, 10_000).await.unwrap();
    entries.iter().map(|e| format!("{} {} {} {}\n", e.actor, e.action, e.subject, e.detail)).collect()
}

async fn audit_intact(h: &Harness) {
    match h.server.app.store().verify_audit().await.unwrap() {
        AuditVerdict::Intact { .. } => {}
        broken => panic!("audit chain broken on {:?}: {broken:?}", h.backend),
    }
}

/// The pending-login cookie and the CSRF token of its code page.
async fn to_code_page(h: &Harness, name: &str, password: &str, page: &str) -> (String, String) {
    let r = h.console_password(name, password).await;
    r.assert_redirect(page);
    let pending = r.cookie.clone().expect("a pending-login cookie");
    let p = h.console_get(Some(&pending), page).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    (pending, p.csrf())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_login_enrols_the_authenticator_then_codes_log_in() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        h.server.app.add_staff("admin", yiqian_app::staff::Role::Admin, CONSOLE_PASSWORD).await.unwrap();

        // Password first: a short pending login, and the enrolment page with the QR code.
        let r = h.console_password("admin", CONSOLE_PASSWORD).await;
        r.assert_redirect("/console/enrol");
        let set_cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
        for attr in ["Path=/console", "HttpOnly", "SameSite=Strict", "Max-Age=300"] {
            assert!(set_cookie.contains(attr), "{set_cookie}");
        }
        assert!(!set_cookie.contains("Secure"), "plain http in tests: {set_cookie}");
        let pending = r.cookie.clone().unwrap();
        let page = h.console_get(Some(&pending), "/console/enrol").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<svg"), "inline QR code");
        assert!(page.body.contains("绑定动态验证码"));
        let secret = html_value(&page.body, "id=\"totp-secret\">", '<').unwrap();
        assert_eq!(secret.len(), 32, "160-bit secret in base32: {secret}");
        // A pending login opens no page of the console.
        h.console_get(Some(&pending), "/console/audit").await.assert_redirect("/console/login?next=");

        // A wrong first code keeps the enrolment page; the right one logs in.
        let csrf = page.csrf();
        let r = h.console_post(Some(&pending), "/console/enrol", &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("动态验证码错误"), "{}", r.body);
        assert!(r.body.contains(&secret), "the same secret again");
        let code = h.totp_now(&secret);
        let r = h
            .console_post(Some(&pending), "/console/enrol", &[("csrf", &csrf), ("code", &code), ("next", "/console")])
            .await;
        r.assert_redirect("/console");
        let token = r.cookie.clone().unwrap();
        assert_ne!(token, pending, "a new token for the full session");
        let full_cookie = r.headers.get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(full_cookie.contains("Max-Age=28800") && full_cookie.contains("SameSite=Strict"), "{full_cookie}");
        // The pending token is spent.
        let again = h.console_post(Some(&pending), "/console/enrol", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        assert!(again.body.contains("登录已超时"), "{}", again.body);

        // /console leads the administrator to the first section of the role: the audit log.
        h.console_get(Some(&token), "/console").await.assert_redirect("/console/audit");
        let audit = h.console_get(Some(&token), "/console/audit").await;
        assert_eq!(audit.status, StatusCode::OK);
        assert_eq!(audit.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(audit.headers.get("x-frame-options").unwrap(), "DENY");
        assert!(audit.body.contains("人员管理") && audit.body.contains("审计日志"));
        for other in ["/console/review", "/console/fulfilment", "/console/invoices", "/console/counter"] {
            assert!(!audit.body.contains(&format!("href=\"{other}\"")), "admin sees no {other}");
        }

        // Logging out ends the session.
        let admin = ConsoleClient {
            base: h.base.clone(),
            http: h.http.clone(),
            name: "admin".into(),
            password: CONSOLE_PASSWORD.into(),
            csrf: h.console_get(Some(&token), "/console/logout").await.csrf(),
            token: token.clone(),
            totp_secret: secret.clone(),
        };
        let out = admin.logout().await;
        out.assert_redirect("/console/login");
        assert_eq!(out.cookie.as_deref(), Some(""), "the cookie is removed");
        admin.get("/console/staff").await.assert_redirect("/console/login?next=/console/staff");

        // The next login asks for a code (no enrolment); the same code cannot log in twice.
        let (pending, csrf) = to_code_page(&h, "admin", CONSOLE_PASSWORD, "/console/login/totp").await;
        let reused = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        assert_eq!(reused.status, StatusCode::BAD_REQUEST);
        assert!(reused.body.contains("已使用"), "{}", reused.body);
        h.advance(Duration::seconds(30));
        let again = admin.login_again(&h).await;
        assert_eq!(again.get("/console/staff").await.status, StatusCode::OK);

        let audit = audit_text(&h).await;
        for action in ["staff.added", "staff.totp_enrolled", "staff.login ", "staff.logout", "staff.login_failed"] {
            assert!(audit.contains(action), "{action} audited: {audit}");
        }
        for secret_text in [CONSOLE_PASSWORD, secret.as_str(), code.as_str(), token.as_str(), pending.as_str()] {
            assert!(!audit.contains(secret_text), "no secret in the audit trail: {audit}");
        }
        assert!(audit.contains("staff:admin staff.login staff:admin"), "{audit}");
        audit_intact(&h).await;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_and_unknown_names_get_the_same_answer() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        console_login(&h, "li.wei", "reviewer").await;
        let wrong = h.console_password("li.wei", "not-the-password").await;
        let unknown = h.console_password("nobody", CONSOLE_PASSWORD).await;
        let invalid = h.console_password("Not A Name", CONSOLE_PASSWORD).await;
        for r in [&wrong, &unknown, &invalid] {
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
            assert!(r.body.contains("用户名或密码错误"), "{}", r.body);
            assert!(r.cookie.as_deref().unwrap_or("").is_empty(), "no pending login");
        }
        assert_eq!(
            wrong.body.replace("li.wei", "NAME"),
            unknown.body.replace("nobody", "NAME"),
            "the same page for both"
        );
        let audit = audit_text(&h).await;
        assert!(audit.contains("staff.login_failed staff:li.wei"), "{audit}");
        assert!(audit.contains("staff.login_failed staff:?"), "{audit}");
        assert!(!audit.contains("nobody") && !audit.contains("not-the-password"), "{audit}");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_and_replayed_codes_are_refused() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let staff = console_login(&h, "li.wei", "reviewer").await;
        staff.logout().await;
        // Enrolled at step S; now it is S+2.
        h.advance(Duration::seconds(60));

        let (pending, csrf) = to_code_page(&h, "li.wei", CONSOLE_PASSWORD, "/console/login/totp").await;
        // A wrong code, a code of two steps ago, a code without the CSRF token.
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", "123456")]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("动态验证码错误"), "{}", r.body);
        let old = yiqian_app::staff::totp_code(&staff.totp_secret, h.server.app.now() - Duration::seconds(90)).unwrap();
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &old)]).await;
        assert!(r.body.contains("动态验证码错误"), "outside the ±1 step window: {}", r.body);
        let code = h.totp_now(&staff.totp_secret);
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("code", &code)]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token");
        // The code of the previous step (S+1) still works, for clock skew …
        let prev =
            yiqian_app::staff::totp_code(&staff.totp_secret, h.server.app.now() - Duration::seconds(30)).unwrap();
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &prev)]).await;
        r.assert_redirect("/console");
        // … once; the current code (S+2) works once too; after that only the next step's.
        let (pending, csrf) = to_code_page(&h, "li.wei", CONSOLE_PASSWORD, "/console/login/totp").await;
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &prev)]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.body.contains("该动态验证码已使用"), "{}", r.body);
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        r.assert_redirect("/console");
        let (pending, csrf) = to_code_page(&h, "li.wei", CONSOLE_PASSWORD, "/console/login/totp").await;
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        assert!(r.body.contains("该动态验证码已使用"), "{}", r.body);
        h.advance(Duration::seconds(30));
        let code = h.totp_now(&staff.totp_secret);
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        r.assert_redirect("/console");
        let audit = audit_text(&h).await;
        assert!(!audit.contains(&code) && !audit.contains(&prev), "no codes in the audit trail");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_failures_lock_the_account_for_fifteen_minutes() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let staff = console_login(&h, "li.wei", "reviewer").await;
        for _ in 0..4 {
            let r = h.console_password("li.wei", "wrong-password-123").await;
            assert!(r.body.contains("用户名或密码错误"), "{}", r.body);
        }
        let r = h.console_password("li.wei", "wrong-password-123").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("账号已锁定,请15分钟后再试"), "{}", r.body);
        // Locked: even the right password is refused, and the open session has ended.
        let r = h.console_password("li.wei", CONSOLE_PASSWORD).await;
        assert!(r.body.contains("账号已锁定"), "{}", r.body);
        staff.get("/console/logout").await.assert_redirect("/console/login");
        h.advance(Duration::minutes(10));
        let r = h.console_password("li.wei", CONSOLE_PASSWORD).await;
        assert!(r.body.contains("账号已锁定,请5分钟后再试"), "{}", r.body);
        h.advance(Duration::minutes(5));

        // After the lock the password works; wrong codes count as well.
        let (pending, csrf) = to_code_page(&h, "li.wei", CONSOLE_PASSWORD, "/console/login/totp").await;
        for _ in 0..4 {
            let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", "000000")]).await;
            assert!(r.body.contains("动态验证码错误"), "{}", r.body);
        }
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", "000000")]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("账号已锁定,请15分钟后再试"), "{}", r.body);
        let code = h.totp_now(&staff.totp_secret);
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        assert!(!r.status.is_redirection() || r.location.as_deref() != Some("/console"), "locked: {}", r.body);
        h.advance(Duration::minutes(15));
        staff.login_again(&h).await;

        let audit = audit_text(&h).await;
        assert_eq!(audit.matches("staff.locked").count(), 2, "{audit}");
        audit_intact(&h).await;
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_posts_need_the_sessions_csrf_token() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let admin = console_login(&h, "admin", "admin").await;
        let form = [
            ("name", "li.wei"),
            ("role", "reviewer"),
            ("password", CONSOLE_PASSWORD),
            ("password_again", CONSOLE_PASSWORD),
        ];
        let missing = admin.post_form_raw("/console/staff", &form).await;
        let mut wrong_form = vec![("csrf", "0123456789abcdef")];
        wrong_form.extend_from_slice(&form);
        let wrong = admin.post_form_raw("/console/staff", &wrong_form).await;
        // Another session's token is wrong too.
        let other = console_login(&h, "auditor", "auditor").await;
        let mut foreign = vec![("csrf", other.csrf.as_str())];
        foreign.extend_from_slice(&form);
        let foreign = admin.post_form_raw("/console/staff", &foreign).await;
        for r in [&missing, &wrong, &foreign] {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            assert!(r.body.contains("请求已失效"), "{}", r.body);
            assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
        }
        let logout = admin.post_form_raw("/console/logout", &[]).await;
        assert_eq!(logout.status, StatusCode::FORBIDDEN, "logout needs the token too");
        let list = admin.get("/console/staff").await;
        assert!(!list.body.contains("li.wei"), "nothing was added");

        let ok = admin.post_form("/console/staff", &form).await;
        ok.assert_redirect("/console/staff?ok=added");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_opens_only_its_sections() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let reviewer = console_login(&h, "li.wei", "reviewer").await;
        reviewer.get("/console").await.assert_redirect("/console/review");
        for path in ["/console/staff", "/console/audit", "/console/audit?verify=1"] {
            let r = reviewer.get(path).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
            assert!(r.body.contains("您的角色无权访问此页面"), "{}", r.body);
            assert!(r.body.contains("href=\"/console/review\""), "the reviewer's own navigation");
            assert!(!r.body.contains("href=\"/console/staff\""), "no 人员管理 in a reviewer's navigation");
        }
        let form = [
            ("name", "mallory"),
            ("role", "admin"),
            ("password", "mallory-password-1"),
            ("password_again", "mallory-password-1"),
        ];
        let r = reviewer.post_form("/console/staff", &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = reviewer.post_form("/console/staff/li.wei/reset-totp", &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(h.server.app.operator_list_staff().await.unwrap().iter().all(|s| s.name.as_str() != "mallory"));

        let fulfilment = console_login(&h, "zhang.san", "fulfilment").await;
        fulfilment.get("/console").await.assert_redirect("/console/fulfilment");
        let finance = console_login(&h, "qian.cai", "finance").await;
        finance.get("/console").await.assert_redirect("/console/invoices");
        let counter = console_login(&h, "gui.tai", "counter").await;
        counter.get("/console").await.assert_redirect("/console/counter");
        let auditor = console_login(&h, "shen.ji", "auditor").await;
        auditor.get("/console").await.assert_redirect("/console/audit");
        let page = auditor.get("/console/audit").await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains("href=\"/console/staff\""));
        assert_eq!(auditor.get("/console/staff").await.status, StatusCode::FORBIDDEN);

        // Nobody logged in: the login page, remembering where they wanted to go.
        h.console_get(None, "/console/audit?before=5")
            .await
            .assert_redirect("/console/login?next=/console/audit%3Fbefore%3D5");
        let login = h.console_get(None, "/console/login?next=/console/audit").await;
        assert!(login.body.contains("value=\"/console/audit\""), "{}", login.body);
        let evil = h.console_get(None, "/console/login?next=https://evil.example/").await;
        assert!(evil.body.contains("name=\"next\" value=\"/console\""), "{}", evil.body);
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_adds_disables_and_resets_staff_on_the_page() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let admin = console_login(&h, "admin", "admin").await;
        let add = |name: &'static str, password: &'static str, again: &'static str| {
            let admin = &admin;
            async move {
                admin
                    .post_form(
                        "/console/staff",
                        &[("name", name), ("role", "reviewer"), ("password", password), ("password_again", again)],
                    )
                    .await
            }
        };
        let r = add("li.wei", "reviewer-password-1", "reviewer-password-1").await;
        r.assert_redirect("/console/staff?ok=added");
        let list = admin.get(r.location.as_deref().unwrap()).await;
        assert!(list.body.contains("已添加 li.wei"), "{}", list.body);
        assert!(list.body.contains("受理审核员"));

        let dup = add("li.wei", "reviewer-password-1", "reviewer-password-1").await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        assert!(dup.body.contains("用户名 li.wei 已存在"), "{}", dup.body);
        let short = add("wang.wu", "short-pw", "short-pw").await;
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        assert!(short.body.contains("密码至少需要12个字符"), "{}", short.body);
        assert!(short.body.contains("value=\"wang.wu\""), "the name is kept");
        assert!(!short.body.contains("short-pw"), "the password is not");
        let mismatch = add("wang.wu", "reviewer-password-1", "reviewer-password-2").await;
        assert!(mismatch.body.contains("两次输入的密码不一致"), "{}", mismatch.body);
        let bad_name = add("Wang Wu", "reviewer-password-1", "reviewer-password-1").await;
        assert!(bad_name.body.contains("用户名只能包含"), "{}", bad_name.body);

        // The new reviewer logs in; the admin disables them and their session ends.
        let reviewer = console_first_login(&h, "li.wei", "reviewer-password-1").await;
        reviewer.get("/console").await.assert_redirect("/console/review");
        admin.post_form("/console/staff/li.wei/disable", &[]).await.assert_redirect("/console/staff?ok=disabled");
        reviewer.get("/console").await.assert_redirect("/console/login");
        let r = h.console_password("li.wei", "reviewer-password-1").await;
        assert!(r.body.contains("账号已停用"), "{}", r.body);
        let me = admin.post_form("/console/staff/admin/disable", &[]).await;
        assert!(me.body.contains("不能停用自己的账号"), "{}", me.body);
        admin.post_form("/console/staff/li.wei/enable", &[]).await.assert_redirect("/console/staff?ok=enabled");

        // A lost phone: the admin resets the authenticator; the next login enrols a new one.
        h.advance(Duration::seconds(30));
        admin.post_form("/console/staff/li.wei/reset-totp", &[]).await.assert_redirect("/console/staff?ok=reset");
        let again = console_first_login(&h, "li.wei", "reviewer-password-1").await;
        assert_ne!(again.totp_secret, reviewer.totp_secret, "a new secret");

        let audit = audit_text(&h).await;
        for line in [
            "staff:admin staff.added staff:li.wei",
            "staff:admin staff.disabled staff:li.wei",
            "staff:admin staff.enabled staff:li.wei",
            "staff:admin staff.totp_reset staff:li.wei",
            "system staff.added staff:admin",
        ] {
            assert!(audit.contains(line), "{line}: {audit}");
        }
        assert!(!audit.contains("reviewer-password"), "{audit}");
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_end_when_idle_and_after_eight_hours() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let admin = console_login(&h, "admin", "admin").await;
        // Activity keeps a session alive past thirty minutes …
        for _ in 0..3 {
            h.advance(Duration::minutes(20));
            assert_eq!(admin.get("/console/staff").await.status, StatusCode::OK);
        }
        // … but thirty idle minutes end it.
        h.advance(Duration::minutes(31));
        admin.get("/console/staff").await.assert_redirect("/console/login");

        h.advance(Duration::seconds(30));
        let admin = admin.login_again(&h).await;
        for _ in 0..23 {
            h.advance(Duration::minutes(20));
            assert_eq!(admin.get("/console/staff").await.status, StatusCode::OK);
        }
        h.advance(Duration::minutes(21));
        admin.get("/console/staff").await.assert_redirect("/console/login");

        // A pending login lasts five minutes.
        h.advance(Duration::seconds(30));
        let (pending, csrf) = to_code_page(&h, "admin", CONSOLE_PASSWORD, "/console/login/totp").await;
        h.advance(Duration::minutes(6));
        let code = h.totp_now(&admin.totp_secret);
        let r = h.console_post(Some(&pending), "/console/login/totp", &[("csrf", &csrf), ("code", &code)]).await;
        assert!(r.body.contains("登录已超时"), "{}", r.body);
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_page_lists_newest_first_pages_and_verifies_the_chain() {
    for backend in backends() {
        let h = start_with(backend, true).await;
        let auditor = console_login(&h, "shen.ji", "auditor").await;
        for i in 0..60 {
            let subject = format!("staff:staff{i:02}");
            let entry = yiqian_store::audit::NewAuditEntry {
                actor: "system",
                action: "staff.added",
                subject: &subject,
                detail: serde_json::json!({"role": "counter"}),
            };
            let mut tx = h.server.app.store().begin().await.unwrap();
            tx.audit(entry, h.server.app.now()).await.unwrap();
            tx.commit().await.unwrap();
        }
        let page = auditor.get("/console/audit").await;
        assert_eq!(page.status, StatusCode::OK);
        let first = page.body.find("staff:staff59").expect("the newest entry");
        let later = page.body.find("staff:staff58").expect("the one before");
        assert!(first < later, "newest first");
        let before = html_value(&page.body, "href=\"/console/audit?before=", '"').expect("a link to older entries");
        let page2 = auditor.get(&format!("/console/audit?before={before}")).await;
        assert_eq!(page2.status, StatusCode::OK);
        assert!(page2.body.contains("staff.totp_enrolled") || page2.body.contains("staff:shen.ji"), "{}", page2.body);
        assert!(!page2.body.contains("staff:staff59"));

        let verified = auditor.get("/console/audit?verify=1").await;
        assert!(verified.body.contains("审计链完整"), "{}", verified.body);
        h.server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yiqian_admin_add_creates_staff_who_log_in_to_the_console() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let envs: Vec<(&str, String)> = match backend {
            yiqian_store::Backend::Sqlite => vec![],
            yiqian_store::Backend::Postgres => {
                vec![("YIQIAN_DATABASE_URL", yiqian_store::testing::fresh_postgres_database().await)]
            }
        };
        let add = |args: &[&str], stdin: &str| run_yiqian_with_stdin(&data, &envs, args, stdin);

        let (ok, out) = add(&["admin", "add", "ann", "--role", "admin", "--password-stdin"], "admin-password-1\n");
        assert!(ok, "{out}");
        assert!(out.contains("staff ann added as admin; TOTP is enrolled at first login"), "{out}");
        assert!(!out.contains("admin-password-1"), "{out}");

        for (args, stdin, expect) in [
            (&["admin", "add", "bob", "--role", "admin", "--password-stdin"][..], "\n", "no password"),
            (&["admin", "add", "bob", "--role", "admin", "--password-stdin"][..], "short\n", "too short"),
            (&["admin", "add", "bob", "--role", "admin"][..], "bob-password-1\n", "--password-stdin"),
            (&["admin", "add", "bob", "--role", "root", "--password-stdin"][..], "bob-password-1\n", "unknown role"),
            (&["admin", "add", "ann", "--role", "auditor", "--password-stdin"][..], "ann-password-12\n", "已存在"),
        ] {
            let (ok, out) = add(args, stdin);
            assert!(!ok, "{args:?} should fail: {out}");
            assert!(out.contains(expect), "{args:?}: {out}");
        }
        let (ok, out) =
            add(&["admin", "add", "shen.ji", "--role", "auditor", "--password-stdin"], "auditor-password\r\n");
        assert!(ok, "{out}");

        let (ok, out) = run_yiqian(&data, &envs, &["admin", "list"]);
        assert!(ok, "{out}");
        let lines: Vec<&str> = out.lines().filter(|l| l.contains('\t')).collect();
        assert_eq!(lines, ["ann\tadmin\ttotp not enrolled\tactive", "shen.ji\tauditor\ttotp not enrolled\tactive"]);

        // The service on the same data directory: the operator's administrator logs in.
        let url = envs.first().map(|(_, u)| u.clone()).unwrap_or_default();
        let h = start_configured(backend, true, |c| {
            c.data_dir = data.clone();
            c.database_url = url;
        })
        .await;
        let ann = console_first_login(&h, "ann", "admin-password-1").await;
        assert_eq!(ann.get("/console/staff").await.status, StatusCode::OK);
        console_first_login(&h, "shen.ji", "auditor-password").await;
        h.server.stop().await;
    }
}
