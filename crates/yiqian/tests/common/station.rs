//! The personalisation station as its tests drive it: the real `yiqian station` binary with a
//! credential file of its own and the key interface given by flags and environment, plus
//! approved orders to personalise and the enrolment of a station by a member of staff.

use super::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use yiqian_domain::staff::Role;

pub use super::id_number;

/// `n` approved orders of different applicants: (applicant token, order number, phone).
pub async fn approved_orders(h: &Harness, first: u32, n: u32) -> Vec<(String, String, String)> {
    let reviewer = staff(Role::Reviewer, "reviewer");
    let mut out = Vec::new();
    for i in first..first + n {
        let phone = format!("1380013{:04}", 8000 + i);
        let token = h.login(&phone).await;
        let id = h.create_order(&token).await;
        h.pay(&token, &id).await;
        let m = Materials { id_number: id_number(i), ..Materials::default() };
        assert_eq!(h.complete_materials_with(&token, &id, &phone, m).await["state"], "submitted");
        h.server.app.approve_application(&reviewer, &id).await.unwrap();
        out.push((token, id, phone));
    }
    out
}

/// The station on this machine: its credential file, the key interface's flags
/// (`--reader …`) and environment.
pub struct Station {
    pub credential: PathBuf,
    pub reader: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Station {
    /// A station on a hub of SoftHSM2 keys (PKCS#11) whose factory SO PIN is `factory_so_pin`.
    pub fn softhsm(credential: PathBuf, hub_conf: &std::path::Path, factory_so_pin: &str) -> Station {
        Station {
            credential,
            reader: ["--reader", "pkcs11", "--module", yiqian_token::softhsm::MODULE].map(str::to_owned).to_vec(),
            env: vec![
                ("SOFTHSM2_CONF".to_owned(), hub_conf.display().to_string()),
                (yiqian::ukey::FACTORY_SO_PIN_VARIABLE.to_owned(), factory_so_pin.to_owned()),
            ],
        }
    }

    /// `yiqian station ARGS` with the credential (except for `keys`) and the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_yiqian"));
        c.arg("station").args(args);
        if args.first() != Some(&"keys") {
            c.arg("--credential").arg(&self.credential);
        }
        c.env_remove("YIQIAN_CONFIG")
            .env_remove("YIQIAN_DATABASE_URL")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    /// The arguments of a run over `keys` (all keys present when empty).
    pub fn run_args(&self, batch: &str, keys: &[String]) -> Vec<String> {
        let mut args: Vec<String> = ["run", "--batch", batch].iter().map(|s| (*s).to_owned()).collect();
        args.extend(self.reader.iter().cloned());
        for k in keys {
            args.extend(["--key".to_owned(), k.clone()]);
        }
        args
    }

    /// Runs the station on a batch to the end; returns success and its output.
    /// A counter service; the ID number goes to the prompt.
    pub async fn counter(&self, order: &str, service: &str, key: &str, id_number: &str) -> (bool, String) {
        let mut args = vec!["counter", "--order", order, "--service", service, "--key", key];
        args.extend(self.reader.iter().map(String::as_str));
        let mut child =
            self.command(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{id_number}").unwrap();
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }

    pub async fn run(&self, batch: &str, keys: &[String]) -> (bool, String) {
        let args = self.run_args(batch, keys);
        let mut command = self.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }
}

/// Enrols a station as `name` (password, and a code of the next time step: the console login
/// used this one).
pub async fn enrol(h: &Harness, station: &Station, staff_name: &str, password: &str, secret: &str, name: &str) {
    let code = yiqian_app::staff::totp_code(secret, h.server.app.now() + chrono::Duration::seconds(30)).unwrap();
    let mut enrol = station
        .command(&["enrol", "--server", &h.base, "--name", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(enrol.stdin.take().unwrap(), "{staff_name}\n{password}\n{code}\n").unwrap();
    let out = tokio::task::spawn_blocking(move || enrol.wait_with_output().unwrap()).await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("工作站 {name} 已登记")), "{text}");
    let file = std::fs::read_to_string(&station.credential).unwrap();
    assert!(!file.contains(password), "no password in the credential file");
}

/// The member of staff of the account `name` (made by `console_login`), as services take them.
pub async fn member(h: &Harness, name: &str) -> yiqian_app::staff::StaffMember {
    let list = h.server.app.operator_list_staff().await.unwrap();
    let me = list.into_iter().find(|s| s.name.as_str() == name).unwrap_or_else(|| panic!("no account {name}"));
    yiqian_app::staff::StaffMember { id: me.id, name: me.name, role: me.role }
}
