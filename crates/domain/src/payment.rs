//! Payments and refunds at the gateway: their states and the idempotent rules for
//! notifications, which may arrive late, twice, or out of order.

use crate::money::Fen;
use serde::{Deserialize, Serialize};

/// The payment channels an applicant may use: only WeChat Pay and Alipay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 微信支付.
    Wechat,
    /// 支付宝.
    Alipay,
}

impl Channel {
    /// Stable code used in storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Wechat => "wechat",
            Channel::Alipay => "alipay",
        }
    }

    /// Parses a [`Channel::code`].
    pub fn from_code(code: &str) -> Option<Channel> {
        match code {
            "wechat" => Some(Channel::Wechat),
            "alipay" => Some(Channel::Alipay),
            _ => None,
        }
    }

    /// The channel's name as the applicant reads it.
    pub fn title(self) -> &'static str {
        match self {
            Channel::Wechat => "微信支付",
            Channel::Alipay => "支付宝",
        }
    }
}

/// Where a payment or a refund is at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    /// Sent to the gateway, not confirmed yet.
    Pending,
    /// The gateway confirmed it.
    Succeeded,
}

impl GatewayState {
    /// Stable code used in storage.
    pub fn code(self) -> &'static str {
        match self {
            GatewayState::Pending => "pending",
            GatewayState::Succeeded => "succeeded",
        }
    }

    /// Parses a [`GatewayState::code`].
    pub fn from_code(code: &str) -> Option<GatewayState> {
        match code {
            "pending" => Some(GatewayState::Pending),
            "succeeded" => Some(GatewayState::Succeeded),
            _ => None,
        }
    }

    /// Applies a gateway confirmation: `Some(Succeeded)` if this changes anything, `None` for
    /// a repeat. Confirmation is the only transition, so repeats and late copies are absorbed.
    pub fn confirm(self) -> Option<GatewayState> {
        match self {
            GatewayState::Pending => Some(GatewayState::Succeeded),
            GatewayState::Succeeded => None,
        }
    }
}

/// Why a gateway notification was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The notified amount differs from what we asked for.
    #[error("notified amount {notified} differs from the requested {requested}")]
    AmountMismatch {
        /// What we asked the gateway for.
        requested: Fen,
        /// What the gateway says it took.
        notified: Fen,
    },
}

/// Checks a notified amount against the requested one.
pub fn check_amount(requested: Fen, notified: Fen) -> Result<(), NotificationError> {
    if requested == notified { Ok(()) } else { Err(NotificationError::AmountMismatch { requested, notified }) }
}
