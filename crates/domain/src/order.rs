//! The Order state machine: every state an order passes through from creation to activation
//! or refund, the words the applicant sees for each, and the rules for moving between them.
//!
//! ```text
//! created ──pay──► collecting ──submit──► submitted [已支付] ──approve──► approved [待发货]
//!   │ expire/cancel   ▲    │                │ send back                    │ issue
//!   ▼                 └────┼── returned ◄───┘                             issued [待发货]
//! cancelled                │                                               │ ship
//!                          │ refund (any paid state before shipped)        shipped [已发货]
//!                          ▼                                               │ activate
//!                     refunding ──► refunded               activation_review / activated [已激活]
//! ```

use crate::ids::{OrderId, PaymentId};
use crate::materials::{Checklist, ChecklistError, Step};
use crate::money::Fen;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Agreement accepted, not paid yet.
    Created,
    /// Paid; the applicant is completing the materials checklist.
    Collecting,
    /// Materials submitted (受理成功); waiting for the CA's review.
    Submitted,
    /// A reviewer sent one step back for correction.
    Returned,
    /// Review passed; the certificate will be issued onto a key.
    Approved,
    /// Certificate issued (on hold) onto the key; waiting for the courier.
    Issued,
    /// The key is on its way.
    Shipped,
    /// The applicant passed activation, but the face check needs a staff decision before the
    /// PIN is sent.
    ActivationReview,
    /// Certificate active, PIN sent.
    Activated,
    /// A refund was requested and is being paid back.
    Refunding,
    /// The money went back through the original payment channel.
    Refunded,
    /// Closed before payment (expired or cancelled by the applicant).
    Cancelled,
}

impl OrderState {
    /// Every state, for exhaustive tests and listings.
    pub const ALL: [OrderState; 12] = [
        OrderState::Created,
        OrderState::Collecting,
        OrderState::Submitted,
        OrderState::Returned,
        OrderState::Approved,
        OrderState::Issued,
        OrderState::Shipped,
        OrderState::ActivationReview,
        OrderState::Activated,
        OrderState::Refunding,
        OrderState::Refunded,
        OrderState::Cancelled,
    ];

    /// Stable code used in storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            OrderState::Created => "created",
            OrderState::Collecting => "collecting",
            OrderState::Submitted => "submitted",
            OrderState::Returned => "returned",
            OrderState::Approved => "approved",
            OrderState::Issued => "issued",
            OrderState::Shipped => "shipped",
            OrderState::ActivationReview => "activation_review",
            OrderState::Activated => "activated",
            OrderState::Refunding => "refunding",
            OrderState::Refunded => "refunded",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// Parses an [`OrderState::code`].
    pub fn from_code(code: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The status word the applicant sees. The four words of the guide are exact:
    /// 已支付, 待发货, 已发货, 已激活.
    pub fn applicant_word(self) -> &'static str {
        match self {
            OrderState::Created => "待支付",
            OrderState::Collecting => "待提交资料",
            OrderState::Submitted => "已支付",
            OrderState::Returned => "待补正",
            OrderState::Approved | OrderState::Issued => "待发货",
            OrderState::Shipped => "已发货",
            OrderState::ActivationReview | OrderState::Activated => "已激活",
            OrderState::Refunding => "退款中",
            OrderState::Refunded => "已退款",
            OrderState::Cancelled => "已取消",
        }
    }

    /// One sentence explaining the state to the applicant.
    pub fn applicant_hint(self) -> &'static str {
        match self {
            OrderState::Created => "请在30分钟内完成支付,超时订单将自动取消。",
            OrderState::Collecting => "已完成支付,请按步骤提交申请资料。",
            OrderState::Submitted => "资料已提交并完成支付,等待CA受理员审核。",
            OrderState::Returned => "资料需要补正,请按提示重新提交对应步骤。",
            OrderState::Approved => "审核已通过,正在签发证书。",
            OrderState::Issued => "证书已签发,正在安排快递寄出。",
            OrderState::Shipped => "数字证书已通过快递寄出,收到后请扫描业务确认单上的二维码激活。",
            OrderState::ActivationReview => "证书已激活,等待CA审核通过后,PIN码将以短信发送到您的手机。",
            OrderState::Activated => "证书已激活,PIN码已通过短信发送到您的手机。",
            OrderState::Refunding => "退款处理中,款项将原路退回。",
            OrderState::Refunded => "款项已原路退回。",
            OrderState::Cancelled => "订单已取消。",
        }
    }

    /// Whether money has been received for the order and not returned.
    pub fn is_paid(self) -> bool {
        !matches!(self, OrderState::Created | OrderState::Cancelled | OrderState::Refunded)
    }

    /// The single rule for refunds: any paid state before the key is shipped.
    pub fn refund_allowed(self) -> bool {
        matches!(
            self,
            OrderState::Collecting
                | OrderState::Submitted
                | OrderState::Returned
                | OrderState::Approved
                | OrderState::Issued
        )
    }

    /// Whether the applicant may still add or redo materials.
    pub fn accepts_materials(self) -> bool {
        matches!(self, OrderState::Collecting | OrderState::Returned)
    }

    /// Whether nothing more can happen to the order.
    pub fn is_final(self) -> bool {
        matches!(self, OrderState::Activated | OrderState::Refunded | OrderState::Cancelled)
    }
}

/// Why money goes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The applicant asked for it on the order page.
    ApplicantRequest,
    /// A reviewer rejected the application.
    Rejected,
    /// Money arrived for an order already closed (expired or cancelled).
    PaidAfterClose,
    /// The order was paid twice; the second payment goes back.
    DuplicatePayment,
}

impl RefundReason {
    /// Stable code used in storage and the API.
    pub fn code(self) -> &'static str {
        match self {
            RefundReason::ApplicantRequest => "applicant_request",
            RefundReason::Rejected => "rejected",
            RefundReason::PaidAfterClose => "paid_after_close",
            RefundReason::DuplicatePayment => "duplicate_payment",
        }
    }

    /// The reason as the payer sees it on the gateway's refund record.
    pub fn words(self) -> &'static str {
        match self {
            RefundReason::ApplicantRequest => "申请人申请退款",
            RefundReason::Rejected => "申请审核未通过",
            RefundReason::PaidAfterClose => "订单已关闭后到账",
            RefundReason::DuplicatePayment => "重复支付",
        }
    }

    /// Parses a [`RefundReason::code`].
    pub fn from_code(code: &str) -> Option<RefundReason> {
        [
            RefundReason::ApplicantRequest,
            RefundReason::Rejected,
            RefundReason::PaidAfterClose,
            RefundReason::DuplicatePayment,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

/// Outcome of the face check at activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationVerdict {
    /// The identity provider is sure: release the certificate and send the PIN now.
    Pass,
    /// Inconclusive or no automatic check: a reviewer decides before the PIN is sent.
    NeedsReview,
}

/// Something asked of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The payment gateway confirmed `payment` for `amount`.
    ConfirmPayment { payment: PaymentId, amount: Fen },
    /// The unpaid order's time ran out; `now` is checked against its deadline.
    Expire { now: DateTime<Utc> },
    /// The applicant closed the unpaid order.
    Cancel,
    /// The applicant completed (or redid) a materials step.
    CompleteStep(Step),
    /// The applicant submitted the application (受理).
    Submit,
    /// A reviewer approved the application.
    Approve,
    /// A reviewer sent one step back for correction.
    SendBack { step: Step, reason: String },
    /// A reviewer rejected the application; the money goes back.
    Reject { reason: String },
    /// The certificate was issued onto the key.
    MarkIssued,
    /// The key was handed to the courier.
    Ship { courier: String, tracking_no: String },
    /// The applicant completed activation with the given face-check verdict.
    SubmitActivation { verdict: ActivationVerdict },
    /// A reviewer accepted a pending activation.
    ApproveActivation,
    /// A reviewer refused a pending activation; the applicant verifies again.
    RejectActivation { reason: String },
    /// Counter staff activated the key after checking the applicant's ID in person.
    ActivateAtCounter,
    /// Someone asked for the money back.
    RequestRefund { reason: RefundReason },
    /// The payment gateway confirmed the refund.
    ConfirmRefund,
}

/// What happened to an order; each is recorded in its history and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum OrderEvent {
    /// The applicant accepted the agreement and created the order.
    Created {
        /// The agreement version accepted.
        agreement_version: String,
    },
    /// Payment received.
    Paid { payment: PaymentId, amount: Fen },
    /// A second payment arrived for an order already paid; that payment must be refunded.
    DuplicatePayment { payment: PaymentId, amount: Fen },
    /// The unpaid order expired.
    Expired,
    /// The applicant closed the unpaid order.
    Cancelled,
    /// A materials step was completed (or redone).
    StepCompleted { step: Step },
    /// Application submitted (受理成功).
    Submitted,
    /// Review passed.
    Approved,
    /// A step was sent back with a reason.
    SentBack { step: Step, reason: String },
    /// The application was rejected.
    Rejected { reason: String },
    /// Certificate issued onto the key.
    Issued,
    /// Handed to the courier.
    Shipped {
        /// The courier's name.
        courier: String,
        /// The waybill number.
        tracking_no: String,
    },
    /// Activation submitted; the verdict says whether the PIN goes now or after review.
    ActivationSubmitted { verdict: ActivationVerdict },
    /// A reviewer refused the activation video; the applicant verifies again.
    ActivationRejected { reason: String },
    /// Certificate activated and PIN due.
    Activated,
    /// A refund of the order's payment was started.
    RefundRequested { reason: RefundReason },
    /// The refund went through.
    Refunded,
}

impl OrderEvent {
    /// Stable code of the event kind, for storage and the audit trail.
    pub fn code(&self) -> &'static str {
        match self {
            OrderEvent::Created { .. } => "created",
            OrderEvent::Paid { .. } => "paid",
            OrderEvent::DuplicatePayment { .. } => "duplicate_payment",
            OrderEvent::Expired => "expired",
            OrderEvent::Cancelled => "cancelled",
            OrderEvent::StepCompleted { .. } => "step_completed",
            OrderEvent::Submitted => "submitted",
            OrderEvent::Approved => "approved",
            OrderEvent::SentBack { .. } => "sent_back",
            OrderEvent::Rejected { .. } => "rejected",
            OrderEvent::Issued => "issued",
            OrderEvent::Shipped { .. } => "shipped",
            OrderEvent::ActivationRejected { .. } => "activation_rejected",
            OrderEvent::ActivationSubmitted { .. } => "activation_submitted",
            OrderEvent::Activated => "activated",
            OrderEvent::RefundRequested { .. } => "refund_requested",
            OrderEvent::Refunded => "refunded",
        }
    }

    /// The line shown in the applicant's status timeline.
    pub fn applicant_text(&self) -> String {
        match self {
            OrderEvent::Created { .. } => "提交订单,已同意申请协议".into(),
            OrderEvent::Paid { amount, .. } => format!("支付成功 {amount}"),
            OrderEvent::DuplicatePayment { amount, .. } => format!("重复支付 {amount},将原路退回"),
            OrderEvent::Expired => "超时未支付,订单已取消".into(),
            OrderEvent::Cancelled => "订单已取消".into(),
            OrderEvent::StepCompleted { step } => format!("完成“{}”", step.title()),
            OrderEvent::Submitted => "受理成功,等待审核".into(),
            OrderEvent::Approved => "审核通过".into(),
            OrderEvent::SentBack { step, reason } => format!("需补正“{}”:{reason}", step.title()),
            OrderEvent::Rejected { reason } => format!("审核未通过:{reason}"),
            OrderEvent::Issued => "证书已签发".into(),
            OrderEvent::Shipped { courier, tracking_no } => format!("已发货:{courier} {tracking_no}"),
            OrderEvent::ActivationRejected { reason } => format!("激活审核未通过:{reason},请重新验证"),
            OrderEvent::ActivationSubmitted { verdict: ActivationVerdict::Pass } => "身份验证通过".into(),
            OrderEvent::ActivationSubmitted { verdict: ActivationVerdict::NeedsReview } => {
                "身份验证已提交,等待审核".into()
            }
            OrderEvent::Activated => "证书已激活".into(),
            OrderEvent::RefundRequested { .. } => "已申请退款".into(),
            OrderEvent::Refunded => "退款成功".into(),
        }
    }
}

/// Why a command was refused. The `Display` text is shown to the person who asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The order is not paid yet.
    #[error("订单尚未支付")]
    NotPaid,
    /// The order was already paid; payment is not needed again.
    #[error("订单已支付,无需重复支付")]
    AlreadyPaid,
    /// The order is closed.
    #[error("订单已关闭")]
    Closed,
    /// The payment does not match the price.
    #[error("支付金额与订单金额不符")]
    AmountMismatch,
    /// The unpaid order's deadline has not passed.
    #[error("订单尚未超时")]
    NotExpired,
    /// Materials cannot be changed in this state.
    #[error("当前订单状态不能修改申请资料")]
    MaterialsLocked,
    /// A step must be done before this one.
    #[error(transparent)]
    Checklist(#[from] ChecklistError),
    /// Submission with steps still open.
    #[error("请先完成“{0}”")]
    Incomplete(Step),
    /// Refund once the key is shipped.
    #[error("订单已发货,不能申请退款")]
    RefundAfterShipping,
    /// A refund is already under way or done.
    #[error("退款已在处理中或已完成")]
    RefundAlreadyRequested,
    /// The command does not apply in the order's current state.
    #[error("当前订单状态({state})不能执行此操作")]
    WrongState {
        /// The applicant word of the current state.
        state: &'static str,
    },
}

/// An order as the domain sees it: its state, what is done, and who paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The order number.
    pub id: OrderId,
    /// What the order costs.
    pub price: Fen,
    /// Where the order is.
    pub state: OrderState,
    /// Which materials steps are done.
    pub checklist: Checklist,
    /// The payment that paid for the order, once paid.
    pub paid_by: Option<PaymentId>,
    /// When an unpaid order expires.
    pub pay_deadline: DateTime<Utc>,
}

/// The result of a command: the order after it and what happened. An empty `events` list
/// means the command was a harmless repeat (e.g. a replayed payment notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The order after the command.
    pub order: Order,
    /// What happened, in order.
    pub events: Vec<OrderEvent>,
}

impl Order {
    /// A new unpaid order.
    pub fn new(id: OrderId, price: Fen, pay_deadline: DateTime<Utc>) -> Order {
        Order { id, price, state: OrderState::Created, checklist: Checklist::default(), paid_by: None, pay_deadline }
    }

    fn wrong_state(&self) -> OrderError {
        OrderError::WrongState { state: self.state.applicant_word() }
    }

    /// Applies `command`: the new order and its events, or why it was refused. Never
    /// mutates `self`.
    pub fn execute(&self, command: Command) -> Result<Transition, OrderError> {
        use OrderState as S;
        let mut next = self.clone();
        let mut events = Vec::new();
        match command {
            Command::ConfirmPayment { payment, amount } => {
                if self.paid_by.as_ref() == Some(&payment) {
                    // Replayed notification for the payment we already have.
                } else if amount != self.price {
                    return Err(OrderError::AmountMismatch);
                } else if self.paid_by.is_some() {
                    events.push(OrderEvent::DuplicatePayment { payment, amount });
                } else {
                    next.paid_by = Some(payment.clone());
                    events.push(OrderEvent::Paid { payment, amount });
                    match self.state {
                        S::Created => next.state = S::Collecting,
                        S::Cancelled => {
                            next.state = S::Refunding;
                            events.push(OrderEvent::RefundRequested { reason: RefundReason::PaidAfterClose });
                        }
                        // paid_by is None only in Created and Cancelled.
                        _ => return Err(self.wrong_state()),
                    }
                }
            }
            Command::Expire { now } => match self.state {
                S::Created if now >= self.pay_deadline => {
                    next.state = S::Cancelled;
                    events.push(OrderEvent::Expired);
                }
                S::Created => return Err(OrderError::NotExpired),
                _ => return Err(self.wrong_state()),
            },
            Command::Cancel => match self.state {
                S::Created => {
                    next.state = S::Cancelled;
                    events.push(OrderEvent::Cancelled);
                }
                S::Cancelled => {}
                _ => return Err(OrderError::AlreadyPaid),
            },
            Command::CompleteStep(step) => {
                if !self.state.accepts_materials() {
                    return Err(match self.state {
                        S::Created => OrderError::NotPaid,
                        _ => OrderError::MaterialsLocked,
                    });
                }
                next.checklist = self.checklist.complete(step)?;
                events.push(OrderEvent::StepCompleted { step });
            }
            Command::Submit => match self.state {
                // A second tap on 确定: already submitted, nothing more to do.
                S::Submitted => {}
                S::Created => return Err(OrderError::NotPaid),
                S::Collecting | S::Returned => {
                    if let Some(open) = self.checklist.next_open() {
                        return Err(OrderError::Incomplete(open));
                    }
                    next.state = S::Submitted;
                    events.push(OrderEvent::Submitted);
                }
                _ => return Err(self.wrong_state()),
            },
            Command::Approve => {
                self.require(S::Submitted)?;
                next.state = S::Approved;
                events.push(OrderEvent::Approved);
            }
            Command::SendBack { step, reason } => {
                self.require(S::Submitted)?;
                next.state = S::Returned;
                next.checklist = self.checklist.reopen(step);
                events.push(OrderEvent::SentBack { step, reason });
            }
            Command::Reject { reason } => {
                self.require(S::Submitted)?;
                next.state = S::Refunding;
                events.push(OrderEvent::Rejected { reason });
                events.push(OrderEvent::RefundRequested { reason: RefundReason::Rejected });
            }
            Command::MarkIssued => {
                self.require(S::Approved)?;
                next.state = S::Issued;
                events.push(OrderEvent::Issued);
            }
            Command::Ship { courier, tracking_no } => {
                self.require(S::Issued)?;
                next.state = S::Shipped;
                events.push(OrderEvent::Shipped { courier, tracking_no });
            }
            Command::SubmitActivation { verdict } => {
                self.require(S::Shipped)?;
                events.push(OrderEvent::ActivationSubmitted { verdict });
                match verdict {
                    ActivationVerdict::Pass => {
                        next.state = S::Activated;
                        events.push(OrderEvent::Activated);
                    }
                    ActivationVerdict::NeedsReview => next.state = S::ActivationReview,
                }
            }
            Command::ApproveActivation => {
                self.require(S::ActivationReview)?;
                next.state = S::Activated;
                events.push(OrderEvent::Activated);
            }
            Command::RejectActivation { reason } => {
                self.require(S::ActivationReview)?;
                next.state = S::Shipped;
                events.push(OrderEvent::ActivationRejected { reason });
            }
            Command::ActivateAtCounter => match self.state {
                S::Shipped | S::ActivationReview => {
                    next.state = S::Activated;
                    events.push(OrderEvent::Activated);
                }
                _ => return Err(self.wrong_state()),
            },
            Command::RequestRefund { reason } => {
                if !self.state.refund_allowed() {
                    return Err(match self.state {
                        S::Created => OrderError::NotPaid,
                        S::Cancelled => OrderError::Closed,
                        S::Refunding | S::Refunded => OrderError::RefundAlreadyRequested,
                        _ => OrderError::RefundAfterShipping,
                    });
                }
                next.state = S::Refunding;
                events.push(OrderEvent::RefundRequested { reason });
            }
            Command::ConfirmRefund => match self.state {
                S::Refunding => {
                    next.state = S::Refunded;
                    events.push(OrderEvent::Refunded);
                }
                S::Refunded => {}
                _ => return Err(self.wrong_state()),
            },
        }
        Ok(Transition { order: next, events })
    }

    fn require(&self, state: OrderState) -> Result<(), OrderError> {
        if self.state == state { Ok(()) } else { Err(self.wrong_state()) }
    }
}

#[cfg(test)]
mod tests;
