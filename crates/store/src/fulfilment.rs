//! Fulfilment records: the UKEY personalised for an order, its PINs in escrow (sealed by the
//! application with the PIN-escrow key, never by the store's own key), the order's
//! fulfilment row (activation code, shipment, returned form, activation tries), issuance
//! batches, e-invoices and counter services.

use crate::{StoreError, Tx, from_millis, millis};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;
use yiqian_domain::OrderId;
use yiqian_domain::invoice::{InvoiceRequest, InvoiceState};

/// Where a personalised key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Personalised and locked: certificate on hold, PIN in escrow.
    Personalised,
    /// Activated: certificate released, PIN delivered.
    Active,
    /// Replaced or revoked; no longer in use.
    Retired,
}

impl TokenState {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            TokenState::Personalised => "personalised",
            TokenState::Active => "active",
            TokenState::Retired => "retired",
        }
    }

    fn from_code(code: &str) -> Result<TokenState, StoreError> {
        Ok(match code {
            "personalised" => TokenState::Personalised,
            "active" => TokenState::Active,
            "retired" => TokenState::Retired,
            other => return Err(StoreError::Corrupt(format!("token state {other:?}"))),
        })
    }
}

/// Where the keys of a batch are personalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonalisedAt {
    /// By the server's own key reader, one order at a time through the outbox.
    Server,
    /// At a personalisation station with a hub of keys, over the station API.
    Station,
}

impl PersonalisedAt {
    /// Storage code.
    pub fn code(self) -> &'static str {
        match self {
            PersonalisedAt::Server => "server",
            PersonalisedAt::Station => "station",
        }
    }

    fn from_code(code: &str) -> Result<PersonalisedAt, StoreError> {
        match code {
            "server" => Ok(PersonalisedAt::Server),
            "station" => Ok(PersonalisedAt::Station),
            other => Err(StoreError::Corrupt(format!("batch personalised at {other:?}"))),
        }
    }
}

/// An issuance batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    /// Batch id (`BT…`).
    pub id: String,
    /// Who started it (`staff:NAME`).
    pub created_by: String,
    /// Its orders, in the order chosen.
    pub orders: Vec<OrderId>,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// Where its keys are personalised.
    pub personalised_at: PersonalisedAt,
}

/// A key personalised for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The key's serial number.
    pub serial: String,
    /// Which reader made it (`software`, later the PKCS#11 module).
    pub reader: String,
    /// The order it was made for.
    pub order: OrderId,
    /// The key pair's CKA_ID on the token (hex).
    pub key_id: String,
    /// The certificate written to it (hex serial).
    pub certificate_serial: String,
    /// Where it is.
    pub state: TokenState,
    /// When it was personalised.
    pub created_at: DateTime<Utc>,
}

/// Which PIN of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinKind {
    /// The user PIN, sent to the applicant once.
    User,
    /// The security officer PIN, kept for unblocking at the counter.
    So,
}

impl PinKind {
    fn code(self) -> &'static str {
        match self {
            PinKind::User => "user",
            PinKind::So => "so",
        }
    }
}

/// A PIN in escrow: sealed, with the generation that tells one PIN of a key from the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowedPin {
    /// Bumped each time the PIN is set anew.
    pub generation: i64,
    /// The sealed PIN; `None` once released (the escrow copy is destroyed).
    pub sealed: Option<String>,
}

/// An approved order's fulfilment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FulfilmentRecord {
    /// The order.
    pub order: OrderId,
    /// The code in the activation QR (`/activate/CODE`).
    pub activation_code: String,
    /// The key made for it, once personalised.
    pub token_serial: Option<String>,
    /// Courier and waybill, once shipped.
    pub shipment: Option<Shipment>,
    /// When the confirmation form was last printed.
    pub form_printed_at: Option<DateTime<Utc>>,
    /// When the signed copy came back, and who recorded it.
    pub form_returned: Option<(DateTime<Utc>, String)>,
    /// When the applicant accepted the activation notice.
    pub activation_consent_at: Option<DateTime<Utc>>,
    /// Face checks at activation that failed.
    pub activation_failures: i64,
}

/// A shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// The courier's name.
    pub courier: String,
    /// The waybill number.
    pub tracking_no: String,
    /// When it was handed over.
    pub shipped_at: DateTime<Utc>,
    /// Who recorded it.
    pub shipped_by: String,
}

/// An invoice and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    /// The order invoiced.
    pub order: OrderId,
    /// 抬头 and e-mail.
    pub request: InvoiceRequest,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Requested or issued.
    pub state: InvoiceState,
    /// The invoice number, once issued.
    pub invoice_no: Option<String>,
    /// The PDF (a blob id), once issued.
    pub pdf_blob: Option<String>,
    /// When requested.
    pub requested_at: DateTime<Utc>,
    /// When issued, and by whom.
    pub issued: Option<(DateTime<Utc>, String)>,
    /// The e-invoicing service asked, and its serial number for the request.
    pub submitted: Option<(String, String)>,
    /// Why the service could not issue it (finance staff then issue it by hand).
    pub failure: Option<String>,
}

/// A counter service (after-sales at a service point).
#[derive(Debug, Clone, PartialEq)]
pub struct CounterServiceRecord {
    /// Its id.
    pub id: String,
    /// The order served.
    pub order: OrderId,
    /// `revoke`, `reissue`, `renew`, `unlock_pin`, `activate`.
    pub kind: String,
    /// The staff member (`staff:NAME`).
    pub staff: String,
    /// The identity check and what was done (sealed at rest: it names a person).
    pub record: serde_json::Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

fn order_of(row: &AnyRow) -> Result<OrderId, StoreError> {
    let id: String = row.try_get("order_id")?;
    OrderId::parse(&id).ok_or_else(|| StoreError::Corrupt(format!("order id {id:?}")))
}

fn opt_time(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(from_millis))
}

macro_rules! token_columns {
    () => {
        "serial, reader, order_id, key_id, certificate_serial, state, created_at"
    };
}

fn token_from_row(row: &AnyRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        serial: row.try_get("serial")?,
        reader: row.try_get("reader")?,
        order: order_of(row)?,
        key_id: row.try_get("key_id")?,
        certificate_serial: row.try_get("certificate_serial")?,
        state: TokenState::from_code(&row.try_get::<String, _>("state")?)?,
        created_at: from_millis(row.try_get("created_at")?),
    })
}

macro_rules! fulfilment_columns {
    () => {
        "order_id, activation_code, token_serial, courier, tracking_no, shipped_at, \
    shipped_by, form_printed_at, form_returned_at, form_returned_by, activation_consent_at, activation_failures"
    };
}

fn fulfilment_from_row(row: &AnyRow) -> Result<FulfilmentRecord, StoreError> {
    let courier: Option<String> = row.try_get("courier")?;
    let shipment = match (courier, opt_time(row, "shipped_at")?) {
        (Some(courier), Some(shipped_at)) => Some(Shipment {
            courier,
            tracking_no: row.try_get::<Option<String>, _>("tracking_no")?.unwrap_or_default(),
            shipped_at,
            shipped_by: row.try_get::<Option<String>, _>("shipped_by")?.unwrap_or_default(),
        }),
        _ => None,
    };
    let returned_by: Option<String> = row.try_get("form_returned_by")?;
    Ok(FulfilmentRecord {
        order: order_of(row)?,
        activation_code: row.try_get("activation_code")?,
        token_serial: row.try_get("token_serial")?,
        shipment,
        form_printed_at: opt_time(row, "form_printed_at")?,
        form_returned: opt_time(row, "form_returned_at")?.map(|t| (t, returned_by.unwrap_or_default())),
        activation_consent_at: opt_time(row, "activation_consent_at")?,
        activation_failures: row.try_get("activation_failures")?,
    })
}

macro_rules! invoice_columns {
    () => {
        "order_id, request_sealed, amount_fen, state, invoice_no, pdf_blob, requested_at, issued_at, issued_by, \
         provider, provider_serial, failure"
    };
}

/// An update of one order's fulfilment record touched exactly that record.
fn one_fulfilment(rows: u64) -> Result<(), StoreError> {
    if rows == 1 { Ok(()) } else { Err(StoreError::NotFound("fulfilment")) }
}

fn invoice_context(order: &OrderId) -> String {
    format!("invoice:{order}")
}

fn counter_context(id: &str) -> String {
    format!("counter:{id}")
}

impl Tx {
    /// Records a personalised key.
    pub async fn insert_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (serial, reader, order_id, key_id, certificate_serial, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&t.serial)
        .bind(&t.reader)
        .bind(t.order.as_str())
        .bind(&t.key_id)
        .bind(&t.certificate_serial)
        .bind(t.state.code())
        .bind(millis(t.created_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// A key by serial.
    pub async fn token(&mut self, serial: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", token_columns!(), " FROM tokens WHERE serial = $1"))
            .bind(serial)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    /// The keys made for an order, oldest first.
    pub async fn tokens_of(&mut self, order: &OrderId) -> Result<Vec<TokenRecord>, StoreError> {
        let rows =
            sqlx::query(concat!("SELECT ", token_columns!(), " FROM tokens WHERE order_id = $1 ORDER BY created_at"))
                .bind(order.as_str())
                .fetch_all(self.conn())
                .await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Moves a key to `state`.
    pub async fn set_token_state(
        &mut self,
        serial: &str,
        state: TokenState,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET state = $1, updated_at = $2 WHERE serial = $3")
            .bind(state.code())
            .bind(millis(now))
            .bind(serial)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a renewal on the same key: its new key pair and certificate.
    pub async fn replace_token_key(
        &mut self,
        serial: &str,
        key_id: &str,
        certificate_serial: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET key_id = $1, certificate_serial = $2, updated_at = $3 WHERE serial = $4")
            .bind(key_id)
            .bind(certificate_serial)
            .bind(millis(now))
            .bind(serial)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Puts a (sealed) PIN in escrow, replacing the previous one of the same kind; returns
    /// its generation.
    pub async fn escrow_pin(
        &mut self,
        token: &str,
        kind: PinKind,
        sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let current = self.escrowed_pin(token, kind).await?.map(|p| p.generation).unwrap_or(0);
        let generation = current + 1;
        sqlx::query(
            "INSERT INTO pin_escrow (token_serial, kind, generation, pin_sealed, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (token_serial, kind) DO UPDATE SET generation = excluded.generation, \
             pin_sealed = excluded.pin_sealed, created_at = excluded.created_at, released_at = NULL",
        )
        .bind(token)
        .bind(kind.code())
        .bind(generation)
        .bind(sealed)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(generation)
    }

    /// The PIN in escrow, if any.
    pub async fn escrowed_pin(&mut self, token: &str, kind: PinKind) -> Result<Option<EscrowedPin>, StoreError> {
        let row = sqlx::query("SELECT generation, pin_sealed FROM pin_escrow WHERE token_serial = $1 AND kind = $2")
            .bind(token)
            .bind(kind.code())
            .fetch_optional(self.conn())
            .await?;
        row.map(|r| Ok(EscrowedPin { generation: r.try_get("generation")?, sealed: r.try_get("pin_sealed")? }))
            .transpose()
    }

    /// Destroys the escrow copy of generation `generation` once it was delivered. Returns
    /// false when it was destroyed already (or replaced by a newer one).
    pub async fn release_pin(
        &mut self,
        token: &str,
        kind: PinKind,
        generation: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE pin_escrow SET pin_sealed = NULL, released_at = $1 \
             WHERE token_serial = $2 AND kind = $3 AND generation = $4 AND pin_sealed IS NOT NULL",
        )
        .bind(millis(now))
        .bind(token)
        .bind(kind.code())
        .bind(generation)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Opens the fulfilment record of an approved order (once; a repeat keeps the first).
    pub async fn insert_fulfilment(
        &mut self,
        order: &OrderId,
        activation_code: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fulfilments (order_id, activation_code, activation_failures, created_at, updated_at) \
             VALUES ($1, $2, 0, $3, $3) ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.as_str())
        .bind(activation_code)
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// An order's fulfilment record.
    pub async fn fulfilment(&mut self, order: &OrderId) -> Result<Option<FulfilmentRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", fulfilment_columns!(), " FROM fulfilments WHERE order_id = $1"))
            .bind(order.as_str())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(fulfilment_from_row).transpose()
    }

    /// Fulfilment records of orders handed to the courier, latest shipment first.
    pub async fn shipped_fulfilments(&mut self, limit: i64) -> Result<Vec<FulfilmentRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            fulfilment_columns!(),
            " FROM fulfilments WHERE shipped_at IS NOT NULL ORDER BY shipped_at DESC, order_id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(fulfilment_from_row).collect()
    }

    /// The fulfilment record with this activation code.
    pub async fn fulfilment_by_code(&mut self, code: &str) -> Result<Option<FulfilmentRecord>, StoreError> {
        let row =
            sqlx::query(concat!("SELECT ", fulfilment_columns!(), " FROM fulfilments WHERE activation_code = $1"))
                .bind(code)
                .fetch_optional(self.conn())
                .await?;
        row.as_ref().map(fulfilment_from_row).transpose()
    }

    async fn touch_fulfilment(
        &mut self,
        sql: &'static str,
        order: &OrderId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(sql).bind(millis(now)).bind(order.as_str()).execute(self.conn()).await?;
        one_fulfilment(done.rows_affected())
    }

    /// Records the key personalised for the order.
    pub async fn set_fulfilment_token(
        &mut self,
        order: &OrderId,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE fulfilments SET token_serial = $1, updated_at = $2 WHERE order_id = $3")
            .bind(token)
            .bind(millis(now))
            .bind(order.as_str())
            .execute(self.conn())
            .await?;
        one_fulfilment(done.rows_affected())
    }

    /// Records the shipment.
    pub async fn set_shipment(&mut self, order: &OrderId, s: &Shipment) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE fulfilments SET courier = $1, tracking_no = $2, shipped_at = $3, shipped_by = $4, updated_at = $3 \
             WHERE order_id = $5",
        )
        .bind(&s.courier)
        .bind(&s.tracking_no)
        .bind(millis(s.shipped_at))
        .bind(&s.shipped_by)
        .bind(order.as_str())
        .execute(self.conn())
        .await?;
        one_fulfilment(done.rows_affected())
    }

    /// Records that the confirmation form was printed.
    pub async fn set_form_printed(&mut self, order: &OrderId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.touch_fulfilment(
            "UPDATE fulfilments SET form_printed_at = $1, updated_at = $1 WHERE order_id = $2",
            order,
            now,
        )
        .await
    }

    /// Records that the signed copy of the confirmation form came back.
    pub async fn set_form_returned(&mut self, order: &OrderId, by: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE fulfilments SET form_returned_at = $1, form_returned_by = $2, updated_at = $1 WHERE order_id = $3",
        )
        .bind(millis(now))
        .bind(by)
        .bind(order.as_str())
        .execute(self.conn())
        .await?;
        one_fulfilment(done.rows_affected())
    }

    /// Records the applicant's acceptance of the activation notice.
    pub async fn set_activation_consent(&mut self, order: &OrderId, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.touch_fulfilment(
            "UPDATE fulfilments SET activation_consent_at = $1, updated_at = $1 WHERE order_id = $2",
            order,
            now,
        )
        .await
    }

    /// Counts a failed face check at activation; returns the new count.
    pub async fn add_activation_failure(&mut self, order: &OrderId, now: DateTime<Utc>) -> Result<i64, StoreError> {
        self.touch_fulfilment(
            "UPDATE fulfilments SET activation_failures = activation_failures + 1, updated_at = $1 WHERE order_id = $2",
            order,
            now,
        )
        .await?;
        Ok(self.fulfilment(order).await?.map(|f| f.activation_failures).unwrap_or(0))
    }

    /// Records an issuance batch.
    pub async fn insert_batch(&mut self, b: &BatchRecord) -> Result<(), StoreError> {
        let list = serde_json::to_string(&b.orders.iter().map(OrderId::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO issuance_batches (id, created_by, order_ids, created_at, personalised_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&b.id)
        .bind(&b.created_by)
        .bind(list)
        .bind(millis(b.created_at))
        .bind(b.personalised_at.code())
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// An issuance batch.
    pub async fn batch(&mut self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, created_by, order_ids, created_at, personalised_at FROM issuance_batches WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.conn())
        .await?
        else {
            return Ok(None);
        };
        let list: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("order_ids")?)
            .map_err(|e| StoreError::Corrupt(format!("batch orders: {e}")))?;
        let orders = list
            .iter()
            .map(|o| OrderId::parse(o).ok_or_else(|| StoreError::Corrupt(format!("batch order {o:?}"))))
            .collect::<Result<_, _>>()?;
        Ok(Some(BatchRecord {
            id: row.try_get("id")?,
            created_by: row.try_get("created_by")?,
            orders,
            created_at: from_millis(row.try_get("created_at")?),
            personalised_at: PersonalisedAt::from_code(&row.try_get::<String, _>("personalised_at")?)?,
        }))
    }

    /// Records an invoice request; `Duplicate` when the order has one.
    pub async fn insert_invoice(
        &mut self,
        order: &OrderId,
        request: &InvoiceRequest,
        amount_fen: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.vault().seal_text(&json, &invoice_context(order));
        let done = sqlx::query(
            "INSERT INTO invoices (order_id, request_sealed, amount_fen, state, requested_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(order.as_str())
        .bind(sealed)
        .bind(amount_fen)
        .bind(InvoiceState::Requested.code())
        .bind(millis(now))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Duplicate) }
    }

    fn invoice_from_row(&self, row: &AnyRow) -> Result<InvoiceRecord, StoreError> {
        let order = order_of(row)?;
        let json = self.vault().open_text(&row.try_get::<String, _>("request_sealed")?, &invoice_context(&order))?;
        let state: String = row.try_get("state")?;
        let issued_by: Option<String> = row.try_get("issued_by")?;
        Ok(InvoiceRecord {
            request: serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("invoice request: {e}")))?,
            order,
            amount_fen: row.try_get("amount_fen")?,
            state: InvoiceState::from_code(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("invoice state {state:?}")))?,
            invoice_no: row.try_get("invoice_no")?,
            pdf_blob: row.try_get("pdf_blob")?,
            requested_at: from_millis(row.try_get("requested_at")?),
            issued: opt_time(row, "issued_at")?.map(|t| (t, issued_by.unwrap_or_default())),
            submitted: match (row.try_get::<Option<String>, _>("provider")?, row.try_get("provider_serial")?) {
                (Some(p), Some(s)) => Some((p, s)),
                _ => None,
            },
            failure: row.try_get("failure")?,
        })
    }

    /// An order's invoice.
    pub async fn invoice(&mut self, order: &OrderId) -> Result<Option<InvoiceRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", invoice_columns!(), " FROM invoices WHERE order_id = $1"))
            .bind(order.as_str())
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(|r| self.invoice_from_row(r)).transpose()
    }

    /// Invoices in `state`, oldest request first.
    pub async fn invoices_in_state(
        &mut self,
        state: InvoiceState,
        limit: i64,
    ) -> Result<Vec<InvoiceRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            invoice_columns!(),
            " FROM invoices WHERE state = $1 ORDER BY requested_at, order_id LIMIT $2"
        ))
        .bind(state.code())
        .bind(limit)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| self.invoice_from_row(r)).collect()
    }

    /// Marks a requested invoice issued; `Conflict` if it was issued already.
    pub async fn set_invoice_issued(
        &mut self,
        order: &OrderId,
        invoice_no: &str,
        pdf_blob: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE invoices SET state = $1, invoice_no = $2, pdf_blob = $3, issued_by = $4, issued_at = $5 \
             WHERE order_id = $6 AND state = $7",
        )
        .bind(InvoiceState::Issued.code())
        .bind(invoice_no)
        .bind(pdf_blob)
        .bind(by)
        .bind(millis(now))
        .bind(order.as_str())
        .bind(InvoiceState::Requested.code())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Records that `provider` took the invoice request under `serial`.
    pub async fn set_invoice_submitted(
        &mut self,
        order: &OrderId,
        provider: &str,
        serial: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE invoices SET provider = $1, provider_serial = $2, failure = NULL WHERE order_id = $3 AND state = $4",
        )
        .bind(provider)
        .bind(serial)
        .bind(order.as_str())
        .bind(InvoiceState::Requested.code())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::Conflict) }
    }

    /// Records why the service could not issue a requested invoice.
    pub async fn set_invoice_failure(&mut self, order: &OrderId, failure: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE invoices SET failure = $1 WHERE order_id = $2 AND state = $3")
            .bind(failure)
            .bind(order.as_str())
            .bind(InvoiceState::Requested.code())
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Records a counter service.
    pub async fn insert_counter_service(&mut self, c: &CounterServiceRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(&c.record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.vault().seal_text(&json, &counter_context(&c.id));
        sqlx::query(
            "INSERT INTO counter_services (id, order_id, kind, staff, record_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.id)
        .bind(c.order.as_str())
        .bind(&c.kind)
        .bind(&c.staff)
        .bind(sealed)
        .bind(millis(c.created_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// An order's counter services, oldest first.
    pub async fn counter_services_of(&mut self, order: &OrderId) -> Result<Vec<CounterServiceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, order_id, kind, staff, record_sealed, created_at FROM counter_services \
             WHERE order_id = $1 ORDER BY created_at, id",
        )
        .bind(order.as_str())
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let json = self.vault().open_text(&r.try_get::<String, _>("record_sealed")?, &counter_context(&id))?;
                Ok(CounterServiceRecord {
                    order: order_of(r)?,
                    kind: r.try_get("kind")?,
                    staff: r.try_get("staff")?,
                    record: serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    created_at: from_millis(r.try_get("created_at")?),
                    id,
                })
            })
            .collect()
    }
}
