//! The errors a use case ends with. Each has a stable code (for the JSON API and the
//! mini-program) and a message in Chinese for the person who caused it; internal details
//! are logged, never shown.

use yiqian_domain::OrderError;
use yiqian_domain::applicant::{AddressError, IdCardError};
use yiqian_domain::identity::MobileNumberError;
use yiqian_domain::media::UploadError;
use yiqian_domain::regions::DivisionError;
use yiqian_providers::ProviderError;
use yiqian_store::StoreError;

/// Why a use case did not complete.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is wrong; the message says how to fix it.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// What to fix, in Chinese.
        message: String,
        /// The input to fix, by its form name (`id_number`, `street`, the photo `front` …),
        /// where one input is at fault; pages show the message beside it.
        field: Option<&'static str>,
    },
    /// Not logged in, or the session ended.
    #[error("请先登录")]
    Unauthorized,
    /// Logged in, but the role does not allow this.
    #[error("您的角色无权执行此操作")]
    Forbidden,
    /// The thing does not exist (or is not the caller's).
    #[error("{0}不存在")]
    NotFound(&'static str),
    /// The order's state does not allow this now.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Why, in Chinese.
        message: String,
    },
    /// The data was deleted under the retention rules or on request.
    #[error("{0}已按保存期限删除")]
    Erased(&'static str),
    /// Too many requests; try again later.
    #[error("{message}")]
    RateLimited {
        /// Why, in Chinese.
        message: String,
        /// When to try again.
        retry_after_seconds: i64,
    },
    /// The system stayed busy through every retry.
    #[error("系统繁忙,请稍后重试")]
    Busy,
    /// An outside service is unavailable.
    #[error("服务暂时不可用,请稍后重试")]
    Unavailable(String),
    /// A bug or broken storage; details go to the log only.
    #[error("系统错误,请稍后重试")]
    Internal(String),
    /// A unit of work met a concurrent change; retried by [`in_tx`](crate::in_tx).
    #[error("concurrent change")]
    Retry,
}

impl AppError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid { code, .. } | AppError::Conflict { code, .. } => code,
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Erased(_) => "erased",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Busy | AppError::Retry => "busy",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// Whether the unit of work should be run again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AppError::Retry)
    }

    /// Bad input, not tied to one field.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Invalid { code, message: message.into(), field: None }
    }

    /// Bad input in one named field.
    pub fn invalid_field(code: &'static str, field: &'static str, message: impl Into<String>) -> AppError {
        AppError::Invalid { code, message: message.into(), field: Some(field) }
    }

    /// The input at fault, where one is (see [`AppError::Invalid`]).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AppError::Invalid { field, .. } => *field,
            _ => None,
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict | StoreError::Busy => AppError::Retry,
            StoreError::NotFound(what) => AppError::Internal(format!("{what} missing")),
            StoreError::Erased(_) => AppError::Erased("资料"),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<ProviderError> for AppError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Transient { .. } => AppError::Unavailable(e.to_string()),
            ProviderError::Rejected { .. } => AppError::Internal(e.to_string()),
        }
    }
}

impl From<OrderError> for AppError {
    fn from(e: OrderError) -> Self {
        let code = match &e {
            OrderError::NotPaid => "order_not_paid",
            OrderError::AlreadyPaid => "order_already_paid",
            OrderError::Closed => "order_closed",
            OrderError::AmountMismatch => "amount_mismatch",
            OrderError::NotExpired => "order_not_expired",
            OrderError::MaterialsLocked => "materials_locked",
            OrderError::Checklist(_) => "step_out_of_order",
            OrderError::Incomplete(_) => "materials_incomplete",
            OrderError::RefundAfterShipping => "refund_after_shipping",
            OrderError::RefundAlreadyRequested => "refund_already_requested",
            OrderError::WrongState { .. } => "wrong_state",
        };
        AppError::Conflict { code, message: e.to_string() }
    }
}

macro_rules! invalid_from {
    ($($t:ty => $code:literal),* $(,)?) => {
        $(impl From<$t> for AppError {
            fn from(e: $t) -> Self {
                AppError::invalid($code, e.to_string())
            }
        })*
    };
}

impl From<IdCardError> for AppError {
    fn from(e: IdCardError) -> Self {
        AppError::invalid_field("invalid_id_card", e.field(), e.to_string())
    }
}

impl From<AddressError> for AppError {
    fn from(e: AddressError) -> Self {
        AppError::invalid_field("invalid_address", e.field(), e.to_string())
    }
}

impl From<MobileNumberError> for AppError {
    fn from(e: MobileNumberError) -> Self {
        AppError::invalid_field("invalid_phone", "phone", e.to_string())
    }
}

invalid_from!(
    UploadError => "invalid_upload",
    DivisionError => "invalid_region",
);
