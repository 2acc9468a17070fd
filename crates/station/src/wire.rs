//! The station API's request and response bodies (`/api/v1/station/…`), shared by the server's
//! handlers and the station's client so that both sides read one definition. Binary values
//! (CSRs, certificates) travel as standard base64 of their DER; PINs travel only sealed
//! (`hpke1:…`, see `yiqian_token::escrow`). Errors are the API's usual
//! `{"error":{"code","message"}}`.

use serde::{Deserialize, Serialize};

/// `POST /api/v1/station/enrolment`: a member of staff signs the station in once.
#[derive(Serialize, Deserialize)]
pub struct EnrolmentRequest {
    /// The member of staff's login name.
    pub staff_name: String,
    /// Their password.
    pub password: String,
    /// The authenticator's current code.
    pub code: String,
    /// The station's name, shown in the console and the audit (e.g. `制证室-1`).
    pub station_name: String,
}

/// Debug without the password and the code.
impl std::fmt::Debug for EnrolmentRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentRequest")
            .field("staff_name", &self.staff_name)
            .field("station_name", &self.station_name)
            .finish_non_exhaustive()
    }
}

/// The answer to an enrolment: the station's bearer credential, shown once.
#[derive(Serialize, Deserialize)]
pub struct EnrolmentResponse {
    /// The bearer credential (`Authorization: Bearer …`).
    pub credential: String,
    /// The station's id.
    pub station_id: String,
    /// When the credential ends (RFC 3339).
    pub expires_at: String,
}

/// `POST /api/v1/station/start`: what the station needs for a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartResponse {
    /// The station's id.
    pub station_id: String,
    /// Its name.
    pub station_name: String,
    /// The member of staff it acts for.
    pub staff_name: String,
    /// When the credential ends (RFC 3339).
    pub expires_at: String,
    /// The HPKE public key (base64) every PIN is sealed to.
    pub escrow_public_key: String,
    /// The key algorithm the CA issues for (`p256`, `rsa3072`, `sm2`).
    pub algorithm: String,
    /// The keys (serials) of an earlier run's unfinished orders, which went back to the queue
    /// now.
    pub abandoned_keys: Vec<String>,
}

/// `POST /api/v1/station/batches/{batch}/claims`: take the next order for a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The key's hardware serial.
    pub key_serial: String,
    /// The SO PIN the station will set, sealed to the escrow key for this serial.
    pub so_pin_sealed: String,
    /// The user PIN, sealed likewise.
    pub user_pin_sealed: String,
}

/// The answer to a claim: an order, or none when the batch has nothing left.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimResponse {
    /// The order taken, if one was.
    pub claim: Option<Claim>,
}

/// An order taken for a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    /// The lease id (the key's task).
    pub lease: String,
    /// The order number; the key's label.
    pub order: String,
    /// The key algorithm to generate.
    pub algorithm: String,
    /// When the lease lapses unless the station carries on (RFC 3339).
    pub expires_at: String,
}

/// `POST /api/v1/station/leases/{lease}/certificate`: the CSR the key signed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertifyRequest {
    /// The PKCS#10 request (base64 DER); its CN is the order number.
    pub csr: String,
}

/// The certificate issued on hold, and the chain to write beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertifyResponse {
    /// The holder's certificate (base64 DER).
    pub certificate: String,
    /// The issuing CA, then the root (base64 DER).
    pub chain: Vec<String>,
    /// The certificate's serial (hex).
    pub serial: String,
}

/// `POST /api/v1/station/leases/{lease}/complete`: the key is written and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteRequest {
    /// The key pair's id on the key (hex): the new one; none for a PIN unlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The key's interface: `pkcs11`, `skf` or `software`.
    pub reader: String,
    /// The counter's identity check again (counter services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<IdentityCheck>,
}

/// How the holder proved who they are at the counter.
#[derive(Clone, Serialize, Deserialize)]
pub struct IdentityCheck {
    /// The ID number read off the original card.
    pub id_number: String,
    /// What was checked (default `居民身份证原件`).
    #[serde(default)]
    pub document: String,
    /// Anything else worth keeping (no other personal data).
    #[serde(default)]
    pub note: String,
}

/// Debug without the ID number.
impl std::fmt::Debug for IdentityCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityCheck").field("document", &self.document).finish_non_exhaustive()
    }
}

/// `POST /api/v1/station/counter/{order}/{service}` (`unlock-pin`, `renew`, `reissue`): a
/// counter service with the key in hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterStartRequest {
    /// The identity check made at the counter.
    pub identity: IdentityCheck,
    /// The key in hand: the order's (unlock, renewal) or a blank one (re-issue).
    pub key_serial: String,
    /// A re-issue's new SO PIN, sealed at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so_pin_sealed: Option<String>,
    /// The new user PIN, sealed at the station.
    pub user_pin_sealed: String,
    /// A one-time HPKE public key of the station (base64), for the key's current SO PIN.
    pub station_key: String,
}

/// What the station needs for the key operations of a counter service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterStartResponse {
    /// The lease id.
    pub lease: String,
    /// The key algorithm of a new key pair (`p256`, `rsa3072`, `sm2`).
    pub algorithm: String,
    /// The key's current SO PIN sealed to the station's one-time key (unlock, renewal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub so_pin_sealed: Option<String>,
    /// The key pair a renewal replaces (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// The answer to a completion.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompleteResponse {
    /// The order, now issued (已制证).
    pub order: String,
}

/// `POST /api/v1/station/leases/{lease}/abandon`: the station gives a key up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbandonRequest {
    /// Why, for the audit (no personal data).
    pub reason: String,
}

/// `POST /api/v1/station/keys/{serial}/recovery`: re-initialise a half-personalised key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryRequest {
    /// A one-time HPKE public key of the station (base64).
    pub station_key: String,
}

/// The key's current SO PIN, sealed to the station's one-time key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryResponse {
    /// The sealed SO PIN.
    pub so_pin_sealed: String,
}

/// `GET /api/v1/station/batches/{batch}`: where a batch stands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchResponse {
    /// The batch id.
    pub batch: String,
    /// Orders in it.
    pub total: usize,
    /// Orders finished (issued, skipped or failed).
    pub finished: usize,
    /// Each order: `queued`, `at_station`, `done`, `failed` or `skipped`.
    pub items: Vec<BatchItem>,
}

/// One order of a batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchItem {
    /// The order number.
    pub order: String,
    /// Where it is.
    pub state: String,
    /// The station making its key now, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
}

/// The API's error body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: String,
    /// What happened, in Chinese.
    pub message: String,
}
