//! Activation (激活, PRODUCT.md §3): the applicant scans the QR code on the confirmation form,
//! reads the risk notice and ticks 本人已阅读并同意申请, then reads new digits in a face
//! video. A pass releases the certificate and sends the PIN at once; "needs review" shows
//! 已激活 and waits for a reviewer; a fail may be retried a limited number of times, then the
//! applicant goes to the counter.

use crate::apply::Actor;
use crate::materials::{FaceCheck, FaceVideoUpload, LivenessChallenge};
use crate::{App, AppError, in_tx};
use yiqian_domain::order::ActivationVerdict;
use yiqian_domain::{ApplicantId, Command, OrderState};
use yiqian_providers::identity::LivenessVerdict;
use yiqian_store::fulfilment::FulfilmentRecord;
use yiqian_store::orders::OrderRecord;

/// The material key of the activation's face video evidence.
pub(crate) const ACTIVATION: &str = "activation";
const ACTIVATION_FAILED: &str = "activation_failed";

/// Everything the activation page shows.
#[derive(Debug, Clone)]
pub struct ActivationView {
    /// The order.
    pub record: OrderRecord,
    /// Its fulfilment (activation code, shipment, consent, failures).
    pub fulfilment: FulfilmentRecord,
    /// Face checks left before the applicant must go to the counter.
    pub tries_left: i64,
}

impl ActivationView {
    /// Whether the applicant may verify now (shipped, notice accepted, tries left).
    pub fn can_verify(&self) -> bool {
        self.record.order.state == OrderState::Shipped
            && self.fulfilment.activation_consent_at.is_some()
            && self.tries_left > 0
    }

    /// Whether the PIN waits for a reviewer.
    pub fn pin_pending(&self) -> bool {
        self.record.order.state == OrderState::ActivationReview
    }
}

/// What [`App::receive_activation_video`] found.
pub enum ActivationVideo {
    /// The video is wanted: push it into this upload.
    Wanted(FaceVideoUpload),
    /// The order's activation video was taken already; nothing is wanted.
    AlreadySubmitted(Box<ActivationView>),
}

impl App {
    /// The activation page of the order whose QR code holds `code`. Only the applicant who
    /// applied (logged in with the same phone) can open it; to anyone else it does not exist.
    pub async fn activation_view(&self, applicant: &ApplicantId, code: &str) -> Result<ActivationView, AppError> {
        let mut tx = self.store().read().await?;
        self.activation_in(&mut tx, applicant, code).await
    }

    async fn activation_in(
        &self,
        tx: &mut yiqian_store::Tx,
        applicant: &ApplicantId,
        code: &str,
    ) -> Result<ActivationView, AppError> {
        let not_found = || AppError::NotFound("激活码");
        if code.len() != 24 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(not_found());
        }
        let fulfilment = tx.fulfilment_by_code(code).await?.ok_or_else(not_found)?;
        let record = tx.load_order(&fulfilment.order).await?;
        if &record.applicant != applicant {
            return Err(not_found());
        }
        let tries_left = (self.config().max_activation_failures - fulfilment.activation_failures).max(0);
        Ok(ActivationView { record, fulfilment, tries_left })
    }

    fn require_shipped(view: &ActivationView) -> Result<(), AppError> {
        match view.record.order.state {
            OrderState::Shipped => Ok(()),
            OrderState::ActivationReview | OrderState::Activated => Err(AppError::Conflict {
                code: "already_activated",
                message: "该证书已激活,无需重复操作".into(),
            }),
            _ => Err(AppError::Conflict {
                code: "not_shipped", message: "证书尚未寄出,收到UKEY后再扫码激活".into()
            }),
        }
    }

    fn require_tries(&self, view: &ActivationView) -> Result<(), AppError> {
        if view.tries_left > 0 {
            Ok(())
        } else {
            Err(AppError::Conflict {
                code: "activation_locked",
                message: format!(
                    "人脸验证失败次数已达上限,请携带身份证和UKEY到服务网点办理激活,或致电客服{}",
                    self.config().customer_service
                ),
            })
        }
    }

    /// Records that the applicant read the risk notice and ticked 本人已阅读并同意申请.
    pub async fn accept_activation_notice(
        &self,
        applicant: &ApplicantId,
        code: &str,
        agreed: bool,
    ) -> Result<ActivationView, AppError> {
        if !agreed {
            return Err(AppError::invalid("consent_required", "请先阅读风险提示并勾选“本人已阅读并同意申请”"));
        }
        in_tx!(self, |tx| {
            let view = self.activation_in(&mut tx, applicant, code).await?;
            Self::require_shipped(&view)?;
            if view.fulfilment.activation_consent_at.is_none() {
                tx.set_activation_consent(&view.record.order.id, self.now()).await?;
            }
            Ok(())
        })?;
        self.activation_view(applicant, code).await
    }

    /// New digits for the activation's face video.
    pub async fn activation_challenge(
        &self,
        applicant: &ApplicantId,
        code: &str,
    ) -> Result<LivenessChallenge, AppError> {
        let view = self.activation_view(applicant, code).await?;
        Self::require_shipped(&view)?;
        self.require_tries(&view)?;
        if view.fulfilment.activation_consent_at.is_none() {
            return Err(AppError::invalid("consent_required", "请先阅读风险提示并勾选“本人已阅读并同意申请”"));
        }
        self.issue_challenge(&view.record.order.id).await
    }

    /// Starts taking the activation's face video: the key must have shipped, tries must be
    /// left and the risk notice accepted. Push the video's pieces as they arrive, then hand it
    /// to [`App::submit_activation_upload`]. An order already activated (a double tap, a retry
    /// after a lost answer) wants no video: its view is the answer.
    pub async fn receive_activation_video(
        &self,
        applicant: &ApplicantId,
        code: &str,
    ) -> Result<ActivationVideo, AppError> {
        let view = self.activation_view(applicant, code).await?;
        if matches!(view.record.order.state, OrderState::ActivationReview | OrderState::Activated) {
            return Ok(ActivationVideo::AlreadySubmitted(Box::new(view)));
        }
        self.require_ready_for_video(&view)?;
        Ok(ActivationVideo::Wanted(self.face_video_upload(&view.record, "activation_video").await?))
    }

    fn require_ready_for_video(&self, view: &ActivationView) -> Result<(), AppError> {
        Self::require_shipped(view)?;
        self.require_tries(view)?;
        if view.fulfilment.activation_consent_at.is_none() {
            return Err(AppError::invalid("consent_required", "请先阅读风险提示并勾选“本人已阅读并同意申请”"));
        }
        Ok(())
    }

    /// Takes the activation's face video, whole (see [`App::receive_activation_video`] for
    /// one that arrives in pieces). Submitting again after the order was activated (a double
    /// tap, a retry after a lost answer) changes nothing and sends nothing.
    pub async fn submit_activation(
        &self,
        applicant: &ApplicantId,
        code: &str,
        challenge_id: &str,
        video: &[u8],
    ) -> Result<ActivationView, AppError> {
        let upload = match self.receive_activation_video(applicant, code).await? {
            ActivationVideo::AlreadySubmitted(view) => return Ok(*view),
            ActivationVideo::Wanted(upload) => upload.push_whole(video).await?,
        };
        self.submit_activation_upload(applicant, code, challenge_id, upload).await
    }

    /// Takes the activation's face video received by [`App::receive_activation_video`]. A
    /// video refused before it is recorded is removed from the store; one that arrives after
    /// the order was activated is not kept.
    pub async fn submit_activation_upload(
        &self,
        applicant: &ApplicantId,
        code: &str,
        challenge_id: &str,
        upload: FaceVideoUpload,
    ) -> Result<ActivationView, AppError> {
        let blob = upload.finish().await?;
        let view = self.or_discard(&blob, self.activation_view(applicant, code).await).await?;
        if matches!(view.record.order.state, OrderState::ActivationReview | OrderState::Activated) {
            // Another submission won the race: this video is not kept.
            self.discard_upload(&blob).await;
            return Ok(view);
        }
        let checked = async {
            self.require_ready_for_video(&view)?;
            self.check_face_video(&view.record, challenge_id, blob.clone()).await
        };
        let FaceCheck { challenge, blob, verdict, evidence } = self.or_discard(&blob, checked.await).await?;
        let order = view.record.order.id.clone();
        let verdict = match verdict {
            LivenessVerdict::Fail { reason, .. } => {
                let left = in_tx!(self, |tx| {
                    let now = self.now();
                    tx.insert_blob(&blob, now).await?;
                    tx.use_challenge(&challenge.id, now).await?;
                    tx.save_material(&order, ACTIVATION_FAILED, &evidence, now).await?;
                    let failures = tx.add_activation_failure(&order, now).await?;
                    Ok(self.config().max_activation_failures - failures)
                })?;
                let next = if left > 0 {
                    format!("还可尝试{left}次")
                } else {
                    "请携带身份证和UKEY到服务网点办理激活".into()
                };
                return Err(AppError::invalid("liveness_failed", format!("人脸验证未通过:{reason}。{next}")));
            }
            LivenessVerdict::Pass { .. } => ActivationVerdict::Pass,
            LivenessVerdict::NeedsReview { .. } => ActivationVerdict::NeedsReview,
        };
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = tx.load_order(&order).await?;
            if matches!(rec.order.state, OrderState::ActivationReview | OrderState::Activated) {
                // Another submission won the race; this one records nothing.
                return Ok(());
            }
            Self::use_challenge_once(&mut tx, &challenge.id, now).await?;
            tx.insert_blob(&blob, now).await?;
            tx.save_material(&order, ACTIVATION, &evidence, now).await?;
            self.apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::SubmitActivation { verdict })
                .await?;
            Ok(())
        })?;
        self.activation_view(applicant, code).await
    }
}
