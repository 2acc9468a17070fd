//! Unit and property tests of the Order state machine.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
}

fn new_order() -> Order {
    Order::new(OrderId::parse("YQ1").unwrap(), Fen(15000), t(1800))
}

fn pay(p: &str) -> Command {
    Command::ConfirmPayment { payment: PaymentId::parse(p).unwrap(), amount: Fen(15000) }
}

fn run(order: &Order, cmds: impl IntoIterator<Item = Command>) -> Order {
    cmds.into_iter().fold(order.clone(), |o, c| o.execute(c).unwrap().order)
}

fn ship() -> Command {
    Command::Ship { courier: "顺丰速运".into(), tracking_no: "SF1234567890".into() }
}

fn submitted() -> Order {
    let o = run(&new_order(), [pay("P1")]);
    let o = run(&o, Step::ALL.map(Command::CompleteStep));
    run(&o, [Command::Submit])
}

#[test]
fn happy_path_shows_the_guide_words() {
    let o = new_order();
    assert_eq!(o.state.applicant_word(), "待支付");
    let o = submitted();
    assert_eq!(o.state.applicant_word(), "已支付");
    let o = run(&o, [Command::Approve]);
    assert_eq!(o.state.applicant_word(), "待发货");
    let o = run(&o, [Command::MarkIssued]);
    assert_eq!(o.state.applicant_word(), "待发货");
    let o = run(&o, [ship()]);
    assert_eq!(o.state.applicant_word(), "已发货");
    let o = run(&o, [Command::SubmitActivation { verdict: ActivationVerdict::NeedsReview }]);
    assert_eq!(o.state, OrderState::ActivationReview);
    assert_eq!(o.state.applicant_word(), "已激活");
    let o = run(&o, [Command::ApproveActivation]);
    assert_eq!(o.state, OrderState::Activated);
}

#[test]
fn a_refused_activation_goes_back_to_shipped_and_the_counter_can_activate() {
    let shipped = run(&submitted(), [Command::Approve, Command::MarkIssued, ship()]);
    let review = run(&shipped, [Command::SubmitActivation { verdict: ActivationVerdict::NeedsReview }]);
    let tr = review.execute(Command::RejectActivation { reason: "视频模糊".into() }).unwrap();
    assert_eq!(tr.order.state, OrderState::Shipped);
    assert_eq!(tr.events[0].applicant_text(), "激活审核未通过:视频模糊,请重新验证");
    let tr = tr.order.execute(Command::ActivateAtCounter).unwrap();
    assert_eq!(tr.order.state, OrderState::Activated);
    assert_eq!(tr.events, vec![OrderEvent::Activated]);
    assert!(tr.order.execute(Command::ActivateAtCounter).is_err());
    assert!(submitted().execute(Command::ActivateAtCounter).is_err());
    assert!(shipped.execute(Command::RejectActivation { reason: "r".into() }).is_err());
}

#[test]
fn replayed_payment_changes_nothing() {
    let o = run(&new_order(), [pay("P1")]);
    let again = o.execute(pay("P1")).unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.order, o);
}

#[test]
fn second_payment_is_flagged_for_refund_without_changing_state() {
    let o = run(&new_order(), [pay("P1")]);
    let tr = o.execute(pay("P2")).unwrap();
    assert_eq!(tr.order, o);
    assert!(matches!(tr.events[..], [OrderEvent::DuplicatePayment { .. }]));
}

#[test]
fn wrong_amount_is_refused() {
    let cmd = Command::ConfirmPayment { payment: PaymentId::parse("P1").unwrap(), amount: Fen(1) };
    assert_eq!(new_order().execute(cmd), Err(OrderError::AmountMismatch));
}

#[test]
fn payment_after_expiry_is_refunded() {
    let o = run(&new_order(), [Command::Expire { now: t(1800) }]);
    assert_eq!(o.state, OrderState::Cancelled);
    let tr = o.execute(pay("P1")).unwrap();
    assert_eq!(tr.order.state, OrderState::Refunding);
    assert!(tr.events.contains(&OrderEvent::RefundRequested { reason: RefundReason::PaidAfterClose }));
}

#[test]
fn expiry_waits_for_the_deadline() {
    assert_eq!(new_order().execute(Command::Expire { now: t(1799) }), Err(OrderError::NotExpired));
}

#[test]
fn refund_is_refused_once_shipped() {
    let o = run(&submitted(), [Command::Approve, Command::MarkIssued, ship()]);
    let refund = Command::RequestRefund { reason: RefundReason::ApplicantRequest };
    assert_eq!(o.execute(refund), Err(OrderError::RefundAfterShipping));
}

#[test]
fn steps_cannot_be_skipped_or_changed_after_submission() {
    let o = run(&new_order(), [pay("P1")]);
    assert_eq!(
        o.execute(Command::CompleteStep(Step::Signature)),
        Err(OrderError::Checklist(ChecklistError::EarlierStepOpen(Step::Phone)))
    );
    assert_eq!(o.execute(Command::Submit), Err(OrderError::Incomplete(Step::Phone)));
    let s = submitted();
    assert_eq!(s.execute(Command::CompleteStep(Step::Phone)), Err(OrderError::MaterialsLocked));
    // A double-click on submit is harmless.
    assert!(s.execute(Command::Submit).unwrap().events.is_empty());
}

#[test]
fn send_back_reopens_one_step() {
    let o = run(&submitted(), [Command::SendBack { step: Step::Signature, reason: "签名不清晰".into() }]);
    assert_eq!(o.state, OrderState::Returned);
    assert_eq!(o.checklist.next_open(), Some(Step::Signature));
    assert_eq!(o.execute(Command::Submit), Err(OrderError::Incomplete(Step::Signature)));
    let o = run(&o, [Command::CompleteStep(Step::Signature), Command::Submit]);
    assert_eq!(o.state, OrderState::Submitted);
}

#[test]
fn reject_starts_a_refund() {
    let o = run(&submitted(), [Command::Reject { reason: "照片模糊".into() }]);
    assert_eq!(o.state, OrderState::Refunding);
    let o = run(&o, [Command::ConfirmRefund]);
    assert_eq!(o.state, OrderState::Refunded);
    assert!(o.execute(Command::ConfirmRefund).unwrap().events.is_empty());
}

#[test]
fn codes_round_trip() {
    for s in OrderState::ALL {
        assert_eq!(OrderState::from_code(s.code()), Some(s));
        assert!(!s.applicant_word().is_empty());
        assert!(!s.applicant_hint().is_empty());
    }
}

fn command() -> impl Strategy<Value = Command> {
    let step = (0usize..5).prop_map(|i| Step::ALL[i]);
    prop_oneof![
        (0u8..3, any::<bool>()).prop_map(|(p, ok)| Command::ConfirmPayment {
            payment: PaymentId::parse(&format!("P{p}")).unwrap(),
            amount: if ok { Fen(15000) } else { Fen(100) },
        }),
        (0i64..4000).prop_map(|s| Command::Expire { now: t(s) }),
        Just(Command::Cancel),
        step.clone().prop_map(Command::CompleteStep),
        step.clone().prop_map(Command::CompleteStep),
        step.clone().prop_map(Command::CompleteStep),
        Just(Command::Submit),
        Just(Command::Approve),
        step.prop_map(|step| Command::SendBack { step, reason: "r".into() }),
        Just(Command::Reject { reason: "r".into() }),
        Just(Command::MarkIssued),
        Just(ship()),
        prop_oneof![Just(ActivationVerdict::Pass), Just(ActivationVerdict::NeedsReview)]
            .prop_map(|verdict| Command::SubmitActivation { verdict }),
        Just(Command::ApproveActivation),
        Just(Command::RejectActivation { reason: "r".into() }),
        Just(Command::ActivateAtCounter),
        Just(Command::RequestRefund { reason: RefundReason::ApplicantRequest }),
        Just(Command::ConfirmRefund),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No command sequence ships an unpaid or refunded order; a refund, once started, ends
    /// only in refunded; a shipped order is never refunded; a repeat changes nothing.
    #[test]
    fn order_invariants_hold(cmds in proptest::collection::vec(command(), 0..60)) {
        let mut order = new_order();
        let mut refund_started = false;
        let mut seen_submitted = false;
        for cmd in cmds {
            let was_shipped = matches!(order.state,
                OrderState::Shipped | OrderState::ActivationReview | OrderState::Activated);
            let is_refund = matches!(cmd, Command::RequestRefund { .. });
            match order.execute(cmd) {
                Ok(tr) => {
                    if tr.events.is_empty() {
                        prop_assert_eq!(&tr.order, &order);
                    }
                    for e in &tr.events {
                        if matches!(e, OrderEvent::RefundRequested { .. }) { refund_started = true; }
                        if matches!(e, OrderEvent::Submitted) { seen_submitted = true; }
                    }
                    order = tr.order;
                }
                Err(_) => {
                    prop_assert!(!(is_refund && order.state.refund_allowed()));
                }
            }
            if was_shipped {
                prop_assert!(!matches!(order.state, OrderState::Refunding | OrderState::Refunded));
            }
            if matches!(order.state,
                OrderState::Submitted | OrderState::Approved | OrderState::Issued |
                OrderState::Shipped | OrderState::ActivationReview | OrderState::Activated)
            {
                prop_assert!(order.paid_by.is_some());
                prop_assert!(seen_submitted);
                prop_assert!(order.checklist.is_complete());
            }
            if matches!(order.state, OrderState::Shipped | OrderState::ActivationReview | OrderState::Activated) {
                prop_assert!(!refund_started, "a refunded order reached {:?}", order.state);
            }
            if refund_started {
                prop_assert!(matches!(order.state, OrderState::Refunding | OrderState::Refunded));
                prop_assert!(order.paid_by.is_some());
            }
            prop_assert_eq!(order.state.is_paid(), order.paid_by.is_some() && order.state != OrderState::Refunded);
        }
    }

    /// Every state an order can reach has an applicant word, and the paid-and-reviewed
    /// states use exactly the guide's words.
    #[test]
    fn reachable_states_have_their_words(cmds in proptest::collection::vec(command(), 0..60)) {
        let mut order = new_order();
        for cmd in cmds {
            if let Ok(tr) = order.execute(cmd) { order = tr.order; }
            let word = order.state.applicant_word();
            prop_assert!(!word.is_empty());
            let expected = match order.state {
                OrderState::Submitted => Some("已支付"),
                OrderState::Approved | OrderState::Issued => Some("待发货"),
                OrderState::Shipped => Some("已发货"),
                OrderState::ActivationReview | OrderState::Activated => Some("已激活"),
                _ => None,
            };
            if let Some(w) = expected { prop_assert_eq!(word, w); }
        }
    }
}
