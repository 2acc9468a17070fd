//! The personalisation station against a running server, with a hub of SoftHSM2 keys: the
//! real `yiqian station` binary, enrolled by a fulfilment member of staff (password and
//! one-time code), personalises three keys in parallel from one batch; then a station killed
//! (SIGKILL) mid-batch and started again leaves every order issued once, no certificate for a
//! key nobody holds, and an audit chain that verifies; then one of those keys goes the whole
//! journey to 已激活 (its PIN, sealed at the station, sent by SMS once); finally an
//! administrator revokes the station and it can do nothing more.
//!
//! ONE test: SoftHSM2 reads `SOFTHSM2_CONF` once per process. Without SoftHSM2 it passes with
//! a note, unless `YIQIAN_REQUIRE_SOFTHSM=1` (set by `.ci/run`).

mod common;

use common::*;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use yiqian_app::staff::StaffMember;
use yiqian_domain::staff::Role;
use yiqian_domain::{OrderId, OrderState};
use yiqian_pki::der::Decode;
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{Algorithm, verify};
use yiqian_store::Backend;
use yiqian_store::audit::AuditVerdict;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::{PersonalisedAt, TokenState};
use yiqian_token::pkcs11::{Pkcs11ReaderConfig, Pkcs11TokenReader};
use yiqian_token::softhsm::{MODULE, SoftHsmHub};
use yiqian_token::{Pin, TokenReader};

const FACTORY_SO_PIN: &str = "12345678";
const MODEL: &str = "ePass2003";

/// A valid resident ID number (GB 11643 check digit) of a man (odd sequence) numbered `n`.
fn id_number(n: u32) -> String {
    let body = format!("11010119900307{:03}", 2 * n + 1);
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body.bytes().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

/// `n` approved orders of different applicants: (applicant token, order number, phone).
async fn approved_orders(h: &Harness, first: u32, n: u32) -> Vec<(String, String, String)> {
    let reviewer = staff(Role::Reviewer, "reviewer");
    let mut out = Vec::new();
    for i in first..first + n {
        let phone = format!("1380013{:04}", 8000 + i);
        let token = h.login(&phone).await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let m = Materials { id_number: id_number(i), ..Materials::default() };
        assert_eq!(h.complete_materials_with(&token, &id, &phone, m).await["state"], "submitted");
        h.server.app.approve_application(&reviewer, &id).await.unwrap();
        out.push((token, id, phone));
    }
    out
}

/// The station on this machine: its credential file and the hub it sees.
struct Station {
    credential: PathBuf,
    hub_conf: PathBuf,
}

impl Station {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_yiqian"));
        c.arg("station").args(args);
        if args.first() != Some(&"keys") {
            c.arg("--credential").arg(&self.credential);
        }
        c.env_remove("YIQIAN_CONFIG")
            .env_remove("YIQIAN_DATABASE_URL")
            .env("SOFTHSM2_CONF", &self.hub_conf)
            .env(yiqian::ukey::FACTORY_SO_PIN_VARIABLE, FACTORY_SO_PIN);
        c
    }

    fn run_args(batch: &str, keys: &[String]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--batch", batch, "--reader", "pkcs11", "--module", MODULE]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        for k in keys {
            args.extend(["--key".to_owned(), k.clone()]);
        }
        args
    }

    /// Runs the station on a batch to the end; returns success and its output.
    async fn run(&self, batch: &str, keys: &[String]) -> (bool, String) {
        let args = Self::run_args(batch, keys);
        let mut command = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

async fn order_state(h: &Harness, id: &str) -> OrderState {
    stored_order(h, id).await.order.state
}

/// Every key in the hub, as the test's own reader sees it.
fn hub_reader() -> Pkcs11TokenReader {
    Pkcs11TokenReader::open(Pkcs11ReaderConfig {
        module: MODULE.into(),
        factory_so_pin: None,
        accept_uninitialised: false,
    })
    .unwrap()
}

/// For each order: exactly one key recorded, personalised, its certificate on hold; every
/// other certificate of the order revoked as superseded.
async fn assert_issued_once(h: &Harness, orders: &[String]) {
    let certificates = h.server.app.store().certificates(10_000).await.unwrap();
    for id in orders {
        assert_eq!(order_state(h, id).await, OrderState::Issued, "order {id}");
        let order = OrderId::parse(id).unwrap();
        let tokens = h.server.app.store().read().await.unwrap().tokens_of(&order).await.unwrap();
        assert_eq!(tokens.len(), 1, "one key for {id}: {tokens:?}");
        let token = &tokens[0];
        assert_eq!((token.state, token.reader.as_str()), (TokenState::Personalised, "pkcs11"));
        let mine: Vec<_> = certificates.iter().filter(|c| c.order_id.as_deref() == Some(id.as_str())).collect();
        for c in &mine {
            if c.serial == token.certificate_serial {
                assert_eq!(c.status, CertificateStatus::Hold, "the key's certificate waits for activation");
            } else {
                assert_eq!(c.status, CertificateStatus::Revoked, "certificate {} of {id} names no key", c.serial);
                assert_eq!(c.reason, Some(yiqian_pki::RevocationReason::Superseded.to_string()), "{c:?}");
            }
        }
    }
}

/// For each order: its key in the hub carries the order number, its certificate and the chain.
async fn assert_on_keys(h: &Harness, reader: &Pkcs11TokenReader, orders: &[String]) {
    for id in orders {
        let order = OrderId::parse(id).unwrap();
        let token = h.server.app.store().read().await.unwrap().tokens_of(&order).await.unwrap().remove(0);
        let key = reader.present().unwrap().into_iter().find(|k| k.serial == token.serial).unwrap();
        assert_eq!(key.label, *id, "the key carries its order number");
        let on_key = reader.open(&token.serial).unwrap().certificates().unwrap();
        let stored = h.server.app.store().certificate(&token.certificate_serial).await.unwrap().unwrap();
        assert_eq!(on_key.first(), Some(&stored.der), "the order's certificate is on the key");
        assert_eq!(on_key.len(), 3, "then the issuing CA and the root");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_personalises_keys_in_parallel_survives_a_kill_and_is_revocable() {
    if let Err(why) = SoftHsmHub::available() {
        assert!(std::env::var("YIQIAN_REQUIRE_SOFTHSM").as_deref() != Ok("1"), "YIQIAN_REQUIRE_SOFTHSM=1: {why}");
        eprintln!("SKIPPED: the station test needs SoftHSM2: {why}");
        return;
    }
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = SoftHsmHub::create(hub_dir.path()).unwrap();
    for _ in 0..7 {
        hub.add_key(MODEL, FACTORY_SO_PIN, "11111111").unwrap();
    }
    // SAFETY: the only test in this binary; SoftHSM2 reads the variable at C_Initialize.
    unsafe { std::env::set_var("SOFTHSM2_CONF", hub.conf()) };

    // The server keeps its own (software) reader: the keys are at the station.
    let h = start_configured(Backend::Sqlite, false, |c| {
        c.ca_algorithm = "p256".into();
        c.sandbox_face_check = "pass".into();
    })
    .await;
    let fulfilment = console_login(&h, "zhao.min", "fulfilment").await;
    let member = StaffMember {
        id: String::new(),
        name: yiqian_domain::staff::StaffName::parse("zhao.min").unwrap(),
        role: Role::Fulfilment,
    };
    let member = {
        let list = h.server.app.operator_list_staff().await.unwrap();
        let me = list.iter().find(|s| s.name == member.name).unwrap();
        StaffMember { id: me.id.clone(), ..member }
    };

    // Enrolment: name, password and a code of the next time step (the login used this one).
    let station = Station { credential: hub_dir.path().join("station.json"), hub_conf: hub.conf().to_owned() };
    let code =
        yiqian_app::staff::totp_code(&fulfilment.totp_secret, h.server.app.now() + chrono::Duration::seconds(30))
            .unwrap();
    let mut enrol = station
        .command(&["enrol", "--server", &h.base, "--name", "制证室-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(enrol.stdin.take().unwrap(), "zhao.min\n{}\n{code}\n", fulfilment.password).unwrap();
    let out = tokio::task::spawn_blocking(move || enrol.wait_with_output().unwrap()).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("工作站 制证室-1 已登记"), "{text}");
    let file = std::fs::read_to_string(&station.credential).unwrap();
    assert!(!file.contains(&fulfilment.password), "no password in the credential file");

    // The keys in the hub, as the station lists them. (This process opens the hub only at
    // the end: SoftHSM2 keeps a key's PIN state from when a process first loads it.)
    let mut keys = station.command(&["keys", "--reader", "pkcs11", "--module", MODULE]);
    let out = tokio::task::spawn_blocking(move || keys.output().unwrap()).await.unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && listing.contains("共 7 个UKEY"), "{listing}");
    let serials: Vec<String> =
        listing.lines().filter(|l| l.contains(MODEL)).map(|l| l.split('\t').next().unwrap().to_owned()).collect();
    assert_eq!(serials.len(), 7, "{listing}");
    assert!(listing.lines().filter(|l| l.contains(MODEL)).all(|l| l.ends_with("空白")), "{listing}");

    // 1. Three keys in parallel from one batch.
    let first = approved_orders(&h, 1, 3).await;
    let ids: Vec<String> = first.iter().map(|(_, id, _)| id.clone()).collect();
    let batch = h.server.app.start_issuance_batch(&member, &ids, PersonalisedAt::Station).await.unwrap();
    let (ok, out) = station.run(&batch, &serials[0..3]).await;
    assert!(ok, "{out}");
    assert_eq!(out.matches("完成 YQ").count(), 3, "{out}");
    assert!(out.contains("发现 3 个UKEY,并行制证"), "{out}");
    assert!(out.contains(&format!("批次 {batch} 已完成 3/3")), "{out}");
    for pin_like in [FACTORY_SO_PIN, "11111111"] {
        assert!(!out.contains(pin_like), "no PIN in the station's output");
    }
    assert_issued_once(&h, &ids).await;
    {
        // Parallel: every key was claimed before the first was recorded.
        let mut tx = h.server.app.store().read().await.unwrap();
        let leases = tx.leases_of_batch(&batch).await.unwrap();
        assert_eq!(leases.len(), 3);
        let last_claim = leases.iter().map(|l| l.created_at).max().unwrap();
        let first_done = leases.iter().map(|l| l.updated_at).min().unwrap();
        assert!(last_claim < first_done, "the keys were personalised one after another: {leases:?}");
    }
    let progress = h.server.app.batch_progress(&member, &batch).await.unwrap();
    assert!(progress.is_complete());

    // 2. Killed mid-batch, then started again.
    let second = approved_orders(&h, 4, 3).await;
    let ids2: Vec<String> = second.iter().map(|(_, id, _)| id.clone()).collect();
    let batch2 = h.server.app.start_issuance_batch(&member, &ids2, PersonalisedAt::Station).await.unwrap();
    let args = Station::run_args(&batch2, &serials[3..6]);
    let mut child = station
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("签发证书") {
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        seen
    })
    .await
    .unwrap();
    assert!(seen.contains("签发证书"), "the station was killed mid-key: {seen}");
    let mut approved = 0;
    for id in &ids2 {
        if order_state(&h, id).await == OrderState::Approved {
            approved += 1;
        }
    }
    assert!(approved >= 1, "the kill came before the batch was done: {seen}");
    let (ok, out) = station.run(&batch2, &serials[3..6]).await;
    assert!(ok, "{out}");
    assert!(out.contains("已退回待制证"), "the restart gave the old leases up: {out}");
    assert_issued_once(&h, &ids2).await;
    let audit = h.server.app.store().audit_entries(1, 100_000).await.unwrap();
    let count = |action: &str| audit.iter().filter(|e| e.action == action).count();
    assert!(count("station.abandoned") >= 1);
    assert_eq!(count("token.personalised"), 6, "each order recorded once");
    assert!(
        audit
            .iter()
            .filter(|e| e.action == "token.personalised")
            .all(|e| e.actor == "staff:zhao.min" && e.detail.contains("\"station\":\"制证室-1\"")),
        "station actions are audited with the member of staff and the station"
    );
    match h.server.app.store().verify_audit().await.unwrap() {
        AuditVerdict::Intact { .. } => {}
        broken => panic!("{broken:?}"),
    }
    // The seventh key is still blank: a run with nothing left says so and touches nothing.
    let (ok, out) = station.run(&batch2, &serials[6..7]).await;
    assert!(ok, "{out}");
    assert!(out.contains("本批次已没有待制证的订单"), "{out}");

    // 3. The journey to 已激活 with a key made at the station.
    let (token, id, phone) = &first[0];
    h.server.app.ship_order(&member, id, "顺丰速运", "SF1234567890").await.unwrap();
    let order = OrderId::parse(id).unwrap();
    let code = {
        let mut tx = h.server.app.store().read().await.unwrap();
        tx.fulfilment(&order).await.unwrap().unwrap().activation_code
    };
    let base = format!("/api/v1/activation/{code}");
    h.post(Some(token), &format!("{base}/consent"), json!({"agreed": true})).await.ok();
    let challenge = h.post(Some(token), &format!("{base}/challenge"), json!({})).await.ok();
    let video = reqwest::multipart::Form::new()
        .text("challenge_id", challenge["challenge_id"].as_str().unwrap().to_owned())
        .part("video", reqwest::multipart::Part::bytes(mp4()).file_name("activation.mp4"));
    h.post_form(token, &format!("{base}/video"), video).await.ok();
    h.wait_for_state(token, id, "activated").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let sms = loop {
        if let Some(sms) = h.sms_containing(phone, "PIN码为").await {
            break sms;
        }
        assert!(Instant::now() < deadline, "no PIN SMS");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.inbox(phone).await.iter().filter(|(_, t)| t.contains("PIN码为")).count(), 1, "sent once");
    let digits: String = sms.split("PIN码为").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    let pin = Pin::parse(&digits).unwrap();
    let record = h.server.app.store().read().await.unwrap().tokens_of(&order).await.unwrap().remove(0);
    let stored = h.server.app.store().certificate(&record.certificate_serial).await.unwrap().unwrap();
    assert_eq!(stored.status, CertificateStatus::Active, "released at activation");
    let key_id = hex::decode(&record.key_id).unwrap();
    let reader = hub_reader();
    assert_on_keys(&h, &reader, &ids).await;
    assert_on_keys(&h, &reader, &ids2).await;
    let blank = reader.present().unwrap().into_iter().find(|k| k.serial == serials[6]).unwrap();
    assert_eq!(blank.label, MODEL, "a key with nothing left to do is left blank");
    let ukey = reader.open(&record.serial).unwrap();
    let signer = ukey.signer(&pin, &key_id).expect("the PIN from the SMS opens the key");
    let certificate = Certificate::from_der(&stored.der).unwrap();
    let spki = certificate.tbs_certificate().subject_public_key_info();
    assert_eq!(signer.public_key(), spki);
    verify(spki, Algorithm::P256, b"activated", &signer.sign(b"activated").unwrap(), "").unwrap();

    // 4. Revoked by an administrator: the station can do nothing more.
    let admin = staff(Role::Admin, "admin");
    let stations = h.server.app.list_stations(&admin).await.unwrap();
    assert_eq!(stations.len(), 1);
    assert_eq!((stations[0].record.name.as_str(), stations[0].staff_name.as_str()), ("制证室-1", "zhao.min"));
    h.server.app.revoke_station(&admin, &stations[0].record.id).await.unwrap();
    let (ok, out) = station.run(&batch2, &serials[6..7]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("已被管理员吊销"), "{out}");
    assert!(console_page_lists_revoked_station(&h).await);
}

/// The console's station list, as an administrator sees it, shows the revoked station.
async fn console_page_lists_revoked_station(h: &Harness) -> bool {
    let admin = console_login(h, "qian.li", "admin").await;
    let page = admin.get("/console/stations").await;
    assert_eq!(page.status, reqwest::StatusCode::OK, "{}", page.body);
    page.body.contains("制证室-1") && page.body.contains("已吊销") && page.body.contains("zhao.min")
}
