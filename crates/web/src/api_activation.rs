//! The applicant's side after shipping, in the JSON API: activation of the UKEY (the risk
//! notice, new digits, the face video; PRODUCT.md §3) and the e-invoice of an activated order
//! (申请开票, its state and PDF; §1.12). The routes are listed with the others in
//! [`crate::api::routes`]; the rules live in the application.

use crate::WebState;
use crate::api::{ApiResult, Body, StreamedUpload, read_face_video};
use crate::auth::ApiApplicant;
use crate::views::{ActivationPage, activation_detail, activation_page, invoice_detail};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;
use yiqian_app::AppError;
use yiqian_app::activation::ActivationVideo;
use yiqian_domain::invoice::InvoiceForm;

/// `GET /api/v1/activation/{code}`: where the activation of the order behind `code` is.
pub async fn activation(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(code): Path<String>,
) -> ApiResult {
    Ok(Json(activation_detail(&s.app.activation_view(&a, &code).await?)).into_response())
}

/// The body of the consent: the ticked 本人已阅读并同意申请.
#[derive(Deserialize)]
pub struct ConsentBody {
    #[serde(default)]
    agreed: bool,
}

/// `POST /api/v1/activation/{code}/consent`: 本人已阅读并同意申请.
pub async fn consent(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(code): Path<String>,
    Body(b): Body<ConsentBody>,
) -> ApiResult {
    let view = s.app.accept_activation_notice(&a, &code, b.agreed).await?;
    Ok(Json(activation_detail(&view)).into_response())
}

/// `POST /api/v1/activation/{code}/challenge`: new digits to read in the face video.
pub async fn challenge(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(code): Path<String>,
) -> ApiResult {
    let c = s.app.activation_challenge(&a, &code).await?;
    Ok(Json(json!({"challenge_id": c.id, "digits": c.digits, "expires_in_seconds": c.expires_in_seconds}))
        .into_response())
}

/// `POST /api/v1/activation/{code}/video`: the face video; on an answer the applicant goes to
/// the result page.
pub async fn video(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(code): Path<String>,
    multipart: StreamedUpload,
) -> ApiResult {
    let view = match s.app.receive_activation_video(&a, &code).await? {
        ActivationVideo::AlreadySubmitted(view) => *view,
        ActivationVideo::Wanted(upload) => {
            let (challenge, upload) = read_face_video(multipart, upload).await?;
            s.app.submit_activation_upload(&a, &code, &challenge, upload).await?
        }
    };
    let mut out = activation_detail(&view);
    out["next_url"] = json!(activation_page(&view.fulfilment.activation_code, ActivationPage::Done));
    Ok(Json(out).into_response())
}

/// `GET /api/v1/orders/{id}/invoice`: the order's invoice (404 when none was requested).
pub async fn invoice(State(s): State<WebState>, ApiApplicant(a): ApiApplicant, Path(id): Path<String>) -> ApiResult {
    let invoice = s.app.invoice_of(&a, &id).await?.ok_or(AppError::NotFound("发票"))?;
    Ok(Json(invoice_detail(&invoice)).into_response())
}

/// `POST /api/v1/orders/{id}/invoice`: 申请开票; answers the invoice and the order page.
pub async fn request_invoice(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
    Body(form): Body<InvoiceForm>,
) -> ApiResult {
    let invoice = s.app.request_invoice(&a, &id, &form).await?;
    let mut out = invoice_detail(&invoice);
    out["next_url"] = json!(format!("/orders/{}", invoice.order));
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `GET /api/v1/orders/{id}/invoice.pdf`: the issued invoice, as a download.
pub async fn invoice_pdf(
    State(s): State<WebState>,
    ApiApplicant(a): ApiApplicant,
    Path(id): Path<String>,
) -> ApiResult {
    let pdf = s.app.invoice_pdf(&a, &id).await?;
    // `id` named an order of this applicant, so it is a plain order number (letters, digits,
    // `-`, `_`): nothing to escape in the header.
    let disposition = format!("attachment; filename=\"invoice-{id}.pdf\"");
    let headers = [
        (header::CONTENT_TYPE, "application/pdf".to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::CONTENT_LENGTH, pdf.size().to_string()),
    ];
    Ok((headers, crate::download::whole_body(pdf)).into_response())
}
