//! The station API's leases against the application with a manual clock (no keys needed: the
//! CSR is made by openssl): a station that goes silent — killed, or cut off from the server —
//! loses its order after the lease time, and the certificate issued for it is revoked; the
//! silent station's late completion is refused; the order is issued once, by the station that
//! took it next; a key given up goes back to the queue. Also the API's refusals: a batch the server personalises, another station's
//! lease, PINs not sealed at the station, a CSR that does not name the order, a role that
//! does not work at a station.

mod common;

use common::station::approved_orders;
use common::*;
use yiqian_app::AppError;
use yiqian_app::station::{Completion, Station};
use yiqian_domain::OrderState;
use yiqian_domain::staff::{Role, policy};
use yiqian_store::Backend;
use yiqian_store::certificates::CertificateStatus;
use yiqian_store::fulfilment::PersonalisedAt;
use yiqian_token::Pin;
use yiqian_token::escrow::PinRole;

/// Enrols a station for a new account of `role` (password, then a code), in-process.
async fn station(h: &Harness, name: &str, role: Role) -> Station {
    let app = &h.server.app;
    app.add_staff(name, role, CONSOLE_PASSWORD).await.unwrap();
    // The first login enrols the authenticator.
    let stage = app.staff_login_password(name, CONSOLE_PASSWORD, "127.0.0.1").await.unwrap();
    let yiqian_app::staff::StaffLoginStage::NeedsEnrolment { pending_token, secret_base32, .. } = stage else {
        panic!("a new account enrols first")
    };
    app.staff_enrol_totp(&pending_token, &h.totp_now(&secret_base32), "127.0.0.1").await.unwrap();
    h.advance(chrono::Duration::seconds(30));
    let pending = app.station_enrol_password(name, CONSOLE_PASSWORD, "127.0.0.1").await.unwrap();
    let credential = app.station_enrol_code(&pending, &h.totp_now(&secret_base32), "127.0.0.1", name).await.unwrap();
    app.station_authenticate(&credential.token).await.unwrap()
}

fn sealed(h: &Harness, serial: &str, role: PinRole) -> String {
    let digits = if role == PinRole::So { 16 } else { 8 };
    h.server.app.escrow_public_key().seal(&Pin::random(digits), serial, role).unwrap()
}

fn csr_naming(cn: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    openssl_csr(dir.path(), "sm2", cn);
    std::fs::read(dir.path().join("csr.pem")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_station_loses_its_order_and_its_certificate() {
    let h = start_with(Backend::Sqlite, true).await;
    let app = &h.server.app;
    app.add_staff("li.wei", Role::Reviewer, CONSOLE_PASSWORD).await.unwrap();
    let reviewer = app.station_enrol_password("li.wei", CONSOLE_PASSWORD, "127.0.0.1").await;
    assert!(matches!(reviewer, Err(AppError::Forbidden)), "a reviewer does not work at a station");
    let first = station(&h, "zhao.min", Role::Fulfilment).await;
    let second = station(&h, "qian.li", Role::Fulfilment).await;
    let orders: Vec<String> = approved_orders(&h, 1, 1).await.into_iter().map(|(_, id, _)| id).collect();
    let maker = staff(Role::Fulfilment, "zhao.min");

    // A batch the server personalises is not for stations.
    let server_batch = app.start_issuance_batch(&maker, &orders, PersonalisedAt::Server).await.unwrap();
    let refused = app
        .station_claim(&first, &server_batch, "K1", &sealed(&h, "K1", PinRole::So), &sealed(&h, "K1", PinRole::User))
        .await;
    assert!(matches!(refused, Err(AppError::Conflict { code: "batch_not_for_stations", .. })), "{refused:?}");
    let batch = app.start_issuance_batch(&maker, &orders, PersonalisedAt::Station).await.unwrap();
    let plain = app.station_claim(&first, &batch, "K1", "123456", &sealed(&h, "K1", PinRole::User)).await;
    assert!(matches!(plain, Err(AppError::Invalid { code: "invalid_sealed_pin", .. })), "PINs travel sealed only");

    // The first station takes the order and has its certificate issued, then goes silent.
    let claim = app
        .station_claim(&first, &batch, "K1", &sealed(&h, "K1", PinRole::So), &sealed(&h, "K1", PinRole::User))
        .await
        .unwrap()
        .unwrap();
    let mismatch = app.station_certify(&first, &claim.lease, &csr_naming("张三")).await;
    assert!(matches!(mismatch, Err(AppError::Invalid { code: "csr_subject_mismatch", .. })), "{mismatch:?}");
    let other = app.station_certify(&second, &claim.lease, &csr_naming(claim.order.as_str())).await;
    assert!(matches!(other, Err(AppError::NotFound(_))), "another station's lease");
    let issued = app.station_certify(&first, &claim.lease, &csr_naming(claim.order.as_str())).await.unwrap();
    assert_eq!(app.store().certificate(&issued.serial).await.unwrap().unwrap().status, CertificateStatus::Hold);
    let none = app
        .station_claim(&second, &batch, "K2", &sealed(&h, "K2", PinRole::So), &sealed(&h, "K2", PinRole::User))
        .await
        .unwrap();
    assert!(none.is_none(), "the order is taken");

    // After the lease time, the next claim gives the silent lease up and takes the order.
    h.advance(chrono::Duration::minutes(policy::STATION_LEASE_MINUTES) + chrono::Duration::seconds(1));
    let again = app
        .station_claim(&second, &batch, "K2", &sealed(&h, "K2", PinRole::So), &sealed(&h, "K2", PinRole::User))
        .await
        .unwrap()
        .expect("the order came back");
    assert_eq!(again.order, claim.order);
    let revoked = app.store().certificate(&issued.serial).await.unwrap().unwrap();
    assert_eq!(revoked.status, CertificateStatus::Revoked, "no certificate for a key nobody holds");
    let completion = Completion { key_id: Some("0011223344556677"), reader: "pkcs11", identity: None };
    let late = app.station_complete(&first, &claim.lease, &completion).await;
    assert!(matches!(late, Err(AppError::Conflict { code: "lease_ended", .. })), "{late:?}");

    // The second station finishes; completing again answers the same.
    app.station_certify(&second, &again.lease, &csr_naming(again.order.as_str())).await.unwrap();
    app.station_complete(&second, &again.lease, &completion).await.unwrap();
    app.station_complete(&second, &again.lease, &completion).await.unwrap();
    assert_eq!(stored_order(&h, again.order.as_str()).await.order.state, OrderState::Issued);
    let tokens = app.store().read().await.unwrap().tokens_of(&again.order).await.unwrap();
    assert_eq!(tokens.len(), 1, "issued once");
    assert_eq!(tokens[0].serial, "K2");
    // A station that gives a key up (pulled out, failed): the order goes back, the certificate
    // is revoked; giving it up again changes nothing.
    let orders2: Vec<String> = approved_orders(&h, 2, 1).await.into_iter().map(|(_, id, _)| id).collect();
    let batch2 = app.start_issuance_batch(&maker, &orders2, PersonalisedAt::Station).await.unwrap();
    let pulled = app
        .station_claim(&first, &batch2, "K3", &sealed(&h, "K3", PinRole::So), &sealed(&h, "K3", PinRole::User))
        .await
        .unwrap()
        .unwrap();
    let issued = app.station_certify(&first, &pulled.lease, &csr_naming(pulled.order.as_str())).await.unwrap();
    // As if the server had stopped between issuing a certificate and recording it on the lease.
    let unrecorded = app
        .issue_certificate(&yiqian_app::authority::IssueRequest {
            csr: csr_naming(pulled.order.as_str()),
            csr_common_name: Some(pulled.order.to_string()),
            name: Some("张三".into()),
            id_number: common::station::id_number(2),
            hold: true,
            order: Some(pulled.order.to_string()),
            actor: "system".into(),
        })
        .await
        .unwrap();
    app.station_abandon(&first, &pulled.lease, "UKEY已拔出").await.unwrap();
    let status = app.store().certificate(&unrecorded.serial).await.unwrap().unwrap().status;
    assert_eq!(status, CertificateStatus::Revoked, "nor an unrecorded one");
    app.station_abandon(&first, &pulled.lease, "again").await.unwrap();
    let revoked = app.store().certificate(&issued.serial).await.unwrap().unwrap();
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    assert_eq!(stored_order(&h, pulled.order.as_str()).await.order.state, OrderState::Approved, "back to 待制证");
    let progress = app.batch_progress(&maker, &batch2).await.unwrap();
    assert_eq!(progress.items[0].1, yiqian_app::issuance::BatchItemState::Queued);

    // The key the first station left half-done can be initialised again; the finished one not.
    let one_time = yiqian_token::escrow::EscrowKeyPair::derive(&[7; 32]);
    let so = app.station_recover_key(&second, "K1", one_time.public_key()).await.unwrap();
    assert_eq!(one_time.open(&so, "K1", PinRole::So).unwrap().expose().len(), 16);
    let done = app.station_recover_key(&second, "K2", one_time.public_key()).await;
    assert!(matches!(done, Err(AppError::Conflict { code: "key_personalised", .. })), "{done:?}");
    let unknown = app.station_recover_key(&second, "K9", one_time.public_key()).await;
    assert!(matches!(unknown, Err(AppError::Conflict { code: "key_unknown", .. })), "{unknown:?}");
}
