//! The CA's staff: their roles, what each role may do (one matrix, [`Role::permissions`]),
//! login names, and the rules of staff login (password length, lockout, session lengths).
//!
//! Separation of duties: no role does everything. The administrator manages accounts and
//! reads the audit trail, but reviews, issues, ships and bills nothing; the auditor only reads.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a member of staff does at the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 受理审核员: reviews applications and activations.
    Reviewer,
    /// 制证发货员: personalises keys, prints forms, ships, records returned forms.
    Fulfilment,
    /// 财务: invoices and payments.
    Finance,
    /// 柜台业务员: after-sales at a service point.
    Counter,
    /// 审计员: reads the audit trail.
    Auditor,
    /// 系统管理员: manages staff accounts.
    Admin,
}

/// One thing a role may do in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Approve, send back or reject submitted applications.
    ReviewApplications,
    /// Decide activations that automatic verification left open.
    ReviewActivations,
    /// Personalise a UKEY and issue its certificate.
    IssueTokens,
    /// Print the business confirmation forms.
    PrintForms,
    /// Enter tracking numbers and mark orders shipped.
    ShipOrders,
    /// Record that a signed confirmation form came back.
    RecordFormReturns,
    /// Issue and manage e-invoices.
    ManageInvoices,
    /// See payments and refunds.
    ViewPayments,
    /// After-sales at the counter (PIN unlock, re-issue, renewal, revocation).
    CounterService,
    /// Read and verify the audit trail.
    ViewAudit,
    /// Add, disable and reset staff accounts.
    ManageStaff,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 11] = [
        Permission::ReviewApplications,
        Permission::ReviewActivations,
        Permission::IssueTokens,
        Permission::PrintForms,
        Permission::ShipOrders,
        Permission::RecordFormReturns,
        Permission::ManageInvoices,
        Permission::ViewPayments,
        Permission::CounterService,
        Permission::ViewAudit,
        Permission::ManageStaff,
    ];

    /// Stable code (logs, audit details).
    pub fn code(self) -> &'static str {
        match self {
            Permission::ReviewApplications => "review_applications",
            Permission::ReviewActivations => "review_activations",
            Permission::IssueTokens => "issue_tokens",
            Permission::PrintForms => "print_forms",
            Permission::ShipOrders => "ship_orders",
            Permission::RecordFormReturns => "record_form_returns",
            Permission::ManageInvoices => "manage_invoices",
            Permission::ViewPayments => "view_payments",
            Permission::CounterService => "counter_service",
            Permission::ViewAudit => "view_audit",
            Permission::ManageStaff => "manage_staff",
        }
    }
}

impl Role {
    /// Every role, in the order the console lists them.
    pub const ALL: [Role; 6] =
        [Role::Reviewer, Role::Fulfilment, Role::Finance, Role::Counter, Role::Auditor, Role::Admin];

    /// Stable code used in storage, the CLI and forms.
    pub fn code(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Fulfilment => "fulfilment",
            Role::Finance => "finance",
            Role::Counter => "counter",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Parses a [`Role::code`].
    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The role's title as staff read it.
    pub fn title(self) -> &'static str {
        match self {
            Role::Reviewer => "受理审核员",
            Role::Fulfilment => "制证发货员",
            Role::Finance => "财务",
            Role::Counter => "柜台业务员",
            Role::Auditor => "审计员",
            Role::Admin => "系统管理员",
        }
    }

    /// What the role may do: the one place of the permission matrix.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Reviewer => &[ReviewApplications, ReviewActivations],
            Role::Fulfilment => &[IssueTokens, PrintForms, ShipOrders, RecordFormReturns],
            Role::Finance => &[ManageInvoices, ViewPayments],
            Role::Counter => &[CounterService],
            Role::Auditor => &[ViewAudit],
            Role::Admin => &[ManageStaff, ViewAudit],
        }
    }

    /// Whether the role may do `p`.
    pub fn can(self, p: Permission) -> bool {
        self.permissions().contains(&p)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why a login name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaffNameError {
    /// Too short or too long.
    #[error("用户名长度应为3至32个字符")]
    Length,
    /// A character outside `a-z 0-9 . _ -`.
    #[error("用户名只能包含小写字母、数字、点、下划线和连字符")]
    Characters,
    /// Does not start with a letter.
    #[error("用户名必须以小写字母开头")]
    Start,
}

/// A staff login name: 3–32 characters of `a-z 0-9 . _ -`, starting with a letter. It appears
/// in the audit trail as `staff:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StaffName(String);

impl StaffName {
    /// Validates a login name.
    pub fn parse(value: &str) -> Result<StaffName, StaffNameError> {
        if !(3..=32).contains(&value.chars().count()) {
            return Err(StaffNameError::Length);
        }
        if !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(StaffNameError::Characters);
        }
        if !value.as_bytes()[0].is_ascii_lowercase() {
            return Err(StaffNameError::Start);
        }
        Ok(StaffName(value.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StaffName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for StaffName {
    type Error = StaffNameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        StaffName::parse(&value)
    }
}

impl From<StaffName> for String {
    fn from(n: StaffName) -> String {
        n.0
    }
}

/// The shortest staff password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest staff password, in bytes (longer input is refused, not truncated).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Why a new password is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Shorter than [`MIN_PASSWORD_CHARS`].
    #[error("密码至少需要12个字符")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("密码过长(最多256字节)")]
    TooLong,
    /// Only spaces at the start or end, or control characters.
    #[error("密码不能包含控制字符,也不能以空格开头或结尾")]
    Characters,
}

/// Checks a new staff password against the rules: at least [`MIN_PASSWORD_CHARS`] characters,
/// at most [`MAX_PASSWORD_BYTES`] bytes, no control characters, no leading or trailing space
/// (which a copy and paste adds or loses unnoticed).
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(char::is_control) || password.trim() != password {
        return Err(PasswordError::Characters);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The rules of staff login and sessions.
pub mod policy {
    /// Wrong passwords or codes in a row that lock an account.
    pub const MAX_FAILED_LOGINS: i64 = 5;
    /// How long a locked account stays locked, in minutes.
    pub const LOCKOUT_MINUTES: i64 = 15;
    /// How long a session lasts at most, in hours.
    pub const SESSION_HOURS: i64 = 8;
    /// How long an idle session lasts, in minutes.
    pub const IDLE_MINUTES: i64 = 30;
    /// How long the step between password and one-time code may take, in minutes.
    pub const PENDING_MINUTES: i64 = 5;
    /// How often a session's last activity is written, in seconds.
    pub const LAST_SEEN_RESOLUTION_SECONDS: i64 = 60;
    /// How long a personalisation station's credential lasts, in days (then enrol again).
    pub const STATION_CREDENTIAL_DAYS: i64 = 7;
    /// How long a station may hold an order without a word before it goes back to the
    /// queue, in minutes (a station that stops mid-key loses its claim).
    pub const STATION_LEASE_MINUTES: i64 = 10;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip_and_titles_are_chinese() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
            assert!(!r.title().is_ascii(), "{r}");
        }
        assert_eq!(Role::from_code("root"), None);
        assert_eq!(Role::from_code("Admin"), None);
        assert_eq!(Role::Fulfilment.title(), "制证发货员");
    }

    #[test]
    fn every_permission_belongs_to_some_role() {
        for p in Permission::ALL {
            assert!(Role::ALL.iter().any(|r| r.can(p)), "{p:?} belongs to no role");
        }
    }

    #[test]
    fn only_the_admin_manages_staff() {
        for r in Role::ALL {
            assert_eq!(r.can(Permission::ManageStaff), r == Role::Admin, "{r}");
        }
    }

    #[test]
    fn the_admin_does_not_do_the_work_of_others() {
        assert_eq!(Role::Admin.permissions(), &[Permission::ManageStaff, Permission::ViewAudit]);
        assert_eq!(Role::Auditor.permissions(), &[Permission::ViewAudit]);
        assert!(!Role::Reviewer.can(Permission::IssueTokens));
        assert!(!Role::Fulfilment.can(Permission::ReviewApplications));
    }

    #[test]
    fn the_matrix_is_as_specified() {
        use Permission::*;
        let expect: &[(Role, &[Permission])] = &[
            (Role::Reviewer, &[ReviewApplications, ReviewActivations]),
            (Role::Fulfilment, &[IssueTokens, PrintForms, ShipOrders, RecordFormReturns]),
            (Role::Finance, &[ManageInvoices, ViewPayments]),
            (Role::Counter, &[CounterService]),
            (Role::Auditor, &[ViewAudit]),
            (Role::Admin, &[ManageStaff, ViewAudit]),
        ];
        for (role, perms) in expect {
            for p in Permission::ALL {
                assert_eq!(role.can(p), perms.contains(&p), "{role} {p:?}");
            }
        }
    }

    #[test]
    fn staff_names_are_validated() {
        for ok in ["ann", "li.wei", "zhang_san-2", "a23", "abcdefghijklmnopqrstuvwxyz012345"] {
            assert_eq!(StaffName::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(StaffName::parse("ab"), Err(StaffNameError::Length));
        assert_eq!(StaffName::parse(&"a".repeat(33)), Err(StaffNameError::Length));
        assert_eq!(StaffName::parse("Ann"), Err(StaffNameError::Characters));
        assert_eq!(StaffName::parse("an n"), Err(StaffNameError::Characters));
        assert_eq!(StaffName::parse("张三丰"), Err(StaffNameError::Characters));
        assert_eq!(StaffName::parse("ann:x"), Err(StaffNameError::Characters));
        assert_eq!(StaffName::parse("1ann"), Err(StaffNameError::Start));
        assert_eq!(StaffName::parse(".ann"), Err(StaffNameError::Start));
        assert_eq!(StaffName::parse(""), Err(StaffNameError::Length));
    }

    #[test]
    fn staff_names_deserialise_only_when_valid() {
        let n: StaffName = serde_json::from_str("\"li.wei\"").unwrap();
        assert_eq!(n.as_str(), "li.wei");
        assert!(serde_json::from_str::<StaffName>("\"Li\"").is_err());
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert_eq!(check_new_password(""), Err(PasswordError::TooShort));
        assert_eq!(check_new_password("short-pass1"), Err(PasswordError::TooShort));
        assert_eq!(check_new_password("long-enough-1"), Ok(()));
        // Characters, not bytes: twelve Chinese characters are enough, eleven are not.
        assert_eq!(check_new_password(&"密".repeat(12)), Ok(()));
        assert_eq!(check_new_password(&"密".repeat(11)), Err(PasswordError::TooShort));
        assert_eq!(check_new_password(&"x".repeat(257)), Err(PasswordError::TooLong));
        assert_eq!(check_new_password(" long-enough-1"), Err(PasswordError::Characters));
        assert_eq!(check_new_password("long-enough\n1"), Err(PasswordError::Characters));
    }
}
