//! `yiqian-sim`: serves the vendor stand-ins on loopback for demonstrations and manual tests.
//!
//! `yiqian-sim accounts DIR` makes fresh accounts (keys, certificates, secrets) in DIR;
//! `yiqian-sim config --accounts DIR` prints the `yiqian` configuration that points every real
//! provider at the stand-ins; `yiqian-sim serve --accounts DIR --listen 127.0.0.1:9900` serves
//! them.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use yiqian_sim::Sim;
use yiqian_sim::accounts::SimAccounts;

#[derive(Parser)]
#[command(
    name = "yiqian-sim",
    version,
    about = "Local stand-ins of WeChat Pay, Alipay, Tencent Cloud, SF Express and Nuonuo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes fresh stand-in accounts (keys, certificates, secrets) in a directory.
    Accounts {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Prints the vendor part of a `yiqian` configuration file using the stand-ins.
    Config {
        /// The accounts directory (made by `yiqian-sim accounts`).
        #[arg(long)]
        accounts: PathBuf,
        /// Where the stand-ins are served.
        #[arg(long, default_value = "http://127.0.0.1:9900")]
        sim_url: String,
        /// WeChat Pay platform certificates and Alipay certificate mode instead of public keys.
        #[arg(long)]
        certificate_modes: bool,
    },
    /// Serves the stand-ins.
    Serve {
        /// The accounts directory (made by `yiqian-sim accounts`).
        #[arg(long)]
        accounts: PathBuf,
        /// Address to listen on (loopback).
        #[arg(long, default_value = "127.0.0.1:9900")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let result = match Cli::parse().command {
        Command::Accounts { dir } => SimAccounts::generate().and_then(|a| a.write(&dir)).map(|()| {
            println!("stand-in accounts written to {}", dir.display());
        }),
        Command::Config { accounts, sim_url, certificate_modes } => SimAccounts::read(&accounts).map(|a| {
            let dir = std::path::absolute(&accounts).unwrap_or(accounts);
            print!("{}", a.yiqian_config(&dir, &sim_url, certificate_modes));
        }),
        Command::Serve { accounts, listen } => match SimAccounts::read(&accounts) {
            Ok(a) => {
                let sim = Sim::new(&a, &format!("http://{listen}"));
                match tokio::net::TcpListener::bind(listen).await {
                    Ok(l) => {
                        println!("yiqian-sim listening on http://{listen}");
                        if let Err(e) = axum::serve(l, sim.router()).await {
                            eprintln!("yiqian-sim: {e}");
                            return std::process::ExitCode::FAILURE;
                        }
                        Ok(())
                    }
                    Err(e) => {
                        eprintln!("yiqian-sim: cannot listen on {listen}: {e}");
                        return std::process::ExitCode::FAILURE;
                    }
                }
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yiqian-sim: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
