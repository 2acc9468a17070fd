//! The `yiqian` command: run the service, and the operator's tools.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use yiqian::config::Config;
use yiqian::server::{Server, open_store};
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

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("YIQIAN_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("yiqian: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&cli.command, &mut config).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("yiqian: {e}");
            ExitCode::FAILURE
        }
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
            if config.dev_mode {
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
        Command::Sms { command: SmsCommand::Outbox { phone, limit } } => {
            let (store, _) = open_store(config).await?;
            for m in store.sandbox_sms(phone.as_deref(), *limit).await? {
                println!("{}", serde_json::to_string(&m)?);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
