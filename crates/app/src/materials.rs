//! The materials checklist, step by step: bind the phone, photograph and confirm the ID card,
//! read the digits in a face video, sign, give the address, submit (受理).
//!
//! Uploaded files are checked by their bytes, sealed and stored before the unit of work that
//! records them; a failed step leaves at most an unreferenced sealed blob, never a
//! half-written order.

use crate::apply::Actor;
use crate::sms_codes::CodePurpose;
use crate::{App, AppError, in_tx, new_id};
use serde_json::json;
use yiqian_domain::applicant::{AddressForm, IdCardForm, check_address, confirm_id_card};
use yiqian_domain::identity::MobileNumber;
use yiqian_domain::media::{IncomingVideo, check_photo, check_signature};
use yiqian_domain::{ApplicantId, Command, Step};
use yiqian_providers::identity::{CardSide, IdCardReading, LivenessVerdict};
use yiqian_store::blobs::BlobInfo;
use yiqian_store::orders::{Challenge, OrderRecord};

/// Draft key for ID card photos not yet confirmed.
const ID_PHOTOS: &str = "id_card_photos";

/// Checks that a signature PNG really decodes (it is printed on the confirmation form) and
/// is of a sensible size.
fn check_png_decodes(png: &[u8]) -> Result<(), AppError> {
    let bad = || AppError::invalid("invalid_upload", "签名图片无法识别,请重新签名");
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().map_err(|_| bad())?;
    let info = reader.info();
    if info.width == 0 || info.height == 0 || info.width > 4096 || info.height > 4096 {
        return Err(bad());
    }
    let mut buffer = vec![0; reader.output_buffer_size().ok_or_else(bad)?];
    reader.next_frame(&mut buffer).map_err(|_| bad())?;
    Ok(())
}

/// A face video being received: each piece is checked (is it a video, is it too large) and
/// sealed into the store as it arrives, so it is never whole in memory. Made by
/// [`App::receive_liveness_video`] or [`App::receive_activation_video`].
pub struct FaceVideoUpload {
    writer: yiqian_store::blobs::BlobWriter,
    check: IncomingVideo,
    id: String,
    order_id: String,
    kind: &'static str,
}

impl FaceVideoUpload {
    /// Takes the next piece of the video. On a refusal, [`FaceVideoUpload::abort`] it.
    pub async fn push(&mut self, piece: &[u8]) -> Result<(), AppError> {
        self.check.take(piece)?;
        self.writer.write(piece).await?;
        Ok(())
    }

    /// Takes a whole video; on a refusal nothing stays in the store.
    pub async fn push_whole(mut self, video: &[u8]) -> Result<FaceVideoUpload, AppError> {
        match self.push(video).await {
            Ok(()) => Ok(self),
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Gives up on the video: nothing stays in the store.
    pub async fn abort(self) {
        self.writer.abort().await;
    }

    /// Ends the video: stored whole (not yet recorded), or refused and removed.
    pub(crate) async fn finish(self) -> Result<BlobInfo, AppError> {
        let media = match self.check.finish() {
            Ok(m) => m,
            Err(e) => {
                self.writer.abort().await;
                return Err(e.into());
            }
        };
        let size = self.writer.finish().await?;
        Ok(BlobInfo {
            id: self.id,
            order_id: self.order_id,
            kind: self.kind.into(),
            content_type: media.mime().into(),
            size: size as i64,
        })
    }
}

/// A face video checked against its challenge, ready to record.
pub(crate) struct FaceCheck {
    pub challenge: Challenge,
    pub blob: BlobInfo,
    pub verdict: LivenessVerdict,
    pub evidence: serde_json::Value,
}

/// Digits to read aloud.
#[derive(Debug, Clone)]
pub struct LivenessChallenge {
    /// Challenge id, sent back with the video.
    pub id: String,
    /// The digits.
    pub digits: String,
    /// Seconds to answer.
    pub expires_in_seconds: i64,
}

impl App {
    /// Loads the applicant's order and checks that `step` may be done now, before any upload
    /// is stored.
    async fn order_for_step(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        step: Step,
    ) -> Result<OrderRecord, AppError> {
        let mut tx = self.store().read().await?;
        let rec = self.own_order(&mut tx, applicant, order_id).await?;
        rec.order.execute(Command::CompleteStep(step))?;
        Ok(rec)
    }

    /// Completes `step` with its evidence, in one unit of work.
    async fn complete_step(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        step: Step,
        evidence: serde_json::Value,
        blobs: &[BlobInfo],
    ) -> Result<OrderRecord, AppError> {
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            for b in blobs {
                tx.insert_blob(b, now).await?;
            }
            tx.save_material(&rec.order.id, step.code(), &evidence, now).await?;
            let (rec, _) =
                self.apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::CompleteStep(step)).await?;
            Ok(rec)
        })
    }

    async fn store_upload(
        &self,
        rec: &OrderRecord,
        kind: &str,
        mime: &str,
        bytes: &[u8],
    ) -> Result<BlobInfo, AppError> {
        let info = BlobInfo {
            id: new_id("BL", 24),
            order_id: rec.order.id.to_string(),
            kind: kind.into(),
            content_type: mime.into(),
            size: bytes.len() as i64,
        };
        self.store().put_blob(&info, bytes).await?;
        Ok(info)
    }

    /// Sends the code that binds `phone` to the order.
    pub async fn send_bind_code(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        phone: &str,
        client_ip: &str,
    ) -> Result<crate::sms_codes::CodeSent, AppError> {
        let phone = MobileNumber::parse(phone)?;
        self.order_for_step(applicant, order_id, Step::Phone).await?;
        self.send_code(&phone, CodePurpose::BindPhone, client_ip).await
    }

    /// Binds `phone` to the order with the code sent to it (绑定手机).
    pub async fn bind_phone(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        phone: &str,
        code: &str,
    ) -> Result<OrderRecord, AppError> {
        let phone = MobileNumber::parse(phone)?;
        self.order_for_step(applicant, order_id, Step::Phone).await?;
        let matched = self.check_code(&phone, CodePurpose::BindPhone, code).await?;
        in_tx!(self, |tx| {
            self.use_code(&mut tx, &matched).await?;
            self.save_bound_phone(&mut tx, applicant, order_id, &phone, "sms_code").await
        })
    }

    /// The phone number the applicant logged in with (proven by the login's SMS code).
    pub async fn login_phone(&self, applicant: &ApplicantId) -> Result<MobileNumber, AppError> {
        let mut tx = self.store().read().await?;
        Ok(tx.applicant_phone(applicant).await?)
    }

    /// Binds the phone the applicant logged in with (使用此号码): the login's SMS code already
    /// proved it is theirs, so no second code is sent. The evidence records that proof.
    pub async fn bind_login_phone(&self, applicant: &ApplicantId, order_id: &str) -> Result<OrderRecord, AppError> {
        self.order_for_step(applicant, order_id, Step::Phone).await?;
        in_tx!(self, |tx| {
            let phone = tx.applicant_phone(applicant).await?;
            self.save_bound_phone(&mut tx, applicant, order_id, &phone, "login").await
        })
    }

    /// Saves the bound phone with how it was proven (`sms_code` or `login`) and completes the step.
    async fn save_bound_phone(
        &self,
        tx: &mut yiqian_store::Tx,
        applicant: &ApplicantId,
        order_id: &str,
        phone: &MobileNumber,
        proof: &str,
    ) -> Result<OrderRecord, AppError> {
        let now = self.now();
        let rec = self.own_order(tx, applicant, order_id).await?;
        tx.save_material(&rec.order.id, Step::Phone.code(), &json!({"phone": phone.as_str(), "proof": proof}), now)
            .await?;
        let (rec, _) =
            self.apply(tx, &rec, &Actor::Applicant(applicant.clone()), Command::CompleteStep(Step::Phone)).await?;
        Ok(rec)
    }

    /// Stores the two ID card photos and returns what the OCR read, for the applicant to
    /// confirm or correct.
    pub async fn upload_id_photos(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        front: &[u8],
        back: &[u8],
    ) -> Result<IdCardReading, AppError> {
        let rec = self.order_for_step(applicant, order_id, Step::IdCard).await?;
        let photo = |side: CardSide, bytes: &[u8]| {
            check_photo(bytes)
                .map_err(|e| AppError::invalid_field("invalid_upload", side.code(), format!("{}:{e}", side.title())))
        };
        let front_type = photo(CardSide::Front, front)?;
        let back_type = photo(CardSide::Back, back)?;
        let reading = self.providers().identity.read_id_card(front, back).await?;
        if let Some(w) = reading.warnings.first() {
            // Nothing is stored: the applicant takes that side's photo again.
            return Err(AppError::invalid_field(
                "id_photo_retake",
                w.side.code(),
                format!("{}:{}", w.side.title(), w.problem.retake_message()),
            ));
        }
        let front_blob = self.store_upload(&rec, "id_front", front_type.mime(), front).await?;
        let back_blob = self.store_upload(&rec, "id_back", back_type.mime(), back).await?;
        in_tx!(self, |tx| {
            let now = self.now();
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            tx.insert_blob(&front_blob, now).await?;
            tx.insert_blob(&back_blob, now).await?;
            let draft = json!({"front": front_blob.id, "back": back_blob.id, "ocr": reading, "ocr_provider": self.providers().identity.name()});
            tx.save_material(&rec.order.id, ID_PHOTOS, &draft, now).await?;
            Ok(())
        })?;
        Ok(reading)
    }

    /// Confirms the ID card's fields over the uploaded photos (确认上传).
    pub async fn confirm_id_card(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        form: &IdCardForm,
    ) -> Result<OrderRecord, AppError> {
        let rec = self.order_for_step(applicant, order_id, Step::IdCard).await?;
        let card = confirm_id_card(form, self.now().date_naive())?;
        let id_hash = self.store().vault().lookup_hash("resident-id", card.id_number.as_str());
        in_tx!(self, |tx| {
            let now = self.now();
            let photos = tx
                .material(&rec.order.id, ID_PHOTOS)
                .await?
                .ok_or_else(|| AppError::invalid("id_photos_missing", "请先拍摄身份证正反面"))?;
            if !tx.live_orders_with_id_number(&id_hash, &rec.order.id).await?.is_empty() {
                return Err(AppError::Conflict {
                    code: "id_number_in_use",
                    message: "该身份证已有办理中的订单,请勿重复申请".into(),
                });
            }
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            tx.set_order_id_number_hash(&rec.order.id, &id_hash).await?;
            let evidence = json!({"photos": photos, "card": card});
            tx.save_material(&rec.order.id, Step::IdCard.code(), &evidence, now).await?;
            let (rec, _) = self
                .apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::CompleteStep(Step::IdCard))
                .await?;
            Ok(rec)
        })
    }

    /// Issues the digits for a face video (进入身份验证). Retries are limited per day.
    pub async fn liveness_challenge(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
    ) -> Result<LivenessChallenge, AppError> {
        let rec = self.order_for_step(applicant, order_id, Step::Liveness).await?;
        self.issue_challenge(&rec.order.id).await
    }

    /// New digits to read for the order's face video (application or activation), within
    /// the daily limit.
    pub(crate) async fn issue_challenge(&self, order: &yiqian_domain::OrderId) -> Result<LivenessChallenge, AppError> {
        let policy = self.config().liveness.clone();
        let over_limit = || AppError::RateLimited {
            message: "今日人脸验证次数已达上限,请明天再试,或到线下网点办理".into(),
            retry_after_seconds: 24 * 3600,
        };
        {
            // Checked before asking the provider for digits, and again when storing them.
            let mut tx = self.store().read().await?;
            let since = self.now() - chrono::Duration::days(1);
            if tx.challenges_since(order, since).await? >= policy.max_challenges_per_day {
                return Err(over_limit());
            }
        }
        let digits = self.providers().identity.live_code().await?;
        let id = new_id("LC", 20);
        in_tx!(self, |tx| {
            let now = self.now();
            if tx.challenges_since(order, now - chrono::Duration::days(1)).await? >= policy.max_challenges_per_day {
                return Err(over_limit());
            }
            tx.insert_challenge(&Challenge {
                id: id.clone(),
                order: order.clone(),
                digits: digits.clone(),
                created_at: now,
                expires_at: now + policy.challenge_ttl,
                used_at: None,
            })
            .await?;
            Ok(())
        })?;
        Ok(LivenessChallenge { id, digits, expires_in_seconds: policy.challenge_ttl.num_seconds() })
    }

    /// Starts taking the face video of the order's application (进入身份验证 → 停止并上传):
    /// the order must be the applicant's and at the face step. Push the video's pieces as they
    /// arrive, then hand it to [`App::submit_liveness_upload`].
    pub async fn receive_liveness_video(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
    ) -> Result<FaceVideoUpload, AppError> {
        let rec = self.order_for_step(applicant, order_id, Step::Liveness).await?;
        self.face_video_upload(&rec, "liveness_video").await
    }

    pub(crate) async fn face_video_upload(
        &self,
        rec: &OrderRecord,
        kind: &'static str,
    ) -> Result<FaceVideoUpload, AppError> {
        let id = new_id("BL", 24);
        let order_id = rec.order.id.to_string();
        let writer = self.store().blob_writer(&id, &order_id, kind).await?;
        Ok(FaceVideoUpload { writer, check: IncomingVideo::default(), id, order_id, kind })
    }

    /// Takes the face video answering a challenge, whole (see [`App::receive_liveness_video`]
    /// for one that arrives in pieces).
    pub async fn submit_liveness(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        challenge_id: &str,
        video: &[u8],
    ) -> Result<OrderRecord, AppError> {
        let upload = self.receive_liveness_video(applicant, order_id).await?;
        let upload = upload.push_whole(video).await?;
        self.submit_liveness_upload(applicant, order_id, challenge_id, upload).await
    }

    /// Takes the face video received by [`App::receive_liveness_video`], answering a
    /// challenge. The provider's verdict is kept as evidence; "needs review" completes the
    /// step for a reviewer to decide, "fail" asks the applicant to try again. A video refused
    /// before it is recorded is removed from the store.
    pub async fn submit_liveness_upload(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        challenge_id: &str,
        upload: FaceVideoUpload,
    ) -> Result<OrderRecord, AppError> {
        let blob = upload.finish().await?;
        let checked = async {
            let rec = self.order_for_step(applicant, order_id, Step::Liveness).await?;
            self.check_face_video(&rec, challenge_id, blob.clone()).await.map(|c| (rec, c))
        };
        let (rec, FaceCheck { challenge, blob, verdict, evidence }) = self.or_discard(&blob, checked.await).await?;
        if let LivenessVerdict::Fail { reason, .. } = &verdict {
            in_tx!(self, |tx| {
                let now = self.now();
                tx.insert_blob(&blob, now).await?;
                tx.use_challenge(&challenge.id, now).await?;
                tx.save_material(&rec.order.id, "liveness_failed", &evidence, now).await?;
                Ok(())
            })?;
            return Err(AppError::invalid("liveness_failed", format!("人脸验证未通过:{reason}。请重新验证")));
        }
        let recorded = in_tx!(self, |tx| {
            let now = self.now();
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            Self::use_challenge_once(&mut tx, &challenge.id, now).await?;
            tx.insert_blob(&blob, now).await?;
            tx.save_material(&rec.order.id, Step::Liveness.code(), &evidence, now).await?;
            let (rec, _) = self
                .apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::CompleteStep(Step::Liveness))
                .await?;
            Ok(rec)
        });
        self.or_discard(&blob, recorded).await
    }

    /// Passes `result` on; when it is a refusal, first removes the unrecorded upload `blob`.
    pub(crate) async fn or_discard<T>(&self, blob: &BlobInfo, result: Result<T, AppError>) -> Result<T, AppError> {
        if result.is_err() {
            self.discard_upload(blob).await;
        }
        result
    }

    /// Removes an upload that will not be recorded from the store (a failure is logged: the
    /// blob is unreferenced either way).
    pub(crate) async fn discard_upload(&self, blob: &BlobInfo) {
        if let Err(e) = self.store().discard_blob(&blob.id).await {
            tracing::warn!(blob = %blob.id, error = %e, "a refused upload was not removed from the blob store");
        }
    }

    /// Marks a challenge used, refusing a second use.
    pub(crate) async fn use_challenge_once(
        tx: &mut yiqian_store::Tx,
        challenge: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), AppError> {
        match tx.use_challenge(challenge, now).await {
            Ok(()) => Ok(()),
            Err(yiqian_store::StoreError::Conflict) => {
                Err(AppError::invalid("challenge_used", "该组数字已使用,请重新进入身份验证"))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a face video answering `challenge_id` for the order: the challenge is the
    /// order's, unused and fresh; the provider compares the video with the ID photo. The video
    /// is stored (sealed) but not yet recorded; it is read whole for the provider, within
    /// [`FACE_CHECK_MEMORY_MIB`](crate::FACE_CHECK_MEMORY_MIB) for all checks at once.
    pub(crate) async fn check_face_video(
        &self,
        rec: &OrderRecord,
        challenge_id: &str,
        blob: BlobInfo,
    ) -> Result<FaceCheck, AppError> {
        let (challenge, id_card) = {
            let mut tx = self.store().read().await?;
            let challenge = match tx.challenge(challenge_id).await {
                Ok(c) if c.order == rec.order.id => c,
                Ok(_) | Err(yiqian_store::StoreError::NotFound(_)) => {
                    return Err(AppError::invalid("challenge_unknown", "验证码数字无效,请重新进入身份验证"));
                }
                Err(e) => return Err(e.into()),
            };
            (challenge, tx.material(&rec.order.id, Step::IdCard.code()).await?)
        };
        if challenge.used_at.is_some() {
            return Err(AppError::invalid("challenge_used", "该组数字已使用,请重新进入身份验证"));
        }
        if self.now() > challenge.expires_at {
            return Err(AppError::invalid("challenge_expired", "数字已过期,请重新进入身份验证"));
        }
        let front_id = id_card.as_ref().and_then(|c| c["photos"]["front"].as_str()).map(str::to_owned);
        let id_photo = match front_id {
            Some(id) => self.store().get_blob(&id).await?.1,
            None => return Err(AppError::invalid("id_card_missing", "请先完成身份证拍照")),
        };
        let verdict = {
            let mib = u64::try_from(blob.size).unwrap_or(0).div_ceil(1024 * 1024);
            let mib = u32::try_from(mib).unwrap_or(u32::MAX).clamp(1, crate::FACE_CHECK_MEMORY_MIB);
            let _turn =
                self.inner.face_checks.acquire_many(mib).await.map_err(|e| AppError::Internal(e.to_string()))?;
            let reader = self.store().blob_reader_for(blob.clone()).await?;
            let video = reader.read_all().await?;
            self.providers().identity.check_liveness(&video, &challenge.digits, &id_photo).await?
        };
        let evidence = json!({
            "challenge": challenge.id, "digits": challenge.digits, "video": blob.id,
            "provider": self.providers().identity.name(), "verdict": verdict,
        });
        Ok(FaceCheck { challenge, blob, verdict, evidence })
    }

    /// Takes the handwritten signature (PNG) and its strokes (签名).
    pub async fn save_signature(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        png: &[u8],
        strokes: &str,
    ) -> Result<OrderRecord, AppError> {
        let rec = self.order_for_step(applicant, order_id, Step::Signature).await?;
        let png_type = check_signature(png)?;
        check_png_decodes(png)?;
        let strokes: serde_json::Value = serde_json::from_str(strokes)
            .map_err(|_| AppError::invalid("signature_strokes", "签名数据不完整,请重新签名"))?;
        let points: usize =
            strokes.as_array().map(|s| s.iter().filter_map(|x| x.as_array()).map(Vec::len).sum()).unwrap_or(0);
        if points < 10 {
            return Err(AppError::invalid("signature_empty", "请在框内签名"));
        }
        let blob = self.store_upload(&rec, "signature", png_type.mime(), png).await?;
        self.complete_step(applicant, order_id, Step::Signature, json!({"image": blob.id, "strokes": strokes}), &[blob])
            .await
    }

    /// Takes the shipping address (填写地址).
    pub async fn save_address(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        form: &AddressForm,
    ) -> Result<OrderRecord, AppError> {
        let address = check_address(form)?;
        let evidence = serde_json::to_value(&address).map_err(|e| AppError::Internal(e.to_string()))?;
        self.complete_step(applicant, order_id, Step::Address, evidence, &[]).await
    }

    /// Submits the application (确定 → 受理成功).
    pub async fn submit_application(&self, applicant: &ApplicantId, order_id: &str) -> Result<OrderRecord, AppError> {
        in_tx!(self, |tx| {
            let rec = self.own_order(&mut tx, applicant, order_id).await?;
            let (rec, _) = self.apply(&mut tx, &rec, &Actor::Applicant(applicant.clone()), Command::Submit).await?;
            Ok(rec)
        })
    }

    /// Who the key goes to, as the address form starts: a saved address's recipient and phone
    /// (a redo), else the name on the confirmed ID card and the phone bound to the order — so
    /// the applicant does not type again what the order already knows.
    pub async fn address_prefill(&self, applicant: &ApplicantId, order_id: &str) -> Result<(String, String), AppError> {
        let mut tx = self.store().read().await?;
        let rec = self.own_order(&mut tx, applicant, order_id).await?;
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        if let Some(saved) = tx.material(&rec.order.id, Step::Address.code()).await? {
            return Ok((text(&saved["recipient"]), text(&saved["phone"])));
        }
        let name = tx.material(&rec.order.id, Step::IdCard.code()).await?.map(|c| text(&c["card"]["name"]));
        let phone = tx.material(&rec.order.id, Step::Phone.code()).await?.map(|p| text(&p["phone"]));
        Ok((name.unwrap_or_default(), phone.unwrap_or_default()))
    }

    /// The evidence saved for a step of the applicant's own order (to prefill a redo).
    pub async fn saved_material(
        &self,
        applicant: &ApplicantId,
        order_id: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, AppError> {
        let mut tx = self.store().read().await?;
        let rec = self.own_order(&mut tx, applicant, order_id).await?;
        Ok(tx.material(&rec.order.id, key).await?)
    }
}
