//! The `yiqian` command: run the service, and the operator's tools.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use yiqian::config::{Config, LogFormat};
use yiqian::server::{Server, assemble, open_store};
use yiqian_app::SystemClock;
use yiqian_store::audit::AuditVerdict;

#[derive(Parser)]
#[command(name = "yiqian", version, about = "Sell, issue and activate personal certificates on USB keys, online.")]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "YIQIAN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, blobs, keys).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the service (migrations are applied on start).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Applies database migrations and exits.
    Migrate,
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Sandbox SMS tools.
    Sms {
        #[command(subcommand)]
        command: SmsCommand,
    },
    /// Certificate authority operations.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Staff accounts of the console (`/console`).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// The outside services (payment, SMS, identity, courier, invoices, WeChat login).
    Providers {
        #[command(subcommand)]
        command: ProvidersCommand,
    },
    /// Retention of personal data.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Payment operations.
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// Database operations.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Takes a consistent backup of this deployment while it runs: its database and blobs,
    /// with a manifest and SHA-256 checksums. The keys are not in it (keep them apart).
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        /// A new (or empty) directory to write the backup into.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(subcommand)]
        command: Option<BackupCommand>,
    },
    /// Restores a backup into this node's database and blob store, which must be empty; the
    /// node must hold the deployment's keys (the backup names their check values).
    Restore {
        /// The backup's directory.
        #[arg(long)]
        from: PathBuf,
    },
    /// The personalisation station, on the workstation with the UKEY hub.
    Station {
        #[command(subcommand)]
        command: yiqian::station::StationCommand,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Deletes the personal data whose retention period is over (the scheduled job does it
    /// every hour): materials of orders closed without a certificate after `[retention]
    /// closed_order_days`, identity materials `years_after_certificate_expiry` after an order's
    /// last certificate expired. Each deletion is in the audit trail, never the data.
    Run {
        /// Only list the orders due and why; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Checks a backup without restoring it and without any key: every file against its
    /// checksum, the database against the manifest, the audit chain, every blob present.
    Verify {
        /// The backup's directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Copies this deployment's database (and with --blobs-to its blobs) into a new, empty
    /// database — SQLite to PostgreSQL on the way to more than one node — and verifies the
    /// copy: row counts, the audit chain, a sample of sealed values opened on both sides.
    Copy {
        /// The target database (`postgres://USER:PASS@HOST/DB` or `sqlite://PATH?mode=rwc`);
        /// it must be empty.
        #[arg(long)]
        to: String,
        /// Where the copy's blobs go: a bucket (`https://HOST/BUCKET[/PREFIX]`, credentials
        /// as for `[blobs]`) or a directory; without it the copy uses this deployment's blobs.
        #[arg(long)]
        blobs_to: Option<String>,
    },
    /// Fills a sandbox deployment with generated orders (activated with certificates, some
    /// waiting for review, some expired unpaid) to measure how the service's cost grows with
    /// its data. Refused unless every provider is the sandbox (or manual) one.
    Seed {
        /// How many orders.
        #[arg(long)]
        orders: usize,
        /// How many of them get a login session, written with their order and certificate to
        /// --sample-out for a benchmark to ask about.
        #[arg(long, default_value_t = 0)]
        sessions: usize,
        /// Where the sampled orders go, one JSON object a line: `token`, `order`, `serial`,
        /// `ocsp` (the OCSP request in base64, as a GET to /pki/ocsp/ carries it).
        #[arg(long)]
        sample_out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ProvidersCommand {
    /// Checks the configuration of every chosen provider without calling anyone: keys and
    /// certificates load, certificates are current, URLs are well formed, secrets are found.
    Check,
}

#[derive(Subcommand)]
enum PaymentsCommand {
    /// Compares the payments started on a day with the gateways' records and lists every
    /// payment that is neither fulfilled nor refunded (exit status 1 when there is one).
    Reconcile {
        /// The day, Beijing time (YYYY-MM-DD); default: yesterday.
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Adds a member of staff; they enrol an authenticator (TOTP) at their first login.
    Add {
        /// Login name: 3–32 characters of a-z 0-9 . _ -, starting with a letter.
        name: String,
        /// reviewer, fulfilment, finance, counter, auditor or admin.
        #[arg(long)]
        role: String,
        /// Read the password (at least 12 characters) from the first line of standard input.
        /// Required: a password never goes on the command line, where `ps` shows it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists the staff accounts: name, role, authenticator, status.
    List,
}

#[derive(Subcommand)]
enum CaCommand {
    /// Creates the root and issuing CA (keys sealed in the store) unless they exist.
    Init {
        /// sm2, p256 or rsa3072 (default: the configured `ca_algorithm`).
        #[arg(long)]
        algorithm: Option<String>,
    },
    /// Issues a certificate from a PKCS#10 request (DER or PEM).
    Sign {
        /// The request file.
        #[arg(long)]
        csr: PathBuf,
        /// The certificate profile (only `personal` so far).
        #[arg(long, default_value = "personal")]
        profile: String,
        /// Issue on hold (certificateHold) until released.
        #[arg(long)]
        hold: bool,
        /// The subject's resident ID number, for the GM/T 0015 identity extension.
        #[arg(long)]
        id_number: String,
        /// The approved subject's name; the request's CN must match it.
        #[arg(long)]
        name: Option<String>,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revokes a certificate for good.
    Revoke {
        /// Serial in hex, as `openssl x509 -serial` prints it.
        serial: String,
        /// RFC 5280 reason: key_compromise, affiliation_changed, superseded, cessation_of_operation, …
        #[arg(long)]
        reason: String,
    },
    /// Releases a certificate issued on hold.
    Release {
        /// Serial in hex.
        serial: String,
    },
    /// Writes the current CRL (DER).
    Crl {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes the CA certificates (PEM): the issuing CA, then the root.
    Chain {
        /// Where to write them.
        #[arg(long)]
        out: PathBuf,
    },
    /// Lists issued certificates, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Checks the hash chain and names the first broken link.
    Verify,
}

#[derive(Subcommand)]
enum SmsCommand {
    /// Prints the sandbox SMS inbox, newest first, one JSON object a line.
    Outbox {
        /// Only messages to this phone number.
        #[arg(long)]
        phone: Option<String>,
        /// At most this many messages.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = Config::load(cli.config.as_deref(), |k| std::env::var(k).ok()).map_err(|e| e.to_string())?;
    if let Some(d) = &cli.data {
        config.data_dir = d.clone();
    }
    Ok(config)
}

/// Writes log lines to standard error as `format` says, filtered by `YIQIAN_LOG` (an
/// `EnvFilter` directive; default `info`).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("YIQIAN_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn,cryptoki::mechanism=off".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yiqian: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    match run(&cli.command, &mut config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("yiqian: {}", operator_message(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// What the operator reads: the detail behind an application error, which applicants only
/// ever see as "系统错误,请稍后重试".
fn operator_message(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<yiqian_app::AppError>() {
        Some(yiqian_app::AppError::Internal(detail) | yiqian_app::AppError::Unavailable(detail)) => detail.clone(),
        _ => e.to_string(),
    }
}

async fn run(command: &Command, config: &mut Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        Command::Serve { listen } => {
            if let Some(l) = listen {
                config.listen = *l;
            }
            let server = Server::start(config).await?;
            for note in &server.notes {
                tracing::info!("{note}");
            }
            println!("yiqian is serving at {}/ (data in {})", server.public_url, config.data_dir.display());
            if config.dev_mode && config.providers.sms == "sandbox" {
                println!("development SMS inbox: {}/dev/sms", server.public_url);
            }
            server.run_until_signal().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let (_, notes) = open_store(config).await?;
            for note in notes {
                eprintln!("{note}");
            }
            println!("database is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let (store, _) = open_store(config).await?;
            match store.verify_audit().await? {
                AuditVerdict::Intact { entries, head } => {
                    println!("audit trail intact: {entries} entries, head {head}");
                    Ok(ExitCode::SUCCESS)
                }
                AuditVerdict::Broken { seq, reason } => {
                    println!("audit trail BROKEN at entry {seq}: {reason}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Ca { command } => ca(command, config).await,
        Command::Db { command: DbCommand::Copy { to, blobs_to } } => {
            let (source, _) = open_store(config).await?;
            let target = yiqian::server::open_copy_target(config, to, blobs_to.as_deref()).await?;
            let report = source.copy_to(&target, blobs_to.is_some(), |line| eprintln!("copied {line}")).await?;
            let rows: i64 = report.rows.iter().map(|(_, n)| n).sum();
            println!(
                "copied {rows} rows in {} tables and {} blobs ({} bytes); verified: row counts equal, audit chain intact ({} entries, same head), {} sealed values open alike",
                report.rows.len(),
                report.blobs,
                report.blob_bytes,
                report.audit_entries,
                report.sampled
            );
            println!(
                "now point every node at the copy (database_url{}) and start them",
                if blobs_to.is_some() { ", and [blobs] at the new blob store" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Db { command: DbCommand::Seed { orders, sessions, sample_out } } => {
            seed(config, *orders, *sessions, sample_out.as_deref()).await
        }
        Command::Backup { out: Some(out), command: None } => {
            let (store, _) = open_store(config).await?;
            let started = std::time::Instant::now();
            let m = store.backup_to(out, env!("CARGO_PKG_VERSION"), |line| eprintln!("backed up {line}")).await?;
            store.close().await;
            let rows: i64 = m.rows.values().sum();
            println!(
                "backup written to {} in {:.1} s: {rows} rows, {} audit entries (head {}), {} blobs ({} bytes); the keys are not in it: keep the master key (check value {}) apart from it",
                out.display(),
                started.elapsed().as_secs_f64(),
                m.audit_entries,
                m.audit_head,
                m.blobs,
                m.blob_bytes,
                m.keys.check_values.get("master").map_or("?", String::as_str),
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { out: None, command: Some(BackupCommand::Verify { dir }) } => {
            match yiqian_store::backup::verify_backup(dir).await {
                Ok(m) => {
                    println!(
                        "backup intact: taken {} from {}, {} rows, {} audit entries (head {}), {} blobs ({} bytes), every checksum matches",
                        m.created_at.to_rfc3339(),
                        m.source,
                        m.rows.values().sum::<i64>(),
                        m.audit_entries,
                        m.audit_head,
                        m.blobs,
                        m.blob_bytes
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    println!("backup NOT usable: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Backup { .. } => {
            Err("say where the backup goes (`yiqian backup --out DIR`) or check one (`yiqian backup verify DIR`)"
                .into())
        }
        Command::Restore { from } => {
            let started = std::time::Instant::now();
            let (m, report) = yiqian::backup::restore(config, from, |line| eprintln!("restored {line}")).await?;
            println!(
                "restored the backup of {} in {:.1} s: {} rows, {} blobs ({} bytes); verified: row counts equal, audit chain intact ({} entries, head {}), {} sealed values open alike with this node's key",
                m.created_at.to_rfc3339(),
                started.elapsed().as_secs_f64(),
                report.rows.iter().map(|(_, n)| n).sum::<i64>(),
                report.blobs,
                report.blob_bytes,
                report.audit_entries,
                m.audit_head,
                report.sampled
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Station { command } => yiqian::station::station(command, config).await,
        Command::Providers { command: ProvidersCommand::Check } => {
            for (service, choice, _) in config.providers.services() {
                println!("{service:<15} {choice}");
            }
            let public_url = config.public_url();
            let vendors = yiqian::vendors::build(config, &public_url)?;
            for line in &vendors.report {
                println!("ok  {line}");
            }
            println!("the provider configuration is usable (nothing was called)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Payments { command: PaymentsCommand::Reconcile { date } } => {
            let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
            let day = date.unwrap_or_else(|| app.yesterday_in_beijing());
            let report = app.reconcile(day).await?;
            println!(
                "{day}: {} payments, {} settled (fulfilled or refunded), {} never paid, {} to look at",
                report.payments,
                report.settled,
                report.unpaid,
                report.findings.len()
            );
            for f in &report.findings {
                println!("{}", serde_json::to_string(f)?);
            }
            Ok(if report.findings.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Retention { command: RetentionCommand::Run { dry_run } } => {
            let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
            let report = app.run_retention(*dry_run).await?;
            for (due, kinds) in &report.erased {
                println!(
                    "{} order {}: {} since {}{}",
                    if *dry_run { "due" } else { "deleted" },
                    due.order,
                    due.reason.code(),
                    due.since.to_rfc3339(),
                    if kinds.is_empty() { String::new() } else { format!(" ({})", kinds.join(", ")) }
                );
            }
            println!(
                "{} orders {}; {} blob files removed",
                report.erased.len(),
                if *dry_run { "due (nothing deleted: --dry-run)" } else { "had their personal data deleted" },
                report.purged_blobs
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin { command } => admin(command, config).await,
        Command::Sms { command: SmsCommand::Outbox { phone, limit } } => {
            let (store, _) = open_store(config).await?;
            for m in store.sandbox_sms(phone.as_deref(), *limit).await? {
                println!("{}", serde_json::to_string(&m)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn admin(command: &AdminCommand, config: &Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        AdminCommand::Add { name, role, password_stdin } => {
            let role = yiqian_domain::staff::Role::from_code(role).ok_or_else(|| {
                format!(
                    "unknown role {role:?}; one of: {}",
                    yiqian_domain::staff::Role::ALL.map(|r| r.code()).join(", ")
                )
            })?;
            if !password_stdin {
                return Err("give the password on standard input with --password-stdin".into());
            }
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            if password.is_empty() {
                return Err("no password on standard input".into());
            }
            if password.chars().count() < yiqian_domain::staff::MIN_PASSWORD_CHARS {
                return Err(format!(
                    "the password is too short: at least {} characters",
                    yiqian_domain::staff::MIN_PASSWORD_CHARS
                )
                .into());
            }
            let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
            let added = app.add_staff(name, role, password).await?;
            println!("staff {} added as {}; TOTP is enrolled at first login", added.name, added.role.code());
        }
        AdminCommand::List => {
            let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
            for s in app.operator_list_staff().await? {
                let status = if s.disabled {
                    "disabled".to_owned()
                } else if let Some(until) = s.locked_until {
                    format!("locked until {}", until.format("%Y-%m-%dT%H:%M:%SZ"))
                } else {
                    "active".to_owned()
                };
                let totp = if s.totp_enrolled { "totp enrolled" } else { "totp not enrolled" };
                println!("{}\t{}\t{}\t{}", s.name, s.role.code(), totp, status);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn seed(
    config: &Config,
    orders: usize,
    sessions: usize,
    sample_out: Option<&std::path::Path>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use base64::Engine;
    let real: Vec<String> = config
        .providers
        .services()
        .iter()
        .filter(|(_, choice, allowed)| *choice != allowed[0])
        .map(|(service, choice, _)| format!("{service} = {choice}"))
        .collect();
    if !real.is_empty() {
        return Err(format!(
            "refusing to seed: this deployment talks to real providers ({}); seed only a sandbox deployment",
            real.join(", ")
        )
        .into());
    }
    if sessions > 0 && sample_out.is_none() {
        return Err("--sessions needs --sample-out FILE for the sessions to go to".into());
    }
    let mut out = match sample_out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("creating {}: {e}", path.display()))?,
        )),
        None => None,
    };
    let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
    app.ca_init(config.ca_algorithm()?, "operator").await?;
    let started = std::time::Instant::now();
    let step = (orders / 20).max(yiqian_app::seed::BATCH);
    let report = app
        .seed_orders(orders, sessions, move |done| {
            if done % step < yiqian_app::seed::BATCH || done == orders {
                eprintln!("seeded {done} of {orders} orders ({:.0} s)", started.elapsed().as_secs_f64());
            }
        })
        .await?;
    if let Some(out) = out.as_mut() {
        use std::io::Write;
        for s in &report.sample {
            let line = serde_json::json!({
                "token": s.session_token,
                "order": s.order_id,
                "serial": s.serial,
                "ocsp": s.ocsp_request.as_ref().map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
    }
    println!(
        "seeded {} orders ({} with certificates) in {:.0} s; {} sessions{}",
        report.orders,
        report.certificates,
        started.elapsed().as_secs_f64(),
        report.sample.len(),
        sample_out.map(|p| format!(" written to {}", p.display())).unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

async fn ca(command: &CaCommand, config: &Config) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let app = assemble(config, &config.public_url(), std::sync::Arc::new(SystemClock)).await?.app;
    let operator = "operator";
    match command {
        CaCommand::Init { algorithm } => {
            let algorithm = match algorithm {
                Some(a) => a.parse()?,
                None => config.ca_algorithm()?,
            };
            let init = app.ca_init(algorithm, operator).await?;
            if init.created {
                println!("created a {} root and issuing CA", init.algorithm);
            } else {
                println!("a {} CA exists already; nothing created", init.algorithm);
            }
        }
        CaCommand::Sign { csr, profile, hold, id_number, name, out } => {
            if profile != "personal" {
                return Err(format!("unknown profile {profile:?}; available: personal").into());
            }
            let request = yiqian_app::authority::IssueRequest {
                csr: std::fs::read(csr).map_err(|e| format!("reading {}: {e}", csr.display()))?,
                csr_common_name: None,
                name: name.clone(),
                id_number: id_number.clone(),
                hold: *hold,
                order: None,
                actor: operator.into(),
            };
            let issued = app.issue_certificate(&request).await?;
            std::fs::write(out, yiqian_pki::to_pem("CERTIFICATE", &issued.der))?;
            println!("issued {} ({}){}", issued.serial, issued.profile, if *hold { ", on hold" } else { "" });
        }
        CaCommand::Revoke { serial, reason } => {
            let c = app.revoke_certificate(serial, reason.parse()?, operator).await?;
            println!("revoked {} ({})", c.serial, c.reason.unwrap_or_default());
        }
        CaCommand::Release { serial } => {
            let c = app.release_certificate(serial, operator).await?;
            println!("released {}", c.serial);
        }
        CaCommand::Crl { out } => {
            std::fs::write(out, app.current_crl().await?)?;
            println!("wrote the CRL to {}", out.display());
        }
        CaCommand::Chain { out } => {
            let ca = app.issuing_ca().await?;
            let pem = format!(
                "{}{}",
                yiqian_pki::to_pem("CERTIFICATE", &ca.certificate_der),
                yiqian_pki::to_pem("CERTIFICATE", &ca.root_der)
            );
            std::fs::write(out, pem)?;
            println!("wrote the issuing CA and root certificates to {}", out.display());
        }
        CaCommand::List { limit } => {
            for c in app.list_certificates(*limit).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    c.serial,
                    c.status.code(),
                    c.profile,
                    c.not_after.format("%Y-%m-%d"),
                    c.order_id.unwrap_or_else(|| "-".into())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
