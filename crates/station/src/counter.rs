//! Counter services at a station with the key in hand (柜台业务): PIN unlock (a new user PIN set
//! with the key's SO PIN), renewal (a new key pair and certificate on the same key, a new PIN)
//! and re-issue onto a new blank key. The member of staff reads the ID number off the holder's
//! original card; the server checks it against the order before anything is done and again
//! when the service is recorded. New PINs are drawn here and sealed to the escrow key; the
//! holder receives the new user PIN by SMS. As in a run, a failure after the service started
//! gives its lease up (a certificate already issued for it is revoked).

use crate::client::{ApiError, StationClient};
use crate::run::{Progress, SO_PIN_DIGITS, USER_PIN_DIGITS};
use crate::wire;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use yiqian_pki::Algorithm;
use yiqian_token::escrow::{EscrowKeyPair, EscrowPublicKey, PinRole};
use yiqian_token::{Pin, TokenError, TokenReader, is_personalised_label};

/// A counter service a station performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterService {
    /// 解锁: a new user PIN.
    UnlockPin,
    /// 续期: a new key pair and certificate on the same key.
    Renew,
    /// 补办: a new key.
    Reissue,
}

impl CounterService {
    /// The service's name in the API path and on the command line.
    pub fn code(self) -> &'static str {
        match self {
            CounterService::UnlockPin => "unlock-pin",
            CounterService::Renew => "renew",
            CounterService::Reissue => "reissue",
        }
    }

    /// The service of a code.
    pub fn from_code(code: &str) -> Option<CounterService> {
        [CounterService::UnlockPin, CounterService::Renew, CounterService::Reissue]
            .into_iter()
            .find(|s| s.code() == code)
    }

    /// Its name at the counter.
    pub fn title(self) -> &'static str {
        match self {
            CounterService::UnlockPin => "PIN码解锁",
            CounterService::Renew => "证书续期",
            CounterService::Reissue => "证书补办(新UKEY)",
        }
    }
}

/// One counter service to perform.
#[derive(Debug, Clone)]
pub struct CounterJob {
    /// The order number.
    pub order: String,
    /// The service.
    pub service: CounterService,
    /// The key in hand: the order's (unlock, renewal) or a blank one (re-issue).
    pub key_serial: String,
    /// The identity check made at the counter.
    pub identity: wire::IdentityCheck,
    /// The key interface, as recorded with a new key: `pkcs11`, `skf` or `software`.
    pub reader_kind: &'static str,
}

/// Why a counter service failed.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The key failed.
    #[error("UKEY操作失败: {0}")]
    Key(#[from] TokenError),
    /// Anything else; the message says what.
    #[error("{0}")]
    Other(String),
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TokenError> + Send + 'static,
) -> Result<T, CounterError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CounterError::Other(format!("UKEY任务中断: {e}")))?
        .map_err(Into::into)
}

/// Performs a counter service; returns what to tell the holder.
pub async fn counter(
    client: &StationClient,
    reader: Arc<dyn TokenReader>,
    job: &CounterJob,
    progress: Progress,
) -> Result<String, CounterError> {
    let info = client.info().await?;
    let escrow = EscrowPublicKey::from_base64(&info.escrow_public_key)
        .map_err(|e| CounterError::Other(format!("the server's escrow key: {e}")))?;
    let key = {
        let reader = reader.clone();
        tokio::task::spawn_blocking(move || reader.present())
            .await
            .map_err(|e| CounterError::Other(e.to_string()))??
            .into_iter()
            .find(|k| k.serial == job.key_serial)
            .ok_or_else(|| CounterError::Other(format!("没有找到UKEY {}:请插好后再试", job.key_serial)))?
    };
    if job.service == CounterService::Reissue && is_personalised_label(&key.label) {
        return Err(CounterError::Other("补办须插入一个新的空白UKEY".into()));
    }
    progress(format!("{} 订单 {} · UKEY {}", job.service.title(), job.order, job.key_serial));
    let so_pin = Pin::random(SO_PIN_DIGITS);
    let user_pin = Pin::random(USER_PIN_DIGITS);
    let mut seed = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut seed[..]);
    let one_time = EscrowKeyPair::derive(&seed);
    let request = wire::CounterStartRequest {
        identity: job.identity.clone(),
        key_serial: job.key_serial.clone(),
        so_pin_sealed: match job.service {
            CounterService::Reissue => Some(escrow.seal(&so_pin, &job.key_serial, PinRole::So)?),
            _ => None,
        },
        user_pin_sealed: escrow.seal(&user_pin, &job.key_serial, PinRole::User)?,
        station_key: one_time.public_key().to_base64(),
    };
    let started = client.counter_start(&job.order, job.service.code(), &request).await?;
    progress("身份核验通过".into());
    let current_so_pin = match &started.so_pin_sealed {
        Some(sealed) => Some(one_time.open(sealed, &job.key_serial, PinRole::So)?),
        None => None,
    };
    match perform(client, &reader, job, &started, current_so_pin, so_pin, user_pin, &progress).await {
        Ok(()) => Ok(format!("{}已完成:新的PIN码将以短信发送给申请人", job.service.title())),
        Err(e) => {
            let _ = client.abandon(&started.lease, &e.to_string()).await;
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments, reason = "the steps of one service, with what the server handed over")]
async fn perform(
    client: &StationClient,
    reader: &Arc<dyn TokenReader>,
    job: &CounterJob,
    started: &wire::CounterStartResponse,
    current_so_pin: Option<Pin>,
    so_pin: Pin,
    user_pin: Pin,
    progress: &Progress,
) -> Result<(), CounterError> {
    let serial = job.key_serial.clone();
    let algorithm: Algorithm =
        started.algorithm.parse().map_err(|_| CounterError::Other(format!("未知算法 {}", started.algorithm)))?;
    let new_key_id = rand::random::<[u8; 8]>().to_vec();
    let completion = |key_id: Option<String>| wire::CompleteRequest {
        key_id,
        reader: job.reader_kind.to_owned(),
        identity: Some(job.identity.clone()),
    };
    if job.service == CounterService::UnlockPin {
        let so = current_so_pin.ok_or_else(|| CounterError::Other("服务器未提供SO PIN".into()))?;
        let r = reader.clone();
        progress("设置新的PIN码".into());
        blocking(move || r.open(&serial)?.init_user_pin(&so, &user_pin)).await?;
        client.complete(&started.lease, &completion(None)).await?;
        return Ok(());
    }
    progress("在UKEY内生成新密钥".into());
    let csr = {
        let (r, serial, order, kid, user) =
            (reader.clone(), serial.clone(), job.order.clone(), new_key_id.clone(), user_pin.clone());
        let service = job.service;
        blocking(move || {
            let mut token = r.open(&serial)?;
            let so = match (service, current_so_pin) {
                (CounterService::Reissue, _) => {
                    token.initialise(None, &so_pin, &order)?;
                    so_pin
                }
                (_, Some(so)) => so,
                (_, None) => return Err(TokenError::State("no SO PIN for the key".into())),
            };
            token.init_user_pin(&so, &user)?;
            token.generate_key_pair(&user, algorithm, &kid)?;
            let signer = token.signer(&user, &kid)?;
            Ok(yiqian_pki::build_csr(&yiqian_pki::personal_subject(&order)?, signer.as_ref())?)
        })
        .await?
    };
    progress("签发证书".into());
    let issued = client.certify(&started.lease, &wire::CertifyRequest { csr: B64.encode(&csr) }).await?;
    let decode = |b: &str| B64.decode(b).map_err(|e| CounterError::Other(format!("证书编码错误: {e}")));
    let certificate = decode(&issued.certificate)?;
    let chain = issued.chain.iter().map(|c| decode(c)).collect::<Result<Vec<_>, _>>()?;
    progress("写入证书".into());
    {
        let (r, kid) = (reader.clone(), new_key_id.clone());
        let old = match (job.service, &started.key_id) {
            (CounterService::Renew, Some(hex_id)) => {
                Some(hex::decode(hex_id).map_err(|e| CounterError::Other(format!("密钥标识: {e}")))?)
            }
            _ => None,
        };
        blocking(move || {
            let mut token = r.open(&serial)?;
            token.write_certificate(&user_pin, &kid, &certificate)?;
            match old {
                // The old key pair and its certificate go; the chain stays.
                Some(old) => token.destroy_key(&user_pin, &old),
                None => token.write_ca_certificates(&user_pin, &chain),
            }
        })
        .await?;
    }
    client.complete(&started.lease, &completion(Some(hex::encode(&new_key_id)))).await?;
    Ok(())
}
