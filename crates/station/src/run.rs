//! A station run: every key present in the hub is personalised for the next order of a batch,
//! one worker per key, in parallel, with a line of progress for each step.
//!
//! For one key the order of things is what keeps a crash harmless:
//! 1. the key's PINs are drawn here and sealed to the server's escrow key (bound to the key's
//!    serial) — they exist in the clear only in this process's memory, never on disk or in a
//!    line of output;
//! 2. the order is claimed with the sealed PINs, so the server holds the new SO PIN **before**
//!    the key is initialised with it;
//! 3. the key is initialised (label = order number), the user PIN set, the key pair generated
//!    on the key and the CSR signed there;
//! 4. the certificate is issued on hold and written back with the CA chain, then read back and
//!    checked by the driver;
//! 5. the key is recorded against the order.
//!
//! A failure after the claim gives the lease up (the order goes back to the queue, a
//! certificate already issued is revoked). A station killed meanwhile gives its leases up at
//! its next start. A key left half-personalised (its label an order number the server has no
//! key for) is initialised again with its SO PIN, which the server re-seals to a one-time key
//! of this run.

use crate::client::{ApiError, StationClient};
use crate::wire;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use yiqian_pki::Algorithm;
use yiqian_token::escrow::{EscrowKeyPair, EscrowPublicKey, PinRole};
use yiqian_token::{Pin, TokenError, TokenInfo, TokenReader, is_personalised_label};

/// Digits of the user PIN drawn at the station (sent to the holder by SMS at activation).
pub const USER_PIN_DIGITS: usize = 8;
/// Digits of the SO PIN drawn at the station (kept in escrow for unlocking).
pub const SO_PIN_DIGITS: usize = 16;

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The batch whose orders the keys are for.
    pub batch: String,
    /// The key interface, as recorded with each key: `pkcs11`, `skf` or `software`.
    pub reader_kind: &'static str,
    /// Only these keys (serials), when given; every key present otherwise.
    pub only: Vec<String>,
}

/// Where the time of one key went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Initialisation, PINs, key generation and the CSR signed on the key.
    pub key: Duration,
    /// The issuance round trip (CSR to certificate).
    pub issuance: Duration,
    /// Writing the certificate and chain, reading them back, and recording the key.
    pub writing: Duration,
}

impl Timings {
    /// The whole.
    pub fn total(&self) -> Duration {
        self.key + self.issuance + self.writing
    }
}

/// How one key ended.
#[derive(Debug, Clone)]
pub enum KeyOutcome {
    /// Personalised for the order.
    Personalised {
        /// The order number.
        order: String,
        /// Where the time went.
        timings: Timings,
    },
    /// Personalised before (recorded against an order): left alone.
    AlreadyPersonalised(String),
    /// The batch had no order left for it.
    NothingLeft,
    /// It failed; the message says why and what to do.
    Failed(String),
}

/// One key's result.
#[derive(Debug, Clone)]
pub struct KeyReport {
    /// The key's serial.
    pub serial: String,
    /// How it ended.
    pub outcome: KeyOutcome,
}

/// A run's result.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Each key, in the hub's order.
    pub keys: Vec<KeyReport>,
    /// The batch afterwards.
    pub batch: wire::BatchResponse,
    /// The whole run's wall time.
    pub elapsed: Duration,
}

impl RunReport {
    /// Keys personalised in this run.
    pub fn personalised(&self) -> usize {
        self.keys.iter().filter(|k| matches!(k.outcome, KeyOutcome::Personalised { .. })).count()
    }

    /// Keys that failed.
    pub fn failed(&self) -> usize {
        self.keys.iter().filter(|k| matches!(k.outcome, KeyOutcome::Failed(_))).count()
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The key reader failed.
    #[error("UKEY接口错误: {0}")]
    Reader(#[from] TokenError),
    /// The server's answer made no sense.
    #[error("{0}")]
    Protocol(String),
}

/// Where progress lines go (the terminal, a test).
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// What every worker of a run shares.
struct Run {
    client: StationClient,
    reader: Arc<dyn TokenReader>,
    escrow: EscrowPublicKey,
    options: RunOptions,
    progress: Progress,
}

/// Why one key stopped: a message for the operator.
struct KeyFailure {
    message: String,
}

impl From<ApiError> for KeyFailure {
    fn from(e: ApiError) -> Self {
        KeyFailure { message: e.to_string() }
    }
}

impl From<TokenError> for KeyFailure {
    fn from(e: TokenError) -> Self {
        KeyFailure { message: key_message(&e) }
    }
}

/// A token error as the operator reads it.
fn key_message(e: &TokenError) -> String {
    match e {
        TokenError::NotPresent(_) => "UKEY已拔出或无法访问,请重新插好后再运行".into(),
        other => format!("UKEY操作失败: {other}"),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokenError> + Send + 'static,
) -> Result<T, KeyFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KeyFailure { message: format!("UKEY任务中断: {e}") })?
        .map_err(KeyFailure::from)
}

/// Starts a run and personalises every key present (or those of `only`), in parallel.
pub async fn run(
    client: &StationClient,
    reader: Arc<dyn TokenReader>,
    options: RunOptions,
    progress: Progress,
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let start = client.start().await?;
    let escrow = EscrowPublicKey::from_base64(&start.escrow_public_key)
        .map_err(|e| RunError::Protocol(format!("the server's escrow key: {e}")))?;
    progress(format!(
        "工作站 {} (制证员 {}) 已连接;批次 {}{}",
        start.station_name,
        start.staff_name,
        options.batch,
        if start.abandoned_keys.is_empty() {
            String::new()
        } else {
            format!(";上次未完成的 {} 个订单已退回待制证", start.abandoned_keys.len())
        }
    ));
    let present = {
        let reader = reader.clone();
        tokio::task::spawn_blocking(move || reader.present())
            .await
            .map_err(|e| RunError::Protocol(format!("key reader task: {e}")))??
    };
    for serial in &start.abandoned_keys {
        if !present.iter().any(|k| &k.serial == serial) {
            progress(format!(
                "注意: UKEY {serial} 上次制证被中断,现在未被识别(已拔出,或初始化被打断)。插回后重新运行;\
                 仍无法识别时请用厂商工具恢复出厂设置"
            ));
        }
    }
    let keys: Vec<TokenInfo> =
        present.into_iter().filter(|k| options.only.is_empty() || options.only.contains(&k.serial)).collect();
    if keys.is_empty() {
        progress("没有发现UKEY:请把UKEY插入集线器后再运行".into());
    } else {
        progress(format!("发现 {} 个UKEY,并行制证", keys.len()));
    }
    let shared = Arc::new(Run { client: client.clone(), reader, escrow, options, progress: progress.clone() });
    let total = keys.len();
    let mut workers = Vec::with_capacity(total);
    for (i, key) in keys.into_iter().enumerate() {
        let run = shared.clone();
        let tag = format!("[{}/{} {}]", i + 1, total, key.serial);
        workers.push(tokio::spawn(async move {
            let outcome = run.key(&key, &tag).await;
            KeyReport { serial: key.serial, outcome }
        }));
    }
    let mut reports = Vec::with_capacity(total);
    for w in workers {
        reports.push(w.await.map_err(|e| RunError::Protocol(format!("worker: {e}")))?);
    }
    let batch = client.batch(&shared.options.batch).await?;
    Ok(RunReport { keys: reports, batch, elapsed: started.elapsed() })
}

impl Run {
    fn say(&self, tag: &str, what: &str) {
        (self.progress)(format!("{tag} {what}"));
    }

    /// Personalises one key, or says why not.
    async fn key(&self, key: &TokenInfo, tag: &str) -> KeyOutcome {
        let current_so_pin = if is_personalised_label(&key.label) {
            match self.recover(key, tag).await {
                Ok(pin) => Some(pin),
                Err(Recovery::Personalised(order)) => {
                    self.say(tag, &format!("已为订单 {order} 制证,可以取下"));
                    return KeyOutcome::AlreadyPersonalised(order);
                }
                Err(Recovery::Failed(message)) => {
                    self.say(tag, &format!("失败: {message}"));
                    return KeyOutcome::Failed(message);
                }
            }
        } else {
            None
        };
        let so_pin = Pin::random(SO_PIN_DIGITS);
        let user_pin = Pin::random(USER_PIN_DIGITS);
        let sealed = (|| {
            Ok::<_, TokenError>(wire::ClaimRequest {
                key_serial: key.serial.clone(),
                so_pin_sealed: self.escrow.seal(&so_pin, &key.serial, PinRole::So)?,
                user_pin_sealed: self.escrow.seal(&user_pin, &key.serial, PinRole::User)?,
            })
        })();
        let request = match sealed {
            Ok(r) => r,
            Err(e) => return KeyOutcome::Failed(format!("PIN加密失败: {e}")),
        };
        let claim = match self.client.claim(&self.options.batch, &request).await {
            Ok(Some(claim)) => claim,
            Ok(None) => {
                self.say(tag, "本批次已没有待制证的订单");
                return KeyOutcome::NothingLeft;
            }
            Err(e) if e.code() == Some("key_personalised") => {
                self.say(tag, &format!("跳过: {e}"));
                return KeyOutcome::AlreadyPersonalised(String::new());
            }
            Err(e) => {
                self.say(tag, &format!("领取订单失败: {e}"));
                return KeyOutcome::Failed(e.to_string());
            }
        };
        self.say(tag, &format!("领取订单 {}", claim.order));
        match self.personalise(key, tag, &claim, current_so_pin, so_pin, user_pin).await {
            Ok(timings) => {
                self.say(
                    tag,
                    &format!(
                        "完成 {} 用时 {:.3}s(生成密钥 {:.3}s · 签发证书 {:.3}s · 写入登记 {:.3}s)",
                        claim.order,
                        timings.total().as_secs_f64(),
                        timings.key.as_secs_f64(),
                        timings.issuance.as_secs_f64(),
                        timings.writing.as_secs_f64()
                    ),
                );
                KeyOutcome::Personalised { order: claim.order, timings }
            }
            Err(failure) => {
                self.say(tag, &format!("失败 {}: {}", claim.order, failure.message));
                match self.client.abandon(&claim.lease, &failure.message).await {
                    Ok(()) => self.say(tag, &format!("订单 {} 已退回待制证;此UKEY下次运行时重新初始化", claim.order)),
                    Err(e) => self.say(tag, &format!("无法通知服务器放弃({e});下次启动时自动退回")),
                }
                KeyOutcome::Failed(failure.message)
            }
        }
    }

    /// Steps 3–5 for a claimed key.
    async fn personalise(
        &self,
        key: &TokenInfo,
        tag: &str,
        claim: &wire::Claim,
        current_so_pin: Option<Pin>,
        so_pin: Pin,
        user_pin: Pin,
    ) -> Result<Timings, KeyFailure> {
        let algorithm: Algorithm =
            claim.algorithm.parse().map_err(|_| KeyFailure { message: format!("未知算法 {}", claim.algorithm) })?;
        let key_id = rand::random::<[u8; 8]>().to_vec();
        let mut timings = Timings::default();

        self.say(tag, "初始化并在UKEY内生成密钥");
        let t = Instant::now();
        let csr = {
            let (reader, serial, label) = (self.reader.clone(), key.serial.clone(), claim.order.clone());
            let (so_pin, user_pin, key_id) = (so_pin.clone(), user_pin.clone(), key_id.clone());
            blocking(move || {
                let mut token = reader.open(&serial)?;
                match token.initialise(current_so_pin.as_ref(), &so_pin, &label) {
                    // Stopped between C_InitToken and the new SO PIN last time: the key still
                    // has its factory SO PIN.
                    Err(TokenError::PinIncorrect { .. }) if current_so_pin.is_some() => {
                        token.initialise(None, &so_pin, &label)?
                    }
                    other => other?,
                }
                token.init_user_pin(&so_pin, &user_pin)?;
                token.generate_key_pair(&user_pin, algorithm, &key_id)?;
                let signer = token.signer(&user_pin, &key_id)?;
                // The CSR names the order: the station is not told whom the key is for.
                let subject = yiqian_pki::personal_subject(&label)?;
                Ok(yiqian_pki::build_csr(&subject, signer.as_ref())?)
            })
            .await?
        };
        timings.key = t.elapsed();

        self.say(tag, "签发证书");
        let t = Instant::now();
        let issued = self.client.certify(&claim.lease, &wire::CertifyRequest { csr: B64.encode(&csr) }).await?;
        timings.issuance = t.elapsed();

        self.say(tag, "写入证书与CA证书链");
        let t = Instant::now();
        let decode = |b: &str| B64.decode(b).map_err(|e| KeyFailure { message: format!("证书编码错误: {e}") });
        let certificate = decode(&issued.certificate)?;
        let chain = issued.chain.iter().map(|c| decode(c)).collect::<Result<Vec<_>, _>>()?;
        {
            let (reader, serial, user_pin, key_id) =
                (self.reader.clone(), key.serial.clone(), user_pin.clone(), key_id.clone());
            blocking(move || {
                let mut token = reader.open(&serial)?;
                token.write_certificate(&user_pin, &key_id, &certificate)?;
                token.write_ca_certificates(&user_pin, &chain)
            })
            .await?;
        }
        let request = wire::CompleteRequest {
            key_id: Some(hex::encode(&key_id)),
            reader: self.options.reader_kind.to_owned(),
            identity: None,
        };
        self.client.complete(&claim.lease, &request).await?;
        timings.writing = t.elapsed();
        drop((so_pin, user_pin));
        Ok(timings)
    }

    /// The SO PIN of a half-personalised key, re-sealed by the server to a one-time key.
    async fn recover(&self, key: &TokenInfo, tag: &str) -> Result<Pin, Recovery> {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut seed[..]);
        let pair = EscrowKeyPair::derive(&seed);
        let request = wire::RecoveryRequest { station_key: pair.public_key().to_base64() };
        match self.client.recover(&key.serial, &request).await {
            Ok(r) => {
                self.say(tag, &format!("上次未完成({}),重新初始化", key.label));
                pair.open(&r.so_pin_sealed, &key.serial, PinRole::So).map_err(|e| Recovery::Failed(e.to_string()))
            }
            Err(e) if e.code() == Some("key_personalised") => Err(Recovery::Personalised(key.label.clone())),
            Err(e) => Err(Recovery::Failed(e.to_string())),
        }
    }
}

/// Why a half-personalised key was not recovered.
enum Recovery {
    /// It is recorded against this order: leave it alone.
    Personalised(String),
    /// Something else; the message says what.
    Failed(String),
}
