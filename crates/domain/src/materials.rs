//! The materials checklist an applicant completes after paying, in the guide's order:
//! phone bound, ID card captured and confirmed, face video, signature, shipping address.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One step of the materials checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The mobile number bound by an SMS code.
    Phone,
    /// ID card photographed (front and back) and its fields confirmed.
    IdCard,
    /// Face video reading the challenge digits.
    Liveness,
    /// Handwritten signature.
    Signature,
    /// Shipping address.
    Address,
}

impl Step {
    /// Every step, in the order the applicant does them.
    pub const ALL: [Step; 5] = [Step::Phone, Step::IdCard, Step::Liveness, Step::Signature, Step::Address];

    /// Stable code used in URLs, the API and storage.
    pub fn code(self) -> &'static str {
        match self {
            Step::Phone => "phone",
            Step::IdCard => "id_card",
            Step::Liveness => "liveness",
            Step::Signature => "signature",
            Step::Address => "address",
        }
    }

    /// Parses a [`Step::code`].
    pub fn from_code(code: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The step's name as the applicant reads it.
    pub fn title(self) -> &'static str {
        match self {
            Step::Phone => "绑定手机",
            Step::IdCard => "身份证拍照",
            Step::Liveness => "人脸验证",
            Step::Signature => "手写签名",
            Step::Address => "填写地址",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// Steps whose evidence no longer holds once this step is redone: the face video is
    /// compared with the ID card photo, so a new ID card needs a new face video.
    pub fn invalidates(self) -> &'static [Step] {
        match self {
            Step::IdCard => &[Step::Liveness],
            _ => &[],
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.title())
    }
}

/// Which steps are done. A step may be done once every earlier step is done, and may be
/// redone any number of times before the application is submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Checklist(u8);

/// Why a step cannot be done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChecklistError {
    /// An earlier step is still open.
    #[error("请先完成“{0}”")]
    EarlierStepOpen(Step),
}

impl Checklist {
    /// Whether `step` is done.
    pub fn is_done(self, step: Step) -> bool {
        self.0 & step.bit() != 0
    }

    /// Whether every step is done.
    pub fn is_complete(self) -> bool {
        Step::ALL.into_iter().all(|s| self.is_done(s))
    }

    /// The first step still open, if any.
    pub fn next_open(self) -> Option<Step> {
        Step::ALL.into_iter().find(|s| !self.is_done(*s))
    }

    /// Marks `step` done (again), reopening the steps it invalidates.
    pub fn complete(self, step: Step) -> Result<Checklist, ChecklistError> {
        if let Some(open) = Step::ALL.into_iter().take_while(|s| *s < step).find(|s| !self.is_done(*s)) {
            return Err(ChecklistError::EarlierStepOpen(open));
        }
        let mut bits = self.0 | step.bit();
        for s in step.invalidates() {
            bits &= !s.bit();
        }
        Ok(Checklist(bits))
    }

    /// Reopens `step` (a reviewer sent it back) and the steps it invalidates.
    pub fn reopen(self, step: Step) -> Checklist {
        let mut bits = self.0 & !step.bit();
        for s in step.invalidates() {
            bits &= !s.bit();
        }
        Checklist(bits)
    }

    /// The checklist as stored: one bit per step.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Restores a stored checklist; unknown bits are dropped.
    pub fn from_bits(bits: u8) -> Checklist {
        Checklist(bits & 0b1_1111)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn steps_follow_the_guide_order() {
        let c = Checklist::default();
        assert_eq!(c.next_open(), Some(Step::Phone));
        assert_eq!(c.complete(Step::IdCard), Err(ChecklistError::EarlierStepOpen(Step::Phone)));
        let mut c = c;
        for s in Step::ALL {
            c = c.complete(s).unwrap();
        }
        assert!(c.is_complete());
        assert_eq!(c.next_open(), None);
    }

    #[test]
    fn redoing_the_id_card_needs_a_new_face_video() {
        let mut c = Checklist::default();
        for s in Step::ALL {
            c = c.complete(s).unwrap();
        }
        let c = c.complete(Step::IdCard).unwrap();
        assert!(!c.is_done(Step::Liveness));
        assert_eq!(c.next_open(), Some(Step::Liveness));
        assert!(c.is_done(Step::Address));
    }

    #[test]
    fn codes_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::from_code(s.code()), Some(s));
        }
        assert_eq!(Step::from_code("nope"), None);
    }

    proptest! {
        /// Whatever the applicant does, a step is never done while an earlier step is open,
        /// except steps left done when an earlier one was redone or reopened.
        #[test]
        fn complete_never_skips_ahead(ops in proptest::collection::vec((0usize..5, any::<bool>()), 0..40)) {
            let mut c = Checklist::default();
            for (i, reopen) in ops {
                let step = Step::ALL[i];
                if reopen {
                    c = c.reopen(step);
                    prop_assert!(!c.is_done(step));
                } else {
                    match c.complete(step) {
                        Ok(next) => {
                            prop_assert!(Step::ALL.iter().filter(|s| **s < step).all(|s| c.is_done(*s)));
                            prop_assert!(next.is_done(step));
                            c = next;
                        }
                        Err(ChecklistError::EarlierStepOpen(open)) => {
                            prop_assert!(open < step);
                            prop_assert!(!c.is_done(open));
                        }
                    }
                }
                prop_assert_eq!(Checklist::from_bits(c.bits()), c);
            }
        }
    }
}
