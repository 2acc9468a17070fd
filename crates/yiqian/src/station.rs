//! `yiqian station`: the personalisation station's commands, run on the workstation the UKEY
//! hub is plugged into. It reads the `[ukey]` section of its own configuration (or the flags)
//! for the key interface, and talks to the server only over the station API.
//!
//! - `enrol --server URL --name NAME`: a member of staff signs the station in (name, password,
//!   one-time code); the credential goes to a file only the station's user can read;
//! - `keys`: the keys present in the hub;
//! - `run --batch ID`: personalises every key present for the batch's orders, in parallel;
//! - `counter --order ID --service unlock-pin|renew|reissue`: a counter service with the key
//!   in hand, after the identity check (the ID number read off the original card, asked for).

use crate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use yiqian_station::client::StationClient;
use yiqian_station::counter::{CounterJob, CounterService, counter};
use yiqian_station::credential::{self, Answers};
use yiqian_station::run::{KeyOutcome, RunOptions, run};
use yiqian_station::wire::IdentityCheck;

/// The station's commands.
#[derive(clap::Subcommand)]
pub enum StationCommand {
    /// Signs the station in with a member of staff's name, password and one-time code (asked
    /// for on the terminal; one per line when standard input is not a terminal).
    Enrol {
        /// The server's address, e.g. https://ca.example.cn
        #[arg(long)]
        server: String,
        /// The station's name, shown in the console and the audit (e.g. 制证室-1).
        #[arg(long)]
        name: String,
        /// Where to keep the credential (default ~/.config/yiqian/station.json).
        #[arg(long)]
        credential: Option<PathBuf>,
    },
    /// Lists the keys present in the hub.
    Keys {
        #[command(flatten)]
        reader: ReaderFlags,
    },
    /// Personalises every key present for the orders of a batch, in parallel.
    Run {
        /// The batch (批次号) started in the console with 交工作站制证.
        #[arg(long)]
        batch: String,
        /// Only this key (repeatable); default: every key present.
        #[arg(long = "key")]
        keys: Vec<String>,
        /// The credential file (default ~/.config/yiqian/station.json).
        #[arg(long)]
        credential: Option<PathBuf>,
        #[command(flatten)]
        reader: ReaderFlags,
    },
    /// A counter service with the key in hand: `unlock-pin` (解锁), `renew` (续期) or
    /// `reissue` (补办, onto a new blank key). The ID number read off the holder's original card
    /// is asked for on the terminal (or read as the first line of standard input).
    Counter {
        /// The order number.
        #[arg(long)]
        order: String,
        /// `unlock-pin`, `renew` or `reissue`.
        #[arg(long)]
        service: String,
        /// The key in hand (default: the only key present).
        #[arg(long)]
        key: Option<String>,
        /// What was checked (default 居民身份证原件).
        #[arg(long, default_value = "居民身份证原件")]
        document: String,
        /// A note for the record (no other personal data).
        #[arg(long, default_value = "")]
        note: String,
        /// The credential file (default ~/.config/yiqian/station.json).
        #[arg(long)]
        credential: Option<PathBuf>,
        #[command(flatten)]
        reader: ReaderFlags,
    },
}

/// The key interface, over the `[ukey]` section of the configuration.
#[derive(clap::Args)]
pub struct ReaderFlags {
    /// `pkcs11`, `skf` or `software` (default: `[ukey] reader`).
    #[arg(long)]
    pub reader: Option<String>,
    /// PKCS#11: the module (default: `[ukey] module`).
    #[arg(long)]
    pub module: Option<String>,
    /// SKF: the vendor's library (default: `[ukey] library`).
    #[arg(long)]
    pub library: Option<String>,
}

impl ReaderFlags {
    fn apply(&self, config: &mut Config) {
        if let Some(r) = &self.reader {
            config.ukey.reader = r.clone();
        }
        if let Some(m) = &self.module {
            config.ukey.module = m.clone();
        }
        if let Some(l) = &self.library {
            config.ukey.library = l.clone();
        }
    }
}

/// The reader's kind as the server records it.
fn reader_kind(config: &Config) -> &'static str {
    match config.ukey.reader.as_str() {
        "pkcs11" => "pkcs11",
        "skf" => "skf",
        _ => "software",
    }
}

/// Runs a station command.
pub async fn station(command: &StationCommand, config: &mut Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        StationCommand::Enrol { server, name, credential } => {
            let path = credential.clone().unwrap_or_else(credential::default_path);
            let file = credential::enrol(server, name, Answers::ask()?, &path).await?;
            println!(
                "工作站 {} 已登记(凭证有效至 {}),凭证保存在 {}",
                file.station_name,
                file.expires_at,
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::Keys { reader } => {
            reader.apply(config);
            let reader = crate::ukey::token_reader(config, &config.data_dir)?;
            let keys = tokio::task::spawn_blocking(move || reader.present()).await??;
            for k in &keys {
                let state =
                    if yiqian_token::is_personalised_label(&k.label) { "已制证或未完成" } else { "空白" };
                println!("{}\t{}\t{}\t{state}", k.serial, k.model, k.label);
            }
            println!("共 {} 个UKEY", keys.len());
            Ok(ExitCode::SUCCESS)
        }
        StationCommand::Run { batch, keys, credential, reader } => {
            reader.apply(config);
            let path = credential.clone().unwrap_or_else(credential::default_path);
            let file = credential::load(&path)?;
            let client = StationClient::new(&file.server, Some(file.credential.clone()))?;
            let token_reader = crate::ukey::token_reader(config, &config.data_dir)?;
            let options = RunOptions { batch: batch.clone(), reader_kind: reader_kind(config), only: keys.clone() };
            let report = run(&client, token_reader, options, Arc::new(|line| println!("{line}"))).await?;
            println!(
                "本次制证 {} 个,失败 {} 个,用时 {:.1}s;批次 {} 已完成 {}/{}",
                report.personalised(),
                report.failed(),
                report.elapsed.as_secs_f64(),
                report.batch.batch,
                report.batch.finished,
                report.batch.total
            );
            for k in &report.keys {
                if let KeyOutcome::Failed(why) = &k.outcome {
                    println!("  {} 失败: {why}", k.serial);
                }
            }
            Ok(if report.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        StationCommand::Counter { order, service, key, document, note, credential, reader } => {
            let Some(service) = CounterService::from_code(service) else {
                return Err(format!("--service must be unlock-pin, renew or reissue, not {service:?}").into());
            };
            reader.apply(config);
            let path = credential.clone().unwrap_or_else(credential::default_path);
            let file = credential::load(&path)?;
            let client = StationClient::new(&file.server, Some(file.credential.clone()))?;
            let token_reader = crate::ukey::token_reader(config, &config.data_dir)?;
            let key_serial = match key {
                Some(k) => k.clone(),
                None => {
                    let r = token_reader.clone();
                    let present = tokio::task::spawn_blocking(move || r.present()).await??;
                    match present.as_slice() {
                        [only] => only.serial.clone(),
                        [] => return Err("没有发现UKEY:请插入申请人的UKEY(补办时插入新的空白UKEY)".into()),
                        _ => return Err("插着多个UKEY:请用 --key 指定要办理的UKEY序列号".into()),
                    }
                }
            };
            let id_number = credential::ask_line("身份证号码(读取原件): ")?;
            let job = CounterJob {
                order: order.clone(),
                service,
                key_serial,
                identity: IdentityCheck { id_number, document: document.clone(), note: note.clone() },
                reader_kind: reader_kind(config),
            };
            let done = counter(&client, token_reader, &job, Arc::new(|line| println!("{line}"))).await?;
            println!("{done}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
