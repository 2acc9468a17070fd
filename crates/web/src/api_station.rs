//! The station API (`/api/v1/station/…`): what a personalisation station calls, authorised by
//! its bearer credential with the role of the member of staff who enrolled it. The bodies are
//! [`yiqian_station::wire`]'s, shared with the station; the routes are listed with the others
//! in [`crate::api::routes`]; the rules live in `yiqian_app::station`.

use crate::WebState;
use crate::api::{ApiResult, Body, client_ip};
use crate::auth::session_token_in;
use crate::error::ApiError;
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::json;
use std::net::SocketAddr;
use yiqian_app::AppError;
use yiqian_app::counter::IdentityCheck;
use yiqian_app::issuance::BatchItemState;
use yiqian_app::station::{Completion, Station};
use yiqian_app::station_counter::CounterStart;
use yiqian_station::wire;
use yiqian_store::stations::LeaseService;
use yiqian_token::escrow::EscrowPublicKey;

/// An authenticated station (401 JSON otherwise).
pub struct ApiStation(pub Station);

impl FromRequestParts<WebState> for ApiStation {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        let credential = session_token_in(&parts.headers).ok_or(ApiError(AppError::Unauthorized))?;
        Ok(ApiStation(state.app.station_authenticate(&credential).await?))
    }
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `POST /api/v1/station/enrolment`: a member of staff signs a station in.
pub async fn enrol(
    State(s): State<WebState>,
    headers: HeaderMap,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(b): Body<wire::EnrolmentRequest>,
) -> ApiResult {
    let ip = client_ip(&s, &headers, &addr);
    let pending = s.app.station_enrol_password(&b.staff_name, &b.password, &ip).await?;
    let credential = s.app.station_enrol_code(&pending, &b.code, &ip, &b.station_name).await?;
    Ok(Json(wire::EnrolmentResponse {
        credential: credential.token,
        station_id: credential.station_id,
        expires_at: rfc3339(credential.expires_at),
    })
    .into_response())
}

/// `POST /api/v1/station/start`: a run starts.
pub async fn start(State(s): State<WebState>, ApiStation(station): ApiStation) -> ApiResult {
    started(s.app.station_start(&station).await?)
}

/// `GET /api/v1/station/info`: what the station is, without starting a run.
pub async fn info(State(s): State<WebState>, ApiStation(station): ApiStation) -> ApiResult {
    started(s.app.station_info(&station).await?)
}

fn started(start: yiqian_app::station::StationStart) -> ApiResult {
    Ok(Json(wire::StartResponse {
        station_id: start.station.id,
        station_name: start.station.name,
        staff_name: start.station.member.name.to_string(),
        expires_at: rfc3339(start.station.expires_at),
        escrow_public_key: start.escrow_public_key.to_base64(),
        algorithm: start.algorithm.to_string(),
        abandoned_keys: start.abandoned,
    })
    .into_response())
}

/// `POST /api/v1/station/batches/{batch}/claims`: the next order for a key.
pub async fn claim(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path(batch): Path<String>,
    Body(b): Body<wire::ClaimRequest>,
) -> ApiResult {
    let claim = s.app.station_claim(&station, &batch, &b.key_serial, &b.so_pin_sealed, &b.user_pin_sealed).await?;
    Ok(Json(wire::ClaimResponse {
        claim: claim.map(|c| wire::Claim {
            lease: c.lease,
            order: c.order.to_string(),
            algorithm: c.algorithm.to_string(),
            expires_at: rfc3339(c.expires_at),
        }),
    })
    .into_response())
}

/// `GET /api/v1/station/batches/{batch}`: where a batch stands.
pub async fn batch(State(s): State<WebState>, ApiStation(station): ApiStation, Path(batch): Path<String>) -> ApiResult {
    let p = s.app.batch_progress(&station.member, &batch).await?;
    let items = p
        .items
        .iter()
        .map(|(order, state)| {
            let (code, station) = match state {
                BatchItemState::Queued => ("queued", None),
                BatchItemState::AtStation(name) => ("at_station", Some(name.clone())),
                BatchItemState::Done => ("done", None),
                BatchItemState::Failed(_) => ("failed", None),
                BatchItemState::Skipped => ("skipped", None),
            };
            wire::BatchItem { order: order.to_string(), state: code.into(), station }
        })
        .collect();
    Ok(Json(wire::BatchResponse { batch: p.id.clone(), total: p.items.len(), finished: p.finished(), items })
        .into_response())
}

/// `POST /api/v1/station/leases/{lease}/certificate`: the certificate for the key's CSR.
pub async fn certify(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path(lease): Path<String>,
    Body(b): Body<wire::CertifyRequest>,
) -> ApiResult {
    let csr = B64.decode(b.csr.trim()).map_err(|_| ApiError::invalid("invalid_csr", "CSR须为base64编码的DER"))?;
    let issued = s.app.station_certify(&station, &lease, &csr).await?;
    Ok(Json(wire::CertifyResponse {
        certificate: B64.encode(&issued.certificate),
        chain: issued.chain.iter().map(|c| B64.encode(c)).collect(),
        serial: issued.serial,
    })
    .into_response())
}

/// `POST /api/v1/station/leases/{lease}/complete`: the key is written; record it.
pub async fn complete(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path(lease): Path<String>,
    Body(b): Body<wire::CompleteRequest>,
) -> ApiResult {
    let identity = b.identity.as_ref().map(identity_check);
    let completion = Completion { key_id: b.key_id.as_deref(), reader: &b.reader, identity: identity.as_ref() };
    let order = s.app.station_complete(&station, &lease, &completion).await?;
    Ok(Json(wire::CompleteResponse { order: order.to_string() }).into_response())
}

fn identity_check(i: &wire::IdentityCheck) -> IdentityCheck {
    IdentityCheck { id_number: i.id_number.clone(), document: i.document.clone(), note: i.note.clone() }
}

/// `POST /api/v1/station/counter/{order}/{service}`: a counter service with the key in hand.
pub async fn counter_start(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path((order, service)): Path<(String, String)>,
    Body(b): Body<wire::CounterStartRequest>,
) -> ApiResult {
    let service = match service.as_str() {
        "unlock-pin" => LeaseService::UnlockPin,
        "renew" => LeaseService::Renew,
        "reissue" => LeaseService::Reissue,
        _ => return Err(ApiError(AppError::NotFound("柜台业务"))),
    };
    let station_key = EscrowPublicKey::from_base64(&b.station_key)
        .map_err(|_| ApiError::invalid("invalid_station_key", "工作站公钥格式不正确"))?;
    let identity = identity_check(&b.identity);
    let start = CounterStart {
        service,
        identity: &identity,
        key_serial: &b.key_serial,
        so_pin_sealed: b.so_pin_sealed.as_deref(),
        user_pin_sealed: &b.user_pin_sealed,
        station_key: &station_key,
    };
    let started = s.app.station_counter_start(&station, &order, &start).await?;
    Ok(Json(wire::CounterStartResponse {
        lease: started.lease,
        algorithm: started.algorithm.to_string(),
        so_pin_sealed: started.so_pin_sealed,
        key_id: started.key_id,
    })
    .into_response())
}

/// `POST /api/v1/station/leases/{lease}/abandon`: the station gives the key up.
pub async fn abandon(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path(lease): Path<String>,
    Body(b): Body<wire::AbandonRequest>,
) -> ApiResult {
    s.app.station_abandon(&station, &lease, &b.reason).await?;
    Ok(Json(json!({})).into_response())
}

/// `POST /api/v1/station/keys/{serial}/recovery`: a half-personalised key's SO PIN, sealed
/// to the station's one-time key.
pub async fn recover(
    State(s): State<WebState>,
    ApiStation(station): ApiStation,
    Path(serial): Path<String>,
    Body(b): Body<wire::RecoveryRequest>,
) -> ApiResult {
    let key = EscrowPublicKey::from_base64(&b.station_key)
        .map_err(|_| ApiError::invalid("invalid_station_key", "工作站公钥格式不正确"))?;
    let sealed = s.app.station_recover_key(&station, &serial, &key).await?;
    Ok(Json(wire::RecoveryResponse { so_pin_sealed: sealed }).into_response())
}
