//! The applicant's journey in a real browser: headless Chromium, driven over WebDriver, on a
//! phone-sized screen with a fake camera, walks the pages from 办理 to 受理成功, and later
//! activates the UKEY from its QR code, by clicking the real buttons, so the server-rendered
//! pages and `/static/app.js` are tested together.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian `chromium chromium-driver`).
//! Without them the test says so and passes, unless `YIQIAN_REQUIRE_BROWSER=1` (CI).
//! Screenshots land in `target/browser-screenshots/`.

mod common;

use base64::Engine;
use common::*;
use fantoccini::actions::{InputSource, PointerAction, TouchActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use yiqian_store::Backend;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing on a page may take to appear.
const WAIT: Duration = Duration::from_secs(20);
/// The liveness page records 6 s and then uploads.
const LIVENESS_WAIT: Duration = Duration::from_secs(30);
/// WeChat's browser on an iPhone.
const WECHAT_IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
     (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322d) NetType/WIFI Language/zh_CN";
const PHONE: &str = "13800138000";

/// Whether Chromium and chromedriver are there; without them a test is skipped, unless
/// `YIQIAN_REQUIRE_BROWSER=1` makes that a failure.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var("YIQIAN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(!required, "YIQIAN_REQUIRE_BROWSER=1 but {missing:?} missing: apt-get install chromium chromium-driver");
    println!("browser test skipped: {missing:?} not installed (apt-get install chromium chromium-driver)");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applicant_walks_from_apply_to_accepted_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let h = start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let camera = work.path().join("camera.y4m");
    std::fs::write(&camera, fake_camera_y4m()).unwrap();

    let driver = Driver::start(work.path());
    let client = driver.session(&work.path().join("profile"), &camera).await;
    let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir() };
    let _ = std::fs::remove_file(b.shots.join("failure.png"));
    match tokio::time::timeout(Duration::from_secs(150), walk(&h, &b, work.path(), false)).await {
        Ok(_) => {}
        Err(_) => b.fail("the whole walk took longer than 150 s").await,
    }
    let _ = client.close().await;
    drop(driver);
    h.server.stop().await;
    println!("browser walk passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// The walk from 首页 to 受理成功 and a look at the order afterwards (on a `slow_line`, the
/// network check must say so); returns the time from the home page to 受理成功 on the screen.
async fn walk(h: &Harness, b: &Browser, work: &Path, slow_line: bool) -> Duration {
    // The ID card photos: real JPEGs drawn by the browser itself.
    b.goto("/").await;
    let front = work.join("front.jpg");
    let back = work.join("back.jpg");
    std::fs::write(&front, b.canvas_jpeg("#e8f0fa", "居民身份证 人像面").await).unwrap();
    std::fs::write(&back, b.canvas_jpeg("#faf0e0", "中华人民共和国 国徽面").await).unwrap();
    b.goto("/").await;
    let from_home = Instant::now();

    // 首页 → 办理 → the agreement.
    b.click("#apply").await;
    b.wait_path("the agreement page", |p| p == "/apply").await;
    let row = b
        .c
        .execute("return document.querySelector('#accepted').closest('.check').getBoundingClientRect().height;", vec![])
        .await
        .unwrap();
    assert!(row.as_f64().unwrap() >= 44.0, "the consent row is a 44 px tap target: {row}");
    b.screenshot("apply.png").await;
    b.click("#accepted").await;
    b.click("#apply-submit").await;

    // Login with an SMS code.
    b.wait_path("the login page", |p| p.starts_with("/login")).await;
    let label =
        b.c.execute("return document.querySelector('label[for=code]').getBoundingClientRect().width;", vec![])
            .await
            .unwrap();
    assert!(label.as_f64().unwrap() > 40.0, "验证码 on one line, not a character per line: {label}");
    b.screenshot("login.png").await;
    let seen = h.sms_ids(PHONE).await;
    b.type_into("#phone", PHONE).await;
    b.click("#send-code").await;
    let code = h.new_code(PHONE, &seen).await;
    b.type_into("#code", &code).await;
    b.click("#login-submit").await;

    // The agreement was ticked before logging in: the login makes the order, straight to paying.
    let pay = b.wait_path("the pay page after login", |p| p.starts_with("/orders/") && p.ends_with("/pay")).await;
    let id = pay.trim_start_matches("/orders/").trim_end_matches("/pay").to_owned();
    let order = |tail: &str| format!("/orders/{id}/{tail}");
    b.click("#pay-submit").await;
    b.wait_path("the sandbox cashier", |p| p.starts_with("/sandbox/cashier")).await;
    b.click("#cashier-confirm").await;

    // The paying page polls until the payment is confirmed, then goes to the first step.
    let phone_page = order("phone");
    b.wait_path("the phone step after paying", |p| p == phone_page).await;
    b.screenshot("step-phone.png").await;
    // The phone just proven at login is offered: 使用此号码 binds it without a second SMS.
    assert_eq!(b.visible("#login-phone").await.text().await.unwrap(), "138****8000");
    assert!(!b.find("#phone").await.is_displayed().await.unwrap(), "the other-number form waits folded");
    let seen = h.sms_ids(PHONE).await;
    b.click("#use-login-phone").await;

    let prepare = order("prepare");
    b.wait_path("the prepare page", |p| p == prepare).await;
    assert_eq!(h.sms_ids(PHONE).await, seen, "binding the login's phone sent no SMS");
    b.screenshot("step-prepare.png").await;
    // The network and device check: the server and the upload speed over loopback, the fake
    // camera and microphone granted, the light of one camera frame measured; 开始 stays there.
    b.c.execute("document.querySelector('#network-check').scrollIntoView();", vec![]).await.unwrap();
    b.click("#network-check-run").await;
    let checks = b
        .poll("every row of the network check to finish", || async move {
            let script = r#"
                var s = document.querySelector('#network-check');
                if (!s || s.getAttribute('data-checked') !== 'all') return null;
                var out = {};
                var rows = s.querySelectorAll('[data-check]');
                for (var i = 0; i < rows.length; i++) {
                    var r = rows[i];
                    if (r.classList.contains('hidden')) continue;
                    var state = r.getAttribute('data-state');
                    if (state === 'idle' || state === 'running') return null;
                    out[r.getAttribute('data-check')] = {
                        state: state,
                        word: r.querySelector('.check-state').textContent,
                        detail: r.querySelector('.check-detail').textContent
                    };
                }
                return out;
            "#;
            let v = b.c.execute(script, vec![]).await.ok()?;
            (!v.is_null()).then_some(v)
        })
        .await;
    println!("network check: {checks}");
    // On a throttled line the check says so (and how long the face video would take).
    let upload_word = if slow_line { "网速较慢" } else { "正常" };
    for (row, word) in [("server", "正常"), ("upload", upload_word), ("camera", "正常")] {
        assert_eq!(checks[row]["word"], word, "the {row} row: {checks}");
    }
    assert!(checks["upload"]["detail"].as_str().unwrap().contains("Mbps"), "the upload speed is shown: {checks}");
    assert!(matches!(checks["light"]["state"].as_str(), Some("ok" | "warn")), "the light was measured: {checks}");
    let layout =
        b.c.execute(
            "return {overflow: document.documentElement.scrollWidth - window.innerWidth, \
             video: document.querySelectorAll('#network-check video').length, \
             rerun: document.querySelector('#network-check-run').textContent, \
             button: document.querySelector('#network-check-run').getBoundingClientRect().height};",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(layout["overflow"], 0, "nothing wider than the screen: {layout}");
    assert_eq!(layout["video"], 0, "the camera is closed after the check: {layout}");
    assert_eq!(layout["rerun"], "重新检测", "{layout}");
    assert!(layout["button"].as_f64().unwrap() >= 44.0, "重新检测 is a 44 px tap target: {layout}");
    b.screenshot("step-prepare-check.png").await;
    b.click("#start").await;

    // ID card: choose both photos, 识别证件, check the fields, 确认上传.
    let id_card = order("id-card");
    b.wait_path("the ID card page", |p| p == id_card).await;
    b.screenshot("step-id-card.png").await;
    // A file the phone cannot read as a photo: told beside that photo, naming its side.
    let broken = work.join("broken.jpg");
    std::fs::write(&broken, b"not a photo at all").unwrap();
    b.find("#photo-front").await.send_keys(broken.to_str().unwrap()).await.unwrap();
    let beside = b.visible(".photo-slot.invalid + .field-error").await.text().await.unwrap();
    assert!(beside.starts_with("人像面:无法读取该图片"), "{beside}");
    b.screenshot("step-id-card-photo-error.png").await;
    b.find("#photo-front").await.send_keys(front.to_str().unwrap()).await.unwrap();
    b.find("#photo-back").await.send_keys(back.to_str().unwrap()).await.unwrap();
    b.poll("the photo's mark to clear", || async move {
        b.c.find(Locator::Css(".photo-slot.invalid")).await.is_err().then_some(())
    })
    .await;
    b.click("#photos-upload").await;
    b.visible("#idcard-fields").await;
    // The sandbox reads nothing: the page says the applicant types what is on the card.
    let manual = b.visible("[data-idcard-manual]").await.text().await.unwrap();
    assert!(manual.contains("对照身份证原件"), "{manual}");
    b.c.execute("document.querySelector('#idcard-fields').scrollIntoView();", vec![]).await.unwrap();
    b.screenshot("step-id-card-fields.png").await;
    b.type_into("#name", "张三").await;
    b.visible("#sex").await.select_by_value("男").await.unwrap();
    b.type_into("#ethnicity", "汉").await;
    b.type_into("#birth_date", "1990-03-07").await;
    b.type_into("#address", "北京市东城区景山前街4号").await;
    // A mistyped ID number (its check digit) is told beside that field, which takes the focus.
    b.type_into("#id_number", "110101199003074478").await;
    b.type_into("#authority", "北京市公安局东城分局").await;
    b.type_into("#validity", "2020.01.01-2040.01.01").await;
    b.click("#idcard-confirm").await;
    let beside = b.visible("#id_number + .field-error, #id_number ~ .field-error").await.text().await.unwrap();
    assert!(beside.contains("身份证号码"), "the message beside the field: {beside}");
    let marked = b
        .c
        .execute(
            "var e = document.activeElement; return [e.id, e.getAttribute('aria-invalid'),              Array.prototype.map.call(document.querySelectorAll('#idcard-fields > .form-error'),              function (x) { return x.textContent; }).join('')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(marked, json!(["id_number", "true", ""]), "focus on the marked field, nothing under the form");
    b.screenshot("step-id-card-field-error.png").await;
    b.type_into("#id_number", "110101199003074477").await;
    let cleared = b.c.execute("return document.querySelector('#id_number').getAttribute('aria-invalid');", vec![]);
    assert_eq!(cleared.await.unwrap(), Value::Null, "typing clears the mark");
    b.click("#idcard-confirm").await;

    // Liveness: the four digits, then a recording from the fake camera that stops by itself.
    let liveness = order("liveness");
    b.wait_path("the liveness page", |p| p == liveness).await;
    b.screenshot("step-liveness.png").await;
    b.click("#liveness-start").await;
    let digits = b
        .poll("four digits in #digits", || async move {
            let t = b.c.find(Locator::Css("#digits")).await.ok()?.text().await.ok()?;
            let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            (t.len() == 4 && t.chars().all(|c| c.is_ascii_digit())).then_some(t)
        })
        .await;
    println!("liveness digits: {digits}");
    b.click("#liveness-record").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.screenshot("liveness-recording.png").await;
    let signature = order("signature");
    b.wait_path_within("the signature page after the recording uploads", LIVENESS_WAIT, |p| p == signature).await;
    b.screenshot("step-signature.png").await;

    // Signature: a finger stroke across the pad.
    let canvas = b.visible("#signature-canvas").await;
    b.c.execute("arguments[0].scrollIntoView({block: 'center'});", vec![serde_json::to_value(&canvas).unwrap()])
        .await
        .unwrap();
    let (_, _, w, _) = canvas.rectangle().await.unwrap();
    let mut finger = TouchActions::new("finger".into()).then(PointerAction::MoveToElement {
        element: canvas.clone(),
        duration: None,
        x: -(w / 3.0),
        y: 10.0,
    });
    finger = finger.then(PointerAction::Down { button: 0 });
    for i in 0..24 {
        let dy = if i % 6 < 3 { -6.0 } else { 6.0 };
        finger = finger.then(PointerAction::MoveBy { duration: Some(Duration::from_millis(16)), x: w / 36.0, y: dy });
    }
    // The finger rests before it lifts, as a hand does at the end of a signature: lifting it
    // while still moving makes Chromium take the stroke as a fling and swallow the next tap.
    finger = finger
        .then(PointerAction::Pause { duration: Duration::from_millis(150) })
        .then(PointerAction::Up { button: 0 });
    b.c.perform_actions(finger).await.unwrap();
    b.c.release_actions().await.unwrap();
    b.click("#signature-submit").await;

    // Address: cascading pickers, then 确定 submits the application.
    let address = order("address");
    b.wait_path("the address page", |p| p == address).await;
    b.screenshot("step-address.png").await;
    // Recipient and phone come prefilled from the ID card and the bound phone.
    let prefilled =
        |css: &'static str| async move { b.visible(css).await.prop("value").await.unwrap().unwrap_or_default() };
    assert_eq!(prefilled("#recipient").await, "张三");
    assert_eq!(prefilled("#addr-phone").await, PHONE);
    b.choose("#province", "440000").await;
    b.choose("#city", "440300").await;
    b.choose("#district", "440305").await;
    b.type_into("#street", "科技园南区1栋101室").await;
    b.click("#address-submit").await;

    let accepted = order("accepted");
    b.wait_path("受理成功", |p| p == accepted).await;
    let to_accepted = from_home.elapsed();
    let word = b.visible("#accepted").await.text().await.unwrap();
    assert_eq!(word, "受理成功");
    b.screenshot("accepted.png").await;
    b.click("#view-detail").await;
    let detail = format!("/orders/{id}");
    b.wait_path("the order page", |p| p == detail).await;
    let status = b.visible(".status-word").await.text().await.unwrap();
    assert_eq!(status, "已支付", "status word on the order page");

    // The server agrees: the application is submitted with every step done.
    let token = b.c.get_named_cookie("yiqian_session").await.expect("session cookie").value().to_owned();
    let o = h.order(&token, &id).await;
    assert_eq!(o["state"], "submitted", "{o}");
    assert_eq!(o["status_word"], "已支付");
    assert!(o["checklist"].as_array().unwrap().iter().all(|s| s["done"] == true), "{o}");
    let texts: Vec<&str> = o["history"].as_array().unwrap().iter().filter_map(|e| e["text"].as_str()).collect();
    assert!(texts.iter().any(|t| t.contains("受理成功")), "{texts:?}");

    // What the pages uploaded is what a phone would send: photos re-encoded by the page, a
    // recorded video, a signature with its strokes.
    let app = &h.server.app;
    let applicant = app.authenticate(&token).await.unwrap();
    let material = |key: &'static str| {
        let (applicant, id) = (applicant.clone(), id.clone());
        async move { app.saved_material(&applicant, &id, key).await.unwrap().unwrap_or_else(|| panic!("no {key} material")) }
    };
    let blob = |blob_id: Value| async move { app.store().get_blob(blob_id.as_str().unwrap()).await.unwrap() };
    let (info, photo) = blob(material("id_card").await["photos"]["front"].clone()).await;
    assert!(photo.starts_with(&[0xFF, 0xD8, 0xFF]), "{info:?}");
    assert_ne!(photo, std::fs::read(&front).unwrap(), "the page re-encodes the photo in a canvas");
    let (info, video) = blob(material("liveness").await["video"].clone()).await;
    assert!(video.len() > 10_000, "a recorded video, not a stub: {info:?}");
    println!("liveness video: {} bytes, {}", video.len(), info.content_type);
    let signature = material("signature").await;
    let (_, png) = blob(signature["image"].clone()).await;
    assert!(png.starts_with(b"\x89PNG"));
    let strokes = signature["strokes"].as_array().unwrap();
    let points = strokes[0].as_array().unwrap();
    assert!(strokes.len() == 1 && points.len() >= 20, "one finger stroke: {strokes:?}");
    assert!(points.windows(2).all(|p| p[1]["x"].as_f64() > p[0]["x"].as_f64()), "left to right: {points:?}");

    // 已购记录: each order a full-width card with its status.
    b.goto("/orders").await;
    let card = b.visible(&format!("a.order-link[href='/orders/{id}']")).await;
    assert!(card.text().await.unwrap().contains("已支付"));
    let width =
        b.c.execute(
            &format!(
                "return document.querySelector(\"a.order-link[href='/orders/{id}']\").getBoundingClientRect().width;"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert!(width.as_f64().unwrap() > 300.0, "the card spans the phone's width, not a sliver: {width}");
    b.screenshot("orders.png").await;
    // 常见问题 explains every status word an applicant can see.
    b.goto("/faq").await;
    let faq = b.visible("body").await.text().await.unwrap();
    for word in ["待支付", "待提交资料", "已支付", "待补正", "待发货", "已发货", "已激活", "退款中", "已退款", "已取消"]
    {
        assert!(faq.contains(word), "常见问题 explains {word}");
    }
    b.screenshot("faq.png").await;
    let icon = h.http.get(h.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200, "the icon browsers ask for");
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    // Back from a WeChat login with this version of the agreement ticked: the page makes the
    // next order by itself and goes on to pay.
    let version = h.server.app.config().product.agreement_version.clone();
    b.goto(&format!("/apply?agreed={version}")).await;
    b.wait_path("the pay page of a new order", |p| p.ends_with("/pay") && !p.contains(&id)).await;
    to_accepted
}

/// After the key arrived: the applicant scans the QR code (not logged in yet), is sent to log
/// in, comes back with the session of the phone they applied with, ticks 本人已阅读并同意申请, 下一步, records the face video
/// with the camera and lands on the result, 已激活 with the PIN under review (the sandbox
/// leaves every face check to a reviewer). The order up to 已发货 is made through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applicant_activates_the_ukey_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let h = start(Backend::Sqlite).await;
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    h.complete_materials(&token, &id, PHONE).await;
    let code = ship_order_as_staff(&h, &id).await;

    let work = tempfile::tempdir().unwrap();
    let camera = work.path().join("camera.y4m");
    std::fs::write(&camera, fake_camera_y4m()).unwrap();
    let driver = Driver::start(work.path());
    let client = driver.session(&work.path().join("profile"), &camera).await;
    let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir().join("activation") };
    let _ = std::fs::remove_file(b.shots.join("failure.png"));
    match tokio::time::timeout(Duration::from_secs(60), activate(&b, &token, &code)).await {
        Ok(()) => {}
        Err(_) => b.fail("the activation took longer than 60 s").await,
    }
    let _ = client.close().await;
    drop(driver);
    let o = h.order(&token, &id).await;
    assert_eq!((o["state"].as_str(), o["status_word"].as_str()), (Some("activation_review"), Some("已激活")), "{o}");
    assert_eq!((o["invoice"]["status_word"].as_str(), o["pin_pending"].as_bool()), (Some("开票中"), Some(true)), "{o}");
    h.server.stop().await;
    println!("browser activation passed in {:.1} s", started.elapsed().as_secs_f64());
}

async fn activate(b: &Browser, token: &str, code: &str) {
    // The QR code's link, before logging in, leads to the login page (walked through in the
    // other test; the SMS code limit would hold a second code back here). The session of the
    // phone the applicant applied with, as that login sets it, and the link again.
    let notice = format!("/activate/{code}");
    b.goto(&notice).await;
    b.wait_path("the login page", |p| p == format!("/login?next={notice}")).await;
    // (WebDriver's add-cookie is refused for this host by chromedriver; the page's script
    // can set it, and the server reads it all the same.)
    b.c.execute("document.cookie = 'yiqian_session=' + arguments[0] + '; path=/';", vec![json!(token)]).await.unwrap();
    b.goto(&notice).await;

    // The risk notice: tick 本人已阅读并同意申请, 下一步.
    b.wait_path("the activation notice after login", |p| p == notice).await;
    let text = b.visible("#risk-notice").await.text().await.unwrap();
    assert!(text.contains("数字证书具有与手写签名同等的法律效力"), "{text}");
    b.screenshot("notice.png").await;
    b.click("#agreed").await;
    b.click("#consent-submit").await;

    // Face verification, as at application: digits, then the camera records.
    let verify = format!("/activate/{code}/verify");
    b.wait_path("the activation face video page", |p| p == verify).await;
    b.click("#liveness-start").await;
    b.poll("four digits in #digits", || async move {
        let t = b.c.find(Locator::Css("#digits")).await.ok()?.text().await.ok()?;
        let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
        (t.len() == 4 && t.chars().all(|c| c.is_ascii_digit())).then_some(t)
    })
    .await;
    b.click("#liveness-record").await;

    let done = format!("/activate/{code}/done");
    b.wait_path_within("the result after the recording uploads", LIVENESS_WAIT, |p| p == done).await;
    assert_eq!(b.visible("#result").await.text().await.unwrap(), "已激活");
    let note = b.visible("#pin-note").await.text().await.unwrap();
    assert_eq!(note, "PIN码待审核:审核通过后将以短信发送");
    b.screenshot("activated.png").await;

    // 已激活 counts for invoices: 申请开票 from the order page; 纳税人识别号 only for 单位.
    b.click("#view-order").await;
    b.wait_path("the order page", |p| p.starts_with("/orders/") && !p.ends_with("/invoice")).await;
    b.click("#invoice-request").await;
    b.wait_path("the invoice page", |p| p.ends_with("/invoice")).await;
    assert!(b.visible("#tax_id").await.is_displayed().await.unwrap(), "单位 is the default");
    b.click("#kind-personal").await;
    let tax_id = b.find("#tax_id").await;
    assert!(!tax_id.is_displayed().await.unwrap() && !tax_id.is_enabled().await.unwrap(), "no tax id for 个人");
    b.type_into("#name", "张三").await;
    b.screenshot("invoice.png").await;
    b.click("#invoice-submit").await;
    b.wait_path("the order page after 提交", |p| p.starts_with("/orders/") && !p.ends_with("/invoice")).await;
    assert_eq!(b.visible("#invoice-status").await.text().await.unwrap(), "开票中");

    // 已购记录 shows the order's status and its invoice's.
    b.goto("/orders").await;
    let card = b.visible("a.order-link").await.text().await.unwrap();
    assert!(card.contains("已激活") && card.contains("发票:开票中"), "{card}");
    b.screenshot("orders-invoice.png").await;
}

/// Not a test: the benchmark behind "Applicant pages on a phone network" in docs/benchmarks.md
/// (`cargo test --release -p yiqian --test browser page_weight -- --ignored --nocapture`).
/// Prints, for each page of the journey, the bytes that crossed the network and the requests
/// that did, on a first visit (empty cache) and a repeat visit, from the browser's own Resource
/// Timing; then the time from 首页 to 受理成功 of the real walk without throttling and on
/// Chromium's "Slow 4G" profile. It asserts nothing about time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn page_weight_and_slow_4g_benchmark() {
    if !browser_installed() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let camera = work.path().join("camera.y4m");
    std::fs::write(&camera, fake_camera_y4m()).unwrap();
    let driver = Driver::start(work.path());

    // Page weight: the journey's pages, each over an order parked at that step.
    let h = start(Backend::Sqlite).await;
    let orders = park_orders(&h).await;
    let pages = layout_pages(&orders);
    let journey = [
        "home",
        "apply",
        "login",
        "pay",
        "step-phone",
        "step-prepare",
        "step-id-card",
        "step-liveness",
        "step-signature",
        "step-address",
        "accepted",
        "order-submitted",
    ];
    let client = driver.session(&work.path().join("profile-weight"), &camera).await;
    let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir().join("weight") };
    println!("| page | first visit: bytes | requests | repeat visit: bytes | requests |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut rows: Vec<(&str, Value)> = Vec::new();
    for visit in 0..2 {
        b.c.delete_all_cookies().await.unwrap();
        let mut logged_in = false;
        for (i, name) in journey.iter().enumerate() {
            let p = pages.iter().find(|p| p.name == *name).unwrap();
            if p.logged_in && !logged_in {
                b.c.execute(
                    "document.cookie = 'yiqian_session=' + arguments[0] + '; path=/';",
                    vec![json!(orders.token)],
                )
                .await
                .unwrap();
                logged_in = true;
            }
            b.goto(&p.path).await;
            if *name == "step-address" {
                b.find("#province option[value='440000']").await;
            }
            let w = b.c.execute_async(PAGE_WEIGHT, vec![]).await.unwrap();
            if visit == 0 {
                rows.push((name, w));
            } else {
                let first = &rows[i].1;
                println!(
                    "| {name} | {} | {} | {} | {} |",
                    first["bytes"], first["requests"], w["bytes"], w["requests"]
                );
            }
        }
    }
    let _ = client.close().await;
    h.server.stop().await;

    // Time to 受理成功: the real walk, on a fast line and on "Slow 4G".
    for (label, throttle) in [("loopback, no throttling", None), ("Slow 4G", Some(slow_4g()))] {
        let h = start(Backend::Sqlite).await;
        let profile = work.path().join(format!("profile-walk-{}", throttle.is_some()));
        let client = driver.session(&profile, &camera).await;
        if let Some(conditions) = &throttle {
            let session = client.session_id().await.unwrap().expect("a session");
            let url = format!("{}/session/{session}/chromium/network_conditions", driver.url);
            let r = reqwest::Client::new().post(url).json(&json!({"network_conditions": conditions})).send().await;
            assert!(r.unwrap().status().is_success(), "chromedriver took the network conditions");
        }
        let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir().join("slow-4g") };
        let took =
            match tokio::time::timeout(Duration::from_secs(600), walk(&h, &b, work.path(), throttle.is_some())).await {
                Ok(took) => took,
                Err(_) => b.fail("the walk took longer than 600 s").await,
            };
        println!("{label}: 首页 → 受理成功 in {:.1} s", took.as_secs_f64());
        let _ = client.close().await;
        h.server.stop().await;
    }
    drop(driver);
}

/// Chromium DevTools' "Slow 4G" preset: 562.5 ms latency, 1.6 Mbit/s down and 750 kbit/s up,
/// each at 90 %, as chromedriver takes them (milliseconds, bytes per second).
fn slow_4g() -> Value {
    json!({"offline": false, "latency": 562.5, "download_throughput": 180_000, "upload_throughput": 84_375})
}

/// What the current page cost on the network, from Resource Timing: bytes transferred (headers
/// and bodies; 0 for what the browser's cache served) and the requests that went out, after
/// the page's own late loads (the region tree) have settled.
const PAGE_WEIGHT: &str = r#"
    var done = arguments[arguments.length - 1];
    setTimeout(function () {
        var entries = performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'));
        var sent = entries.filter(function (e) { return e.transferSize > 0; });
        done({
            bytes: sent.reduce(function (n, e) { return n + e.transferSize; }, 0),
            requests: sent.length,
            cached: entries.length - sent.length,
            names: sent.map(function (e) { return e.name.replace(location.origin, ''); })
        });
    }, 800);
"#;

/// The phone viewports (CSS pixels) every applicant page is checked at: a small Android phone,
/// an iPhone 12 to 15, an iPhone 11 / XR / Plus.
const PHONE_SIZES: [(u32, u32); 3] = [(360, 640), (390, 844), (414, 896)];

/// Pages with no primary action, exempt from check (a) only, each with the reason. The check
/// also makes sure they show no `.btn-primary`, so the list cannot hide a button out of reach.
const NO_PRIMARY_ACTION: [(&str, &str); 5] = [
    ("faq", "常见问题 is reading matter: there is nothing to do on it"),
    ("orders", "已购记录 is a list: each order's card leads on, none comes first"),
    (
        "order-submitted",
        "waiting for the CA's review: nothing to do, and 申请退款 is deliberately not the primary action",
    ),
    ("order-shipped", "the next step is scanning the QR code on the form that came with the UKEY, not a button here"),
    ("order-activated-invoice", "everything is done: 下载发票 is a secondary action"),
];

/// Elements whose one-character text is there by design, exempt from check (c): CSS selector
/// and why. (The ✓ of 受理成功 needs no entry: CSS draws it and hides the character.)
const ONE_CHARACTER_BY_DESIGN: [(&str, &str); 0] = [];

/// Every applicant and activation page, in the states an applicant meets them, at each of
/// [`PHONE_SIZES`] (a Chromium session per size, one server and one set of orders for all),
/// with a screenshot of each in `target/browser-screenshots/sizes/{width}x{height}/` (the
/// first viewport as `{page}.png`, and the end of a longer page as `{page}-end.png`). On each
/// page:
///
/// (a) the primary action, the first visible `.btn-primary`, is the page's intended button and
///     lies wholly inside the first viewport, unscrolled (in a state reached by a tap, as the
///     page then stands: its own scrolling counts, the applicant's none) ([`NO_PRIMARY_ACTION`]
///     lists the pages without one, which must show none);
/// (b) nothing overflows sideways: the document is no wider than the viewport, else the widest
///     element sticking out is named;
/// (c) no element with text of its own (its direct text nodes) is narrower than two of its
///     characters (2 × its font size), as a label squeezed to one character per line is;
/// (d) every tap target is at least 44 × 44 px: visible links, buttons, inputs, selects,
///     text areas, summaries, and labels holding a checkbox, radio button or file input (whose
///     box is then the target; the input itself is not measured).
///
/// Elements not displayed (display none, `.hidden`, invisible, transparent, no size) are not
/// checked. Every failure of the run names the page, the size and the element (tag, id,
/// classes, text, box), and all are reported together at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn applicant_pages_fit_phone_screens_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let h = start(Backend::Sqlite).await;
    let orders = park_orders(&h).await;
    let pages = layout_pages(&orders);
    println!("orders parked in {:.1} s", started.elapsed().as_secs_f64());
    let work = tempfile::tempdir().unwrap();
    let camera = work.path().join("camera.y4m");
    std::fs::write(&camera, fake_camera_y4m()).unwrap();
    let driver = Driver::start(work.path());
    let mut failures = Vec::new();
    for size in PHONE_SIZES {
        let (width, height) = size;
        let profile = work.path().join(format!("profile-{width}x{height}"));
        let client = driver.phone_session(&profile, &camera, size).await;
        let shots = screenshot_dir().join("sizes").join(format!("{width}x{height}"));
        let _ = std::fs::remove_dir_all(&shots);
        let b = Browser { c: client.clone(), base: h.base.clone(), shots };
        match tokio::time::timeout(Duration::from_secs(120), check_layouts(&b, size, &pages, &orders.token)).await {
            Ok(found) => failures.extend(found),
            Err(_) => b.fail(&format!("the pages at {width}×{height} took longer than 120 s")).await,
        }
        let _ = client.close().await;
    }
    drop(driver);
    h.server.stop().await;
    println!(
        "{} pages at {} sizes checked in {:.1} s",
        pages.len(),
        PHONE_SIZES.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{} layout failures on phone screens:\n{}", failures.len(), failures.join("\n"));
}

/// One applicant page in one state, as [`applicant_pages_fit_phone_screens_in_a_real_browser`]
/// visits it.
struct LayoutPage {
    /// The screenshot's name, and the page's name in failures.
    name: &'static str,
    path: String,
    /// Logged in (the pages before the first logged-in one are seen logged out).
    logged_in: bool,
    /// The intended primary action (CSS), which must be the first visible `.btn-primary`;
    /// `None` for the pages of [`NO_PRIMARY_ACTION`].
    primary: Option<&'static str>,
    /// A button to tap first, and what must show then (the camera opened on a face video page).
    tap: Option<(&'static str, &'static str)>,
}

/// Orders of one applicant parked in each state an applicant page shows, made through the API
/// and the staff's services.
struct ParkedOrders {
    token: String,
    /// Not paid: the pay page.
    unpaid: String,
    /// Paid, no materials: 绑定手机.
    paid: String,
    /// Phone bound: the order with its checklist and 开始, 准备, 身份证拍照.
    phone_bound: String,
    /// ID card confirmed: 人脸验证.
    id_card_done: String,
    /// Face video sent: 签名.
    liveness_done: String,
    /// Signed: 填写地址.
    signed: String,
    /// Submitted: 受理成功, the order waiting for review.
    submitted: String,
    /// Shipped and the risk notice agreed to (order, activation code): the notice (ticked), the
    /// face video page.
    shipped: (String, String),
    /// Activated (PIN under review), no invoice asked for: the result, 申请开票.
    activated: (String, String),
    /// Activated, and its invoice issued: the order with 已开票.
    invoiced: (String, String),
}

/// Makes the orders of [`ParkedOrders`], each with its own ID card (one live order per card)
/// and bound phone (one code a minute per number).
async fn park_orders(h: &Harness) -> ParkedOrders {
    let token = h.login(PHONE).await;
    let t = token.as_str();
    let paid = paid_order(h, t, 1, 0).await;
    let phone_bound = paid_order(h, t, 2, 1).await;
    let id_card_done = paid_order(h, t, 3, 2).await;
    let liveness_done = paid_order(h, t, 4, 3).await;
    let signed = paid_order(h, t, 5, 4).await;
    let submitted = submitted_order(h, t, 6).await;
    let mut shipped = Vec::new();
    for n in 7..=9 {
        let id = submitted_order(h, t, n).await;
        let code = ship_order_as_staff(h, &id).await;
        shipped.push((id, code));
    }
    let [shipped, activated, invoiced]: [(String, String); 3] = shipped.try_into().unwrap();
    let activation = |code: &str, tail: &str| format!("/api/v1/activation/{code}/{tail}");
    for (_, code) in [&shipped, &activated, &invoiced] {
        h.post(Some(t), &activation(code, "consent"), json!({"agreed": true})).await.ok();
    }
    for (_, code) in [&activated, &invoiced] {
        let c = h.post(Some(t), &activation(code, "challenge"), json!({})).await.ok();
        let video = reqwest::multipart::Form::new()
            .text("challenge_id", c["challenge_id"].as_str().unwrap().to_owned())
            .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("liveness.mp4"));
        let a = h.post_form(t, &activation(code, "video"), video).await.ok();
        assert_eq!(a["state"], "activation_review", "{a}");
    }
    let invoice = format!("/api/v1/orders/{}/invoice", invoiced.0);
    h.post(Some(t), &invoice, json!({"kind": "personal", "name": "张三"})).await.ok();
    let finance = staff(yiqian_app::staff::Role::Finance, "finance");
    let pdf = b"%PDF-1.4\n% yiqian test invoice\n%%EOF\n";
    h.server.app.issue_invoice(&finance, &invoiced.0, "25442000000012345678", pdf).await.unwrap();
    // Last: while an order waits for payment, 办理 hands that one out again.
    let unpaid = h.create_order(t).await;
    ParkedOrders {
        token,
        unpaid,
        paid,
        phone_bound,
        id_card_done,
        liveness_done,
        signed,
        submitted,
        shipped,
        activated,
        invoiced,
    }
}

/// A paid order, the `n`th of the test, with its first `steps` materials steps done.
async fn paid_order(h: &Harness, token: &str, n: u32, steps: usize) -> String {
    let id = h.create_order(token).await;
    h.pay(token, &id).await;
    let m = Materials { id_number: id_number(n), ..Materials::default() };
    h.complete_steps(token, &id, &format!("1390000{n:04}"), m, steps).await;
    id
}

/// A submitted order, the `n`th of the test.
async fn submitted_order(h: &Harness, token: &str, n: u32) -> String {
    let id = paid_order(h, token, n, 5).await;
    let o = h.post(Some(token), &format!("/api/v1/orders/{id}/submit"), json!({})).await.ok();
    assert_eq!(o["state"], "submitted", "{o}");
    id
}

/// The pages the layout check visits, logged-out ones first.
fn layout_pages(o: &ParkedOrders) -> Vec<LayoutPage> {
    let page = |name, path: String, logged_in, primary| LayoutPage { name, path, logged_in, primary, tap: None };
    let order = |id: &str, tail: &str| format!("/orders/{id}{tail}");
    let activation = |(_, code): &(String, String), tail: &str| format!("/activate/{code}{tail}");
    // A face video page after 进入身份验证: the camera open, 开始录制 the primary action.
    let with_camera = |name, path| LayoutPage {
        name,
        path,
        logged_in: true,
        primary: Some("#liveness-record"),
        tap: Some(("#liveness-start", "#liveness-record")),
    };
    vec![
        page("home", "/".into(), false, Some("#apply")),
        page("apply", "/apply".into(), false, Some("#apply-submit")),
        page("login", "/login".into(), false, Some("#login-submit")),
        page("faq", "/faq".into(), false, None),
        page("apply-logged-in", "/apply".into(), true, Some("#apply-submit")),
        page("orders", "/orders".into(), true, None),
        page("pay", order(&o.unpaid, "/pay"), true, Some("#pay-submit")),
        page("step-phone", order(&o.paid, "/phone"), true, Some("#use-login-phone")),
        page("order-collecting", order(&o.phone_bound, ""), true, Some("#continue")),
        page("step-prepare", order(&o.phone_bound, "/prepare"), true, Some("#start")),
        page("step-id-card", order(&o.phone_bound, "/id-card"), true, Some("#photos-upload")),
        page("step-liveness", order(&o.id_card_done, "/liveness"), true, Some("#liveness-start")),
        with_camera("step-liveness-camera", order(&o.id_card_done, "/liveness")),
        page("step-signature", order(&o.liveness_done, "/signature"), true, Some("#signature-submit")),
        page("step-address", order(&o.signed, "/address"), true, Some("#address-submit")),
        page("accepted", order(&o.submitted, "/accepted"), true, Some("#view-detail")),
        page("order-submitted", order(&o.submitted, ""), true, None),
        page("order-shipped", order(&o.shipped.0, ""), true, None),
        page("activate-notice", activation(&o.shipped, ""), true, Some("#consent-submit")),
        page("activate-verify", activation(&o.shipped, "/verify"), true, Some("#liveness-start")),
        with_camera("activate-verify-camera", activation(&o.shipped, "/verify")),
        page("activate-done", activation(&o.activated, "/done"), true, Some("#view-order")),
        page("invoice", order(&o.activated.0, "/invoice"), true, Some("#invoice-submit")),
        page("order-activated-invoice", order(&o.invoiced.0, ""), true, None),
    ]
}

/// Visits `pages` at `size` (logging in with `token` before the first page that needs it),
/// takes the screenshots and returns every failure of the checks.
async fn check_layouts(b: &Browser, size: (u32, u32), pages: &[LayoutPage], token: &str) -> Vec<String> {
    let (width, height) = size;
    let exempt_text: Vec<&str> = ONE_CHARACTER_BY_DESIGN.iter().map(|(css, _)| *css).collect();
    let mut failures = Vec::new();
    let mut logged_in = false;
    for p in pages {
        let at = format!("{} at {width}×{height}", p.name);
        assert!(logged_in <= p.logged_in, "{}: the logged-out pages come first", p.name);
        if p.logged_in && !logged_in {
            // As activate() does: chromedriver refuses add-cookie here, the page may set it.
            b.c.execute("document.cookie = 'yiqian_session=' + arguments[0] + '; path=/';", vec![json!(token)])
                .await
                .unwrap();
            logged_in = true;
        }
        b.goto(&p.path).await;
        let path = b.path().await;
        if path != p.path {
            failures.push(format!("{at}: went to {}, the browser is at {path}", p.path));
            continue;
        }
        if let Some((tap, shows)) = p.tap {
            b.click(tap).await;
            b.visible(shows).await;
        }
        let args = vec![json!(p.primary), json!(exempt_text), json!(p.tap.is_none())];
        let found = match b.c.execute_async(LAYOUT_CHECK, args).await {
            Ok(found) => found,
            Err(e) => b.fail(&format!("{at}: the layout check did not run: {e}")).await,
        };
        failures.extend(layout_failures(&at, p, size, &found));
        b.screenshot(&format!("{}.png", p.name)).await;
        if found["scrollHeight"].as_f64().unwrap_or(0.0) > f64::from(height) + 1.0 {
            b.c.execute("window.scrollTo(0, document.documentElement.scrollHeight);", vec![]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            b.screenshot(&format!("{}-end.png", p.name)).await;
        }
    }
    failures
}

/// The failures in what [`LAYOUT_CHECK`] found on page `p`, each starting with `at`.
fn layout_failures(at: &str, p: &LayoutPage, (width, height): (u32, u32), found: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let num = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let (vw, vh) = (num(&found["vw"]), num(&found["vh"]));
    if vw != f64::from(width) || vh != f64::from(height) {
        out.push(format!("{at}: the viewport is {vw}×{vh}, not the phone's"));
    }
    // (a) The primary action, whole, in the first viewport.
    let primary = &found["primary"];
    let exemption = NO_PRIMARY_ACTION.iter().find(|(name, _)| *name == p.name);
    match (p.primary, exemption) {
        (Some(_), Some(_)) | (None, None) => {
            out.push(format!("{at}: give the page an intended primary action or list it in NO_PRIMARY_ACTION"))
        }
        (None, Some(_)) if !primary.is_null() => {
            out.push(format!("{at}: listed as having no primary action, but shows {}", describe_element(primary)))
        }
        (None, Some(_)) => {}
        (Some(css), None) if primary.is_null() => out.push(format!("{at}: (a) no visible .btn-primary (wanted {css})")),
        (Some(css), None) => {
            if primary["intended"] != true {
                out.push(format!(
                    "{at}: (a) the first visible .btn-primary is {}, not {css}",
                    describe_element(primary)
                ));
            }
            if primary["inView"] != true {
                out.push(format!(
                    "{at}: (a) the primary action {} is not wholly inside the first viewport ({width}×{height})",
                    describe_element(primary)
                ));
            }
        }
    }
    // (b) Nothing wider than the screen.
    let scroll_width = num(&found["scrollWidth"]);
    if scroll_width > vw {
        let widest = match found["overflow"].is_null() {
            true => "no single element found".to_owned(),
            false => describe_element(&found["overflow"]),
        };
        out.push(format!(
            "{at}: (b) the page is {scroll_width} px wide, wider than {vw}; widest sticking out: {widest}"
        ));
    }
    // (c) No text squeezed narrower than two characters.
    for e in found["narrow"].as_array().into_iter().flatten() {
        out.push(format!(
            "{at}: (c) text narrower than two characters ({} px font): {}",
            num(&e["fontSize"]),
            describe_element(e)
        ));
    }
    // (d) Tap targets of 44 × 44 px.
    for e in found["small"].as_array().into_iter().flatten() {
        out.push(format!("{at}: (d) tap target smaller than 44×44: {}", describe_element(e)));
    }
    out
}

/// An element as [`LAYOUT_CHECK`] describes it: `<button#id.class> “text” at (x, y) w×h`.
fn describe_element(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_owned();
    let id = match s("id").as_str() {
        "" => String::new(),
        id => format!("#{id}"),
    };
    let classes: String = s("cls").split_whitespace().map(|c| format!(".{c}")).collect();
    format!("<{}{id}{classes}> “{}” at ({}, {}) {}×{}", s("tag"), s("text"), e["x"], e["y"], e["w"], e["h"])
}

/// The checks of [`applicant_pages_fit_phone_screens_in_a_real_browser`], run in the page once
/// its fonts are ready. Arguments: the intended primary action's CSS (or null), the selectors
/// exempt from the text check, and whether to scroll to the top first. Returns the viewport (`vw`, `vh`), the
/// document's `scrollWidth` and `scrollHeight`, `primary` (the first visible `.btn-primary`,
/// with `inView` and `intended`), `overflow` (the widest element sticking out sideways),
/// `narrow` (squeezed text, with `fontSize`) and `small` (small tap targets).
const LAYOUT_CHECK: &str = r#"
var done = arguments[arguments.length - 1];
var intended = arguments[0], exemptText = arguments[1], fromTop = arguments[2];
function shown(el) {
  if (el.closest('.hidden, [hidden]')) return false;
  if (el.checkVisibility && !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) return false;
  var cs = getComputedStyle(el);
  if (cs.display === 'none' || cs.visibility !== 'visible' || cs.opacity === '0') return false;
  var r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0;
}
function describe(el) {
  var r = el.getBoundingClientRect();
  var text = (el.innerText || el.value || el.getAttribute('aria-label') || '').replace(/\s+/g, ' ').trim();
  var round = function (v) { return Math.round(v * 10) / 10; };
  return {
    tag: el.tagName.toLowerCase(), id: el.id || '',
    cls: typeof el.className === 'string' ? el.className : '',
    text: text.length > 24 ? text.slice(0, 24) + '…' : text,
    x: round(r.left), y: round(r.top), w: round(r.width), h: round(r.height)
  };
}
function check() {
  var root = document.documentElement;
  var vw = root.clientWidth, vh = window.innerHeight;
  var all = Array.prototype.slice.call(document.body.querySelectorAll('*'));
  var out = { vw: vw, vh: vh, scrollWidth: root.scrollWidth, scrollHeight: root.scrollHeight,
              primary: null, overflow: null, narrow: [], small: [] };
  // (a) The first visible .btn-primary.
  var primary = all.filter(function (el) { return el.classList.contains('btn-primary') && shown(el); })[0];
  if (primary) {
    var r = primary.getBoundingClientRect();
    out.primary = describe(primary);
    out.primary.inView = r.top >= -0.5 && r.left >= -0.5 && r.bottom <= vh + 0.5 && r.right <= vw + 0.5;
    out.primary.intended = !!intended && primary.matches(intended);
  }
  // (b) The widest element sticking out sideways (not inside something that clips it).
  if (root.scrollWidth > vw) {
    var widest = null;
    all.forEach(function (el) {
      if (!shown(el)) return;
      var r = el.getBoundingClientRect();
      if (r.right <= vw + 0.5 && r.left >= -0.5) return;
      for (var a = el.parentElement; a && a !== document.body; a = a.parentElement) {
        if (getComputedStyle(a).overflowX !== 'visible') return;
      }
      if (!widest || r.width > widest.getBoundingClientRect().width) widest = el;
    });
    if (widest) out.overflow = describe(widest);
  }
  // (c) Text of an element's own narrower than two of its characters.
  all.forEach(function (el) {
    if (/^(SCRIPT|STYLE|TEMPLATE|NOSCRIPT|OPTION|OPTGROUP)$/.test(el.tagName)) return;
    var own = '';
    el.childNodes.forEach(function (n) { if (n.nodeType === 3) own += n.nodeValue; });
    if (!own.trim() || !shown(el)) return;
    if (exemptText.some(function (css) { return el.matches(css); })) return;
    var size = parseFloat(getComputedStyle(el).fontSize);
    if (el.getBoundingClientRect().width < 2 * size - 0.5) {
      var d = describe(el);
      d.fontSize = size;
      out.narrow.push(d);
    }
  });
  // (d) Tap targets; a checkbox, radio button or file input in a label is tapped by its label.
  var boxed = 'input[type=checkbox], input[type=radio], input[type=file]';
  document.body.querySelectorAll('a, button, input, select, textarea, summary, label').forEach(function (el) {
    if (el.tagName === 'INPUT' && el.type === 'hidden') return;
    if (el.tagName === 'LABEL') {
      var control = el.querySelector(boxed) || (el.htmlFor && document.getElementById(el.htmlFor));
      if (!control || !control.matches(boxed)) return;
    } else if (el.matches(boxed) && el.closest('label')) {
      return;
    }
    if (!shown(el)) return;
    var r = el.getBoundingClientRect();
    if (r.width < 43.5 || r.height < 43.5) out.small.push(describe(el));
  });
  return out;
}
document.fonts.ready.then(function () {
  if (fromTop) window.scrollTo(0, 0);
  requestAnimationFrame(function () { requestAnimationFrame(function () { done(check()); }); });
});
"#;

/// A reviewer at a desktop in Chromium: first login (password, then the authenticator's code
/// computed from the secret on the enrolment page), the review queue, an application whose
/// photos and face video were made by the browser itself (so they really decode and play),
/// 审核通过, and the queue without it. The application is made through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviewer_approves_an_application_in_the_console_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let started = Instant::now();
    let h = start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let driver = Driver::start(work.path());
    let client = driver.desktop_session(&work.path().join("profile")).await;
    let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir().join("console") };
    let _ = std::fs::remove_file(b.shots.join("failure.png"));
    let id = match tokio::time::timeout(Duration::from_secs(40), review(&h, &b)).await {
        Ok(id) => id,
        Err(_) => b.fail("the review took longer than 40 s").await,
    };
    let _ = client.close().await;
    drop(driver);
    assert_eq!(stored_order(&h, &id).await.order.state, yiqian_domain::OrderState::Approved);
    h.server.stop().await;
    println!("browser review passed in {:.1} s", started.elapsed().as_secs_f64());
}

async fn review(h: &Harness, b: &Browser) -> String {
    // The applicant's materials, drawn and recorded by the browser; the order through the API.
    b.goto("/console/login").await;
    let front = b.canvas_jpeg("#e8f0fa", "居民身份证 人像面").await;
    let back = b.canvas_jpeg("#faf0e0", "中华人民共和国 国徽面").await;
    let video = b.canvas_webm().await;
    let token = h.login(PHONE).await;
    let id = h.create_order(&token).await;
    h.pay(&token, &id).await;
    let m = Materials { front, back, video: (video, "liveness.webm".into()), ..Materials::default() };
    assert_eq!(h.complete_materials_with(&token, &id, PHONE, m).await["state"], "submitted");

    // First login: password, then the code of an authenticator enrolled from the page.
    h.server.app.add_staff("li.wei", yiqian_app::staff::Role::Reviewer, CONSOLE_PASSWORD).await.unwrap();
    b.goto("/console/review").await;
    b.wait_path("the console login", |p| p.starts_with("/console/login")).await;
    b.type_into("input[name=name]", "li.wei").await;
    b.type_into("input[name=password]", CONSOLE_PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_path("the enrolment page", |p| p.starts_with("/console/enrol")).await;
    let secret = b.visible("#totp-secret").await.text().await.unwrap();
    let code = h.totp_now(secret.trim());
    b.type_into("input[name=code]", &code).await;
    b.click("button[type=submit]").await;

    // The queue leads to the application.
    b.wait_path("the review queue", |p| p == "/console/review").await;
    b.click(&format!("a[href='/console/review/{id}']")).await;
    let dossier = format!("/console/review/{id}");
    b.wait_path("the application", |p| p == dossier).await;
    assert_eq!(b.visible("#applicant-name").await.text().await.unwrap(), "张三");

    // The photos decode and the face video's metadata loads (the blob route serves it).
    b.poll("the ID photos and the face video to load", || async move {
        let ready = b
            .c
            .execute(
                "var v = document.querySelector('#liveness-video'); \
                 var imgs = ['#id-front', '#id-back', '#signature-image'].map(function (s) { return document.querySelector(s); }); \
                 return !!v && v.readyState >= 1 && !v.error && imgs.every(function (i) { return i && i.complete && i.naturalWidth > 0; });",
                vec![],
            )
            .await
            .ok()?;
        (ready == Value::Bool(true)).then_some(())
    })
    .await;
    let size =
        b.c.execute("var v = document.querySelector('#liveness-video'); return [v.videoWidth, v.videoHeight];", vec![])
            .await
            .unwrap();
    assert_eq!(size, json!([320, 240]), "the recorded video's frames");
    b.c.set_window_size(1440, 2000).await.unwrap();
    b.screenshot("dossier.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();

    // 审核通过: back to the queue, which no longer has it.
    b.click("#approve").await;
    b.wait_path("the queue after 审核通过", |p| p.starts_with("/console/review?ok=approved")).await;
    assert!(b.visible("#notice").await.text().await.unwrap().contains(&id));
    let rows = b.c.find_all(Locator::Css(&format!("#queue tr[data-order='{id}']"))).await.unwrap();
    assert!(rows.is_empty(), "the approved order left the queue");
    b.screenshot("queue.png").await;
    id
}

/// Fulfilment hands a batch to a personalisation station in Chromium (交工作站制证), the batch
/// page names the command to run and then the station holding an order; an administrator
/// revokes the station on 制证工作站. Screenshots at desktop and phone size.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_goes_to_a_station_and_an_administrator_revokes_it_in_a_real_browser() {
    if !browser_installed() {
        return;
    }
    let h = start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let driver = Driver::start(work.path());
    let client = driver.desktop_session(&work.path().join("profile")).await;
    let b = Browser { c: client.clone(), base: h.base.clone(), shots: screenshot_dir().join("console") };
    if tokio::time::timeout(Duration::from_secs(120), stations(&h, &b)).await.is_err() {
        b.fail("the station and deletion pages took longer than 120 s").await;
    }
    let _ = client.close().await;
    drop(driver);
    h.server.stop().await;
}

/// Logs in to the console in the browser as a new account (first login: enrolment); returns
/// the authenticator's secret.
async fn first_console_login(h: &Harness, b: &Browser, name: &str, role: yiqian_app::staff::Role, to: &str) -> String {
    h.server.app.add_staff(name, role, CONSOLE_PASSWORD).await.unwrap();
    b.goto(to).await;
    b.wait_path("the console login", |p| p.starts_with("/console/login")).await;
    b.type_into("input[name=name]", name).await;
    b.type_into("input[name=password]", CONSOLE_PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_path("the enrolment page", |p| p.starts_with("/console/enrol")).await;
    let secret = b.visible("#totp-secret").await.text().await.unwrap().trim().to_owned();
    b.type_into("input[name=code]", &h.totp_now(&secret)).await;
    b.click("button[type=submit]").await;
    b.wait_path("the page asked for", |p| p == to).await;
    secret
}

async fn stations(h: &Harness, b: &Browser) {
    use yiqian_app::staff::Role;
    use yiqian_token::Pin;
    use yiqian_token::escrow::PinRole;
    let orders = common::station::approved_orders(h, 1, 2).await;
    let secret = first_console_login(h, b, "zhao.min", Role::Fulfilment, "/console/fulfilment").await;
    // 全选, then 交工作站制证.
    b.click("#select-all").await;
    b.wait_path("every box ticked", |p| p.contains("all=1")).await;
    b.screenshot("fulfilment-desk.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("fulfilment-desk-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();
    b.click("button[name=at][value=station]").await;
    b.wait_path("the batch page", |p| p.starts_with("/console/fulfilment/batches/")).await;
    let batch = b.path().await.rsplit('/').next().unwrap().to_owned();
    let command = b.visible("#station-command").await.text().await.unwrap();
    assert_eq!(command, format!("yiqian station run --batch {batch}"));
    b.screenshot("station-batch.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("station-batch-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();

    // A station enrolled by the same member of staff (the next time step's code) takes an order.
    let app = &h.server.app;
    let pending = app.station_enrol_password("zhao.min", CONSOLE_PASSWORD, "127.0.0.1").await.unwrap();
    let code = yiqian_app::staff::totp_code(&secret, app.now() + chrono::Duration::seconds(30)).unwrap();
    let credential = app.station_enrol_code(&pending, &code, "127.0.0.1", "制证室-1").await.unwrap();
    let station = app.station_authenticate(&credential.token).await.unwrap();
    let seal = |digits: usize, role| app.escrow_public_key().seal(&Pin::random(digits), "KEY0001", role).unwrap();
    let claim = app
        .station_claim(&station, &batch, "KEY0001", &seal(16, PinRole::So), &seal(8, PinRole::User))
        .await
        .unwrap()
        .expect("an order to take");
    assert_eq!(claim.order.as_str(), orders[0].1);
    b.goto(&format!("/console/fulfilment/batches/{batch}")).await;
    let row = b.visible(&format!("#batch-items tr[data-order='{}']", orders[0].1)).await.text().await.unwrap();
    assert!(row.contains("制证中(制证室-1)"), "{row}");
    b.screenshot("station-batch-at-station.png").await;

    // An administrator revokes the station; its order goes back to the queue.
    b.c.delete_all_cookies().await.unwrap();
    first_console_login(h, b, "qian.li", Role::Admin, "/console/stations").await;
    let list = b.visible("#station-list").await.text().await.unwrap();
    assert!(list.contains("制证室-1") && list.contains("zhao.min") && list.contains("可用"), "{list}");
    b.screenshot("stations.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("stations-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();
    b.click(&format!("tr[data-station='{}'] button", station.id)).await;
    b.wait_path("the list after 吊销", |p| p == "/console/stations?ok=revoked").await;
    let list = b.visible("#station-list").await.text().await.unwrap();
    assert!(list.contains("已吊销"), "{list}");
    b.screenshot("stations-revoked.png").await;
    assert!(matches!(app.station_authenticate(&credential.token).await, Err(yiqian_app::AppError::Unauthorized)));
    let progress = app
        .batch_progress(
            &yiqian_app::staff::StaffMember {
                id: String::new(),
                name: station.member.name.clone(),
                role: Role::Fulfilment,
            },
            &batch,
        )
        .await
        .unwrap();
    assert!(
        progress.items.iter().all(|(_, s)| *s == yiqian_app::issuance::BatchItemState::Queued),
        "back in the queue"
    );
    erasure(h, b, &orders[0].1).await;
}

/// 个人资料删除, by the administrator logged in: a request for an order still going is refused
/// with the reason; one for a refunded order is done and listed; a reviewer then finds the
/// order's dossier saying its personal data was deleted.
async fn erasure(h: &Harness, b: &Browser, live_order: &str) {
    use yiqian_app::staff::Role;
    let token = h.login("13700137099").await;
    let refunded = h.create_order(&token).await;
    h.pay(&token, &refunded).await;
    let m = Materials { id_number: id_number(99), ..Materials::default() };
    h.complete_materials_with(&token, &refunded, "13700137099", m).await;
    h.post(Some(&token), &format!("/api/v1/orders/{refunded}/refund"), serde_json::json!({})).await.ok();
    h.wait_for_state(&token, &refunded, "refunded").await;

    b.goto("/console/erasure").await;
    let empty = b.visible("#erasures").await.text().await.unwrap();
    assert!(empty.contains("尚无删除记录"), "{empty}");
    b.type_into("input[name=order]", live_order).await;
    b.type_into("input[name=request]", "2026年12月8日 客服电话").await;
    b.click("#erase-order button[type=submit]").await;
    let refusal = b.visible("#erase-order .c-error").await.text().await.unwrap();
    assert!(refusal.contains("订单仍在办理中"), "{refusal}");
    b.screenshot("erasure-refused.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("erasure-refused-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();
    b.goto("/console/erasure").await;
    b.type_into("input[name=order]", &refunded).await;
    b.type_into("input[name=request]", "2026年12月8日 客服电话").await;
    b.click("#erase-order button[type=submit]").await;
    b.wait_path("the page after 删除", |p| p.starts_with("/console/erasure?erased=")).await;
    let list = b.visible("#erasures").await.text().await.unwrap();
    assert!(list.contains(&refunded) && list.contains("应申请人的删除请求") && list.contains("身份证信息"), "{list}");
    b.screenshot("erasure-done.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("erasure-done-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();

    b.c.delete_all_cookies().await.unwrap();
    first_console_login(h, b, "sun.yue", Role::Reviewer, "/console/review").await;
    b.goto(&format!("/console/review/{refunded}")).await;
    let notice = b.visible("#erased").await.text().await.unwrap();
    assert!(notice.contains("个人资料已于") && notice.contains("应申请人的删除请求"), "{notice}");
    b.screenshot("dossier-erased.png").await;
    b.c.set_window_size(390, 844).await.unwrap();
    b.screenshot("dossier-erased-phone.png").await;
    b.c.set_window_size(1440, 900).await.unwrap();
}

/// chromedriver on a free port, in its own process group with the browsers it starts, all
/// killed when this is dropped (also when the test panics).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(work: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(work.join("chromedriver.log")).unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start ({status}); see {}", work.join("chromedriver.log").display());
            }
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port} within 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// A W3C session with headless Chromium as a phone in WeChat, with a fake camera that
    /// plays `camera` (a y4m file).
    async fn session(&self, profile: &Path, camera: &Path) -> Client {
        self.phone_session(profile, camera, (390, 844)).await
    }

    /// [`Driver::session`] on a phone whose viewport is `(width, height)` CSS pixels.
    async fn phone_session(&self, profile: &Path, camera: &Path, (width, height): (u32, u32)) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.display()),
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    format!("--use-file-for-fake-video-capture={}", camera.display()),
                ],
                "mobileEmulation": {
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 3.0},
                    "userAgent": WECHAT_IPHONE_UA,
                },
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session with headless Chromium")
    }

    /// A W3C session with headless Chromium on a desktop screen (the staff console).
    async fn desktop_session(&self, profile: &Path) -> Client {
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--window-size=1440,900", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a WebDriver session with headless Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any Chromium it left behind.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser as the applicant's hand: finds, waits (bounded), clicks and types.
struct Browser {
    c: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    /// The current path and query, or "" while the browser is busy.
    async fn path(&self) -> String {
        match self.c.current_url().await {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            },
            Err(_) => String::new(),
        }
    }

    /// Polls `f` until it yields, for at most `WAIT`.
    async fn poll<T, F, Fut>(&self, what: &str, f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        self.poll_within(what, WAIT, f).await
    }

    async fn poll_within<T, F, Fut>(&self, what: &str, limit: Duration, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() > deadline {
                self.fail(&format!("waited {limit:?} for {what}")).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_path(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_path_within(what, WAIT, want).await
    }

    async fn wait_path_within(&self, what: &str, limit: Duration, want: impl Fn(&str) -> bool) -> String {
        let want = &want;
        self.poll_within(what, limit, || async move {
            let p = self.path().await;
            want(&p).then_some(p)
        })
        .await
    }

    async fn find(&self, css: &str) -> Element {
        self.poll(&format!("{css} on the page"), || async move { self.c.find(Locator::Css(css)).await.ok() }).await
    }

    async fn visible(&self, css: &str) -> Element {
        self.poll(&format!("{css} to show"), || async move {
            let e = self.c.find(Locator::Css(css)).await.ok()?;
            e.is_displayed().await.ok()?.then_some(e)
        })
        .await
    }

    /// Clicks `css` once it shows and is enabled (retrying while something covers it).
    async fn click(&self, css: &str) {
        self.poll(&format!("{css} to be clickable"), || async move {
            let e = self.c.find(Locator::Css(css)).await.ok()?;
            if !(e.is_displayed().await.ok()? && e.is_enabled().await.ok()?) {
                return None;
            }
            e.click().await.ok()
        })
        .await
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.visible(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
        let value = e.prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(value, text, "typed into {css}");
    }

    /// Chooses the option `value` of the select `css` once the option is there.
    async fn choose(&self, css: &str, value: &str) {
        let option = format!("{css} option[value='{value}']");
        self.find(&option).await;
        self.visible(css).await.select_by_value(value).await.unwrap();
        let chosen = self.find(css).await.prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(chosen, value, "chose in {css}");
    }

    /// A JPEG drawn on a canvas in the page (an ID card look-alike).
    async fn canvas_jpeg(&self, background: &str, title: &str) -> Vec<u8> {
        let script = r#"
            var c = document.createElement('canvas');
            c.width = 856; c.height = 540;
            var g = c.getContext('2d');
            g.fillStyle = arguments[0]; g.fillRect(0, 0, c.width, c.height);
            g.fillStyle = '#c8d4e4'; g.fillRect(560, 110, 240, 300);
            g.strokeStyle = '#345'; g.lineWidth = 4; g.strokeRect(20, 20, 816, 500);
            g.fillStyle = '#222'; g.font = '40px sans-serif'; g.fillText(arguments[1], 50, 90);
            for (var i = 0; i < 6; i++) { g.fillRect(50, 150 + i * 55, 300 + (i * 37) % 150, 18); }
            return c.toDataURL('image/jpeg', 0.9);
        "#;
        let url = self.c.execute(script, vec![json!(background), json!(title)]).await.unwrap();
        let b64 = url.as_str().and_then(|u| u.strip_prefix("data:image/jpeg;base64,")).expect("a JPEG data URL");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert!(bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.len() > 2000, "a real JPEG");
        bytes
    }

    /// A short WebM video recorded by the page from a canvas (a moving square and four digits).
    async fn canvas_webm(&self) -> Vec<u8> {
        let script = r#"
            var done = arguments[arguments.length - 1];
            var c = document.createElement('canvas');
            c.width = 320; c.height = 240;
            var g = c.getContext('2d');
            var f = 0;
            function draw() {
                g.fillStyle = '#2d3e50'; g.fillRect(0, 0, 320, 240);
                g.fillStyle = '#f6c26b'; g.fillRect(20 + (f * 12) % 260, 70, 48, 48);
                g.fillStyle = '#ffffff'; g.font = '36px sans-serif'; g.fillText('4 7 1 9', 90, 200);
                f++;
            }
            draw();
            var recorder = new MediaRecorder(c.captureStream(15), {mimeType: 'video/webm'});
            var chunks = [];
            recorder.ondataavailable = function (e) { if (e.data.size) { chunks.push(e.data); } };
            recorder.onstop = function () {
                var reader = new FileReader();
                reader.onload = function () { done(reader.result); };
                reader.readAsDataURL(new Blob(chunks, {type: 'video/webm'}));
            };
            var timer = setInterval(draw, 66);
            recorder.start(250);
            setTimeout(function () { clearInterval(timer); recorder.stop(); }, 1500);
        "#;
        let url = self.c.execute_async(script, vec![]).await.unwrap();
        let b64 = url.as_str().and_then(|u| u.split_once(";base64,")).map(|(_, b)| b).expect("a WebM data URL");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        assert!(bytes.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) && bytes.len() > 1000, "a real WebM");
        bytes
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(png) = self.c.screenshot().await {
            let _ = std::fs::create_dir_all(&self.shots);
            let _ = std::fs::write(self.shots.join(name), png);
        }
    }

    /// Fails the test with where the browser is and what the page says, and a screenshot.
    async fn fail(&self, why: &str) -> ! {
        self.screenshot("failure.png").await;
        let url = self.c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        let errors = self
            .c
            .execute(
                "return Array.prototype.map.call(document.querySelectorAll('.form-error'), \
                 function (e) { return e.textContent.trim(); }).filter(Boolean);",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        panic!(
            "{why}; the browser is at {url}, page errors {errors}; see {}",
            self.shots.join("failure.png").display()
        );
    }
}

fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots")
}

/// 30 frames of 320×240 video (YUV4MPEG2, 4:2:0): a gradient with a bright square moving
/// across it, for Chromium's fake camera.
fn fake_camera_y4m() -> Vec<u8> {
    const W: usize = 320;
    const H: usize = 240;
    const FRAMES: usize = 30;
    let mut out = format!("YUV4MPEG2 W{W} H{H} F15:1 Ip A1:1 C420jpeg\n").into_bytes();
    for f in 0..FRAMES {
        out.extend_from_slice(b"FRAME\n");
        let (sx, sy) = (20 + f * 8, 60 + (f % 10) * 8);
        for y in 0..H {
            for x in 0..W {
                let inside = (sx..sx + 60).contains(&x) && (sy..sy + 60).contains(&y);
                out.push(if inside { 235 } else { (16 + (x + y + f * 4) % 200) as u8 });
            }
        }
        let u = (128 + (f * 4) % 60) as u8;
        out.extend(std::iter::repeat_n(u, (W / 2) * (H / 2)));
        out.extend(std::iter::repeat_n(255 - u, (W / 2) * (H / 2)));
    }
    out
}
