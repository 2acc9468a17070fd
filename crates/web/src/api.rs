//! The JSON API `/api/v1`: every applicant operation, for the pages' scripts and for other
//! clients (a WeChat mini-program). Its OpenAPI document is served at
//! `/api/v1/openapi.json`. Every route is listed in [`routes`]; the handlers of activation
//! and e-invoices are in [`crate::api_activation`], those of personalisation stations in
//! [`crate::api_station`].

use crate::auth::{ApiApplicant, session_cookie, session_token};
use crate::error::{ApiError, too_large};
use crate::views::{next_path, order_detail, order_summary};
use crate::{OPENAPI_JSON, WebState};
use crate::{api_activation, api_station};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use yiqian_app::materials::FaceVideoUpload;
use yiqian_app::payments::PayerRoute;
use yiqian_domain::applicant::{AddressForm, IdCardForm};

/// The API's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON) }))
        .route("/api/v1/product", get(product))
        .route(
            "/api/v1/network-probe",
            get(network_probe).post(network_probe_upload).layer(DefaultBodyLimit::max(NETWORK_PROBE_LIMIT)),
        )
        .route("/api/v1/session/code", post(send_login_code))
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/orders", get(list_orders).post(create_order))
        .route("/api/v1/me/export", get(export_personal_data))
        .route("/api/v1/orders/{id}", get(order))
        .route("/api/v1/orders/{id}/payment-status", get(payment_status))
        .route("/api/v1/orders/{id}/cancel", post(cancel))
        .route("/api/v1/orders/{id}/payments", post(start_payment))
        .route("/api/v1/orders/{id}/refund", post(refund))
        .route("/api/v1/orders/{id}/phone/code", post(send_bind_code))
        .route("/api/v1/orders/{id}/phone", post(bind_phone))
        .route("/api/v1/orders/{id}/phone/login", post(bind_login_phone))
        .route("/api/v1/orders/{id}/id-card/photos", post(id_photos).layer(crate::limits::upload(PHOTOS_LIMIT)))
        .route("/api/v1/orders/{id}/id-card", post(confirm_id_card))
        .route("/api/v1/orders/{id}/liveness/challenge", post(liveness_challenge))
        .route("/api/v1/orders/{id}/liveness", post(liveness_video).layer(crate::limits::upload(VIDEO_LIMIT)))
        .route("/api/v1/orders/{id}/signature", post(signature).layer(crate::limits::upload(SIGNATURE_LIMIT)))
        .route("/api/v1/orders/{id}/address", post(address))
        .route("/api/v1/orders/{id}/submit", post(submit))
        .route("/api/v1/orders/{id}/invoice", get(api_activation::invoice).post(api_activation::request_invoice))
        .route("/api/v1/orders/{id}/invoice.pdf", get(api_activation::invoice_pdf))
        .route("/api/v1/activation/{code}", get(api_activation::activation))
        .route("/api/v1/activation/{code}/consent", post(api_activation::consent))
        .route("/api/v1/activation/{code}/challenge", post(api_activation::challenge))
        .route("/api/v1/activation/{code}/video", post(api_activation::video).layer(crate::limits::upload(VIDEO_LIMIT)))
        .route("/api/v1/station/enrolment", post(api_station::enrol))
        .route("/api/v1/station/start", post(api_station::start))
        .route("/api/v1/station/info", get(api_station::info))
        .route("/api/v1/station/batches/{batch}", get(api_station::batch))
        .route("/api/v1/station/batches/{batch}/claims", post(api_station::claim))
        .route("/api/v1/station/leases/{lease}/certificate", post(api_station::certify))
        .route("/api/v1/station/leases/{lease}/complete", post(api_station::complete))
        .route("/api/v1/station/leases/{lease}/abandon", post(api_station::abandon))
        .route("/api/v1/station/keys/{serial}/recovery", post(api_station::recover))
        .route("/api/v1/station/counter/{order}/{service}", post(api_station::counter_start))
}

/// A JSON body whose parse errors are answered as typed API errors in Chinese.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large("body_too_large", "请求内容过大")),
            Err(e) => {
                // The parser's message may quote the submitted values: log only the status.
                tracing::debug!(status = %e.status(), "bad JSON body");
                Err(ApiError::invalid("invalid_body", "请求内容格式不正确").into_response())
            }
        }
    }
}

/// What an API handler answers.
pub type ApiResult = Result<Response, ApiError>;

/// The client's address for per-client limits: the connecting address, or the proxy's
/// `X-Real-IP` when the deployment says a proxy sets it.
pub(crate) fn client_ip(s: &WebState, headers: &HeaderMap, addr: &SocketAddr) -> String {
    let forwarded = s.trust_x_real_ip.then(|| headers.get("x-real-ip").and_then(|v| v.to_str().ok())).flatten();
    forwarded.map(|v| v.trim().to_owned()).unwrap_or_else(|| addr.ip().to_string())
}

async fn product(State(s): State<WebState>) -> Json<Value> {
    let p = &s.app.config().product;
    Json(json!({
        "code": p.code, "name": p.name, "price_fen": p.price, "price_yuan": p.price.yuan(),
        "validity_years": p.validity_years, "agreement_version": p.agreement_version,
        "payment_channels": ["wechat", "alipay"],
    }))
}

/// Largest body the upload-speed probe of the preparation page takes (the page sends 256 KiB).
pub const NETWORK_PROBE_LIMIT: usize = 512 * 1024;

/// The preparation page's reachability probe: a tiny answer, never cached, so its round trip
/// is the network's and the server's.
async fn network_probe(ApiApplicant(_): ApiApplicant) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(json!({"ok": true}))).into_response()
}

/// The preparation page's upload-speed probe: reads the body (random bytes, at most
/// [`NETWORK_PROBE_LIMIT`]), discards it and answers how many bytes arrived. Nothing is stored
/// or logged.
async fn network_probe_upload(
    ApiApplicant(_): ApiApplicant,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Response> {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    match body {
        Ok(bytes) => Ok((no_store, Json(json!({"received_bytes": bytes.len()}))).into_response()),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(too_large("probe_too_large", format!("测速数据过大,最多 {} KB", NETWORK_PROBE_LIMIT / 1024)))
        }
        Err(_) => Err(ApiError::invalid("upload_incomplete", "上传中断,请重试").into_response()),
    }
}

#[derive(Deserialize)]
struct PhoneBody {
    phone: String,
}

async fn send_login_code(
    State(s): State<WebState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Body(b): Body<PhoneBody>,
) -> ApiResult {
    let sent = s.app.send_login_code(&b.phone, &client_ip(&s, &headers, &addr)).await?;
    Ok(Json(json!({"retry_after_seconds": sent.retry_after_seconds})).into_response())
}

#[derive(Deserialize)]
struct LoginBody {
    phone: String,
    code: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login(State(s): State<WebState>, headers: HeaderMap, Body(b): Body<LoginBody>) -> ApiResult {
    let session = s.app.login(&b.phone, &b.code).await?;
    let secure = s.app.config().public_url.starts_with("https://");
    let cookie = session_cookie(&session.token, session.expires_in_seconds, secure);
    let body = json!({
        "token": session.token, "applicant": session.applicant, "expires_in_seconds": session.expires_in_seconds,
        "next_url": crate::auth::local_path(b.next.as_deref()),
    });
    // A WeChat openid authorised before this login is bound to the applicant now.
    if let Some(pending) = crate::auth::cookie(&headers, crate::wechat::PENDING_COOKIE) {
        s.app.bind_pending_wechat(&session.applicant, &pending).await?;
        let clear = format!("{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0", crate::wechat::PENDING_COOKIE);
        return Ok(([(header::SET_COOKIE, cookie), (header::SET_COOKIE, clear)], Json(body)).into_response());
    }
    Ok(([(header::SET_COOKIE, cookie)], Json(body)).into_response())
}

async fn logout(State(s): State<WebState>, req: Request) -> ApiResult {
    let (parts, _) = req.into_parts();
    if let Some(token) = session_token(&parts) {
        s.app.logout(&token).await?;
    }
    let cookie = session_cookie("", 0, false);
    Ok(([(header::SET_COOKIE, cookie)], Json(json!({"next_url": "/"}))).into_response())
}

async fn list_orders(State(s): State<WebState>, ApiApplicant(a): ApiApplicant) -> ApiResult {
    let orders = s.app.list_orders(&a).await?;
    Ok(Json(json!({"orders": orders.iter().map(|o| order_summary(&o.record)).collect::<Vec<_>>()})).into_response())
}

/// `GET /api/v1/me/export`: 导出我的个人资料, as a JSON file to keep.
async fn export_personal_data(State(s): State<WebState>, ApiApplicant(a): ApiApplicant) -> ApiResult {
    use yiqian_app::retention::{ErasureReason, kind_title};
    let export = s.app.export_personal_data(&a).await?;
    let orders: Vec<Value> = export
        .orders
        .iter()
        .map(|o| {
            let mut v = order_detail(&o.view);
            v["materials"] = Value::Object(o.materials.iter().cloned().collect());
            v["media"] = o
                .media
                .iter()
                .map(|b| {
                    let title = kind_title(&format!("blob:{}", b.kind)).to_owned();
                    json!({"kind": b.kind, "title": title, "content_type": b.content_type, "bytes": b.size})
                })
                .collect();
            v["certificates"] = o
                .certificates
                .iter()
                .map(|c| {
                    json!({"serial": c.serial, "status": c.status.code(), "not_before": c.not_before.to_rfc3339(), "not_after": c.not_after.to_rfc3339()})
                })
                .collect();
            v["erasure"] = o.erasure.as_ref().map_or(Value::Null, |e| {
                let reason = ErasureReason::from_code(&e.reason).map_or(e.reason.as_str(), |r| r.title());
                json!({"erased_at": e.erased_at.to_rfc3339(), "reason": reason})
            });
            v
        })
        .collect();
    let body = json!({
        "exported_at": export.exported_at.to_rfc3339(),
        "phone": export.phone.as_str(),
        "orders": orders,
        "note": "这是宜签系统中保存的您的个人资料副本。照片、视频和签名图片按类别和大小列出,如需副本请联系客服。",
    });
    let day = export.exported_at.with_timezone(&yiqian_app::china_time()).format("%Y%m%d");
    let headers = [
        (header::CONTENT_TYPE, "application/json; charset=utf-8".to_owned()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"yiqian-personal-data-{day}.json\"")),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ];
    let text =
        serde_json::to_string_pretty(&body).map_err(|e| ApiError(yiqian_app::AppError::Internal(e.to_string())))?;
    Ok((headers, text).into_response())
}

#[derive(Deserialize)]
struct CreateOrderBody {
    agreement_version: String,
    #[serde(default)]
    accepted: bool,
}

async fn create_order(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Body(b): Body<CreateOrderBody>,
) -> ApiResult {
    let rec = s.app.create_order(&a, &b.agreement_version, b.accepted).await?;
    Ok((axum::http::StatusCode::CREATED, Json(order_summary(&rec))).into_response())
}

async fn order(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    let view = s.app.order_view(&a, &id).await?;
    Ok(Json(order_detail(&view)).into_response())
}

/// The order, after asking the gateway about payments whose notification has not arrived
/// (what 支付结果 polls).
async fn payment_status(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    s.app.check_open_payments(&a, &id).await?;
    order(State(s), ApiApplicant(a), Path(id)).await
}

fn summary(rec: &yiqian_store::orders::OrderRecord) -> ApiResult {
    Ok(Json(order_summary(rec)).into_response())
}

async fn cancel(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    summary(&s.app.cancel_order(&a, &id).await?)
}

#[derive(Deserialize)]
struct PaymentBody {
    channel: String,
}

/// Starts a payment. The answer is `{"kind":"redirect","pay_url":…}` (open the page) or
/// `{"kind":"wechat_jsapi","params":{…},"return_url":…}` (call WeChat's in-app cashier), or,
/// inside WeChat before the applicant authorised our official account,
/// `{"kind":"authorize","authorize_url":…}` (get the openid first, then pay again).
async fn start_payment(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<PaymentBody>,
) -> ApiResult {
    let in_wechat = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("MicroMessenger"));
    let payer = match s.app.payer_for(&a, &b.channel, in_wechat, client_ip(&s, &headers, &addr)).await? {
        PayerRoute::Pay(payer) => payer,
        PayerRoute::AuthoriseFirst => {
            let next = format!("/orders/{id}");
            let authorize_url = format!("/wechat/login?next={}", crate::auth::urlencode(&next));
            return Ok(Json(json!({"kind": "authorize", "authorize_url": authorize_url})).into_response());
        }
    };
    let start = s.app.start_payment(&a, &id, &b.channel, payer).await?;
    Ok(Json(json!(start)).into_response())
}

async fn refund(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    let rec = s.app.request_refund(&a, &id).await?;
    let mut out = order_summary(&rec);
    out["next_url"] = json!(format!("/orders/{}", rec.order.id));
    Ok(Json(out).into_response())
}

async fn send_bind_code(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<PhoneBody>,
) -> ApiResult {
    let sent = s.app.send_bind_code(&a, &id, &b.phone, &client_ip(&s, &headers, &addr)).await?;
    Ok(Json(json!({"retry_after_seconds": sent.retry_after_seconds})).into_response())
}

#[derive(Deserialize)]
struct BindBody {
    phone: String,
    code: String,
}

async fn bind_phone(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    Body(b): Body<BindBody>,
) -> ApiResult {
    summary(&s.app.bind_phone(&a, &id, &b.phone, &b.code).await?)
}

/// Binds the phone the applicant logged in with, proven by that login (no second SMS).
async fn bind_login_phone(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
) -> ApiResult {
    summary(&s.app.bind_login_phone(&a, &id).await?)
}

/// A multipart upload whose rejection (not multipart at all) is a typed API error.
pub struct Upload(Multipart);

impl<S: Send + Sync> FromRequest<S> for Upload {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Multipart::from_request(req, state)
            .await
            .map(Upload)
            .map_err(|_| ApiError::invalid("upload_not_multipart", "请以 multipart/form-data 格式上传文件"))
    }
}

/// Reads a multipart upload into named parts; a body over the limit is a clear error.
pub async fn read_parts(Upload(mut multipart): Upload) -> Result<HashMap<String, Vec<u8>>, ApiError> {
    let mut parts = HashMap::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(parts),
            Err(e) => return Err(upload_error(e)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(upload_error)?;
        parts.insert(name, bytes.to_vec());
    }
}

/// A multipart upload read as a stream: the parser is handed one piece of the body at a time,
/// so what it holds stays about one piece however fast the client sends (given the whole body
/// at once, it would read everything the connection has ready).
pub struct StreamedUpload(multer::Multipart<'static>);

impl<S: Send + Sync> FromRequest<S> for StreamedUpload {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        use axum::RequestExt;
        let not_multipart = || ApiError::invalid("upload_not_multipart", "请以 multipart/form-data 格式上传文件");
        let boundary = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| multer::parse_boundary(v).ok())
            .ok_or_else(not_multipart)?;
        let body = req.with_limited_body().into_body().into_data_stream();
        Ok(StreamedUpload(multer::Multipart::new(OnePieceAtATime { body, handed: false }, boundary)))
    }
}

/// A body stream that, after each piece, says "not yet" once (and asks to be polled again at
/// once), so a reader that drains whatever is ready takes one piece at a time.
struct OnePieceAtATime<B> {
    body: B,
    handed: bool,
}

impl<B: futures::Stream + Unpin> futures::Stream for OnePieceAtATime<B> {
    type Item = B::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.handed {
            self.handed = false;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.body).poll_next(cx);
        self.handed = matches!(next, std::task::Poll::Ready(Some(_)));
        next
    }
}

/// Reads a face-video upload: the `video` field piece by piece into `upload` (checked and
/// sealed into the store as it arrives, never whole in memory), `challenge_id` whole (a few
/// bytes); other fields are read past. Returns the challenge id and the upload; on any failure
/// the upload is given up.
pub async fn read_face_video(
    StreamedUpload(mut multipart): StreamedUpload,
    mut upload: FaceVideoUpload,
) -> Result<(String, FaceVideoUpload), ApiError> {
    let mut challenge: Option<String> = None;
    let mut video = false;
    let result: Result<(), ApiError> = async {
        while let Some(mut field) = multipart.next_field().await.map_err(streamed_upload_error)? {
            match field.name().unwrap_or_default() {
                "video" if !video => {
                    video = true;
                    while let Some(piece) = field.chunk().await.map_err(streamed_upload_error)? {
                        upload.push(&piece).await?;
                    }
                }
                "challenge_id" => {
                    let text = field.text().await.map_err(streamed_upload_error)?;
                    if text.len() > 256 {
                        return Err(ApiError::invalid("challenge_unknown", "验证码数字无效,请重新进入身份验证"));
                    }
                    challenge = Some(text);
                }
                // Other fields are read past, not kept.
                _ => while field.chunk().await.map_err(streamed_upload_error)?.is_some() {},
            }
        }
        Ok(())
    }
    .await;
    let missing = |message: &str| Err(ApiError::invalid("upload_missing", message.to_owned()));
    let outcome = match (result, challenge) {
        (Err(e), _) => Err(e),
        (Ok(()), _) if !video => missing("请录制读数视频"),
        (Ok(()), None) => missing("请先进入身份验证获取数字"),
        (Ok(()), Some(challenge)) => return Ok((challenge, upload)),
    };
    upload.abort().await;
    outcome
}

fn upload_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    upload_failed(e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE)
}

/// Why reading an upload failed: too large, or cut off.
fn upload_failed(too_large: bool) -> ApiError {
    if too_large {
        ApiError::invalid("upload_too_large", "文件过大,请重新拍摄后再试")
    } else {
        ApiError::invalid("upload_incomplete", "上传中断,请重试")
    }
}

/// [`upload_failed`] for the streamed parser: a body over the route's limit is too large.
fn streamed_upload_error(e: multer::Error) -> ApiError {
    let too_large = match &e {
        multer::Error::StreamReadFailed(inner) => {
            std::error::Error::source(inner.as_ref()).is_some_and(|s| s.to_string().contains("length limit"))
                || inner.to_string().contains("length limit")
        }
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => true,
        _ => false,
    };
    upload_failed(too_large)
}

/// The body of the ID card photos (two photos and the form's overhead).
const PHOTOS_LIMIT: usize = 2 * yiqian_domain::media::MAX_PHOTO_BYTES + crate::limits::FORM_OVERHEAD;
/// The body of a face video upload (application or activation).
pub const VIDEO_LIMIT: usize = yiqian_domain::media::MAX_VIDEO_BYTES + crate::limits::FORM_OVERHEAD;
/// The body of a signature: the image and its strokes (a few hundred KB at most).
const SIGNATURE_LIMIT: usize = yiqian_domain::media::MAX_SIGNATURE_BYTES + 1024 * 1024;

/// One named part of an upload, or a clear error saying what is missing.
pub fn part<'a>(parts: &'a HashMap<String, Vec<u8>>, name: &str, missing: &str) -> Result<&'a [u8], ApiError> {
    parts.get(name).map(Vec::as_slice).ok_or_else(|| ApiError::invalid("upload_missing", missing.to_owned()))
}

async fn id_photos(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    multipart: Upload,
) -> ApiResult {
    let parts = read_parts(multipart).await?;
    let front = part(&parts, "front", "请拍摄身份证人像面")?;
    let back = part(&parts, "back", "请拍摄身份证国徽面")?;
    let reading = s.app.upload_id_photos(&a, &id, front, back).await?;
    Ok(Json(json!({"ocr": reading})).into_response())
}

async fn confirm_id_card(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    Body(form): Body<IdCardForm>,
) -> ApiResult {
    summary(&s.app.confirm_id_card(&a, &id, &form).await?)
}

async fn liveness_challenge(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
) -> ApiResult {
    let c = s.app.liveness_challenge(&a, &id).await?;
    Ok(Json(json!({"challenge_id": c.id, "digits": c.digits, "expires_in_seconds": c.expires_in_seconds}))
        .into_response())
}

async fn liveness_video(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    multipart: StreamedUpload,
) -> ApiResult {
    let upload = s.app.receive_liveness_video(&a, &id).await?;
    let (challenge, upload) = read_face_video(multipart, upload).await?;
    summary(&s.app.submit_liveness_upload(&a, &id, &challenge, upload).await?)
}

async fn signature(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    multipart: Upload,
) -> ApiResult {
    let parts = read_parts(multipart).await?;
    let image = part(&parts, "image", "请在框内签名")?;
    let strokes = String::from_utf8_lossy(part(&parts, "strokes", "请在框内签名")?).into_owned();
    summary(&s.app.save_signature(&a, &id, image, &strokes).await?)
}

async fn address(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    Body(form): Body<AddressForm>,
) -> ApiResult {
    summary(&s.app.save_address(&a, &id, &form).await?)
}

async fn submit(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    let rec = s.app.submit_application(&a, &id).await?;
    let mut out = order_summary(&rec);
    out["next_url"] = json!(next_path(&rec));
    Ok(Json(out).into_response())
}
