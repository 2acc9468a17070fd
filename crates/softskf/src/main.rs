//! `yiqian-softskf`: makes blank software SKF devices for tests and demonstrations.
//!
//! ```text
//! yiqian-softskf create-device --dir DIR [--count N] [--label LABEL] [--auth-key HEX]
//! ```
//!
//! prints the new devices' serials, one a line. Point the library at the directory with
//! `YIQIAN_SOFTSKF_DIR=DIR` and configure yiqian's SKF reader with the library
//! (`libyiqian_softskf.so`) and the device authentication key (by default the factory key,
//! the 16 ASCII bytes `1234567812345678`, hex `31323334353637383132333435363738`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use yiqian_softskf::{FACTORY_DEVICE_AUTH_KEY, FACTORY_LABEL, create_device, random_serial};

/// Software SKF (GM/T 0016) devices for yiqian's SKF driver.
#[derive(Parser)]
#[command(name = "yiqian-softskf", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes blank devices (no application) and prints their serials.
    CreateDevice {
        /// The directory of devices (YIQIAN_SOFTSKF_DIR of the library).
        #[arg(long)]
        dir: PathBuf,
        /// How many devices.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Their label.
        #[arg(long, default_value = FACTORY_LABEL)]
        label: String,
        /// Their device authentication key, 32 hex digits (default: 1234567812345678 in
        /// ASCII, hex 31323334353637383132333435363738).
        #[arg(long)]
        auth_key: Option<String>,
    },
}

fn main() -> ExitCode {
    let Command::CreateDevice { dir, count, label, auth_key } = Cli::parse().command;
    let key = match auth_key.as_deref().map(parse_key).unwrap_or(Ok(*FACTORY_DEVICE_AUTH_KEY)) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("yiqian-softskf: {message}");
            return ExitCode::from(2);
        }
    };
    for _ in 0..count {
        let serial = random_serial();
        if let Err(e) = create_device(&dir, &serial, &label, &key) {
            eprintln!("yiqian-softskf: {e}");
            return ExitCode::FAILURE;
        }
        println!("{serial}");
    }
    ExitCode::SUCCESS
}

fn parse_key(text: &str) -> Result<[u8; 16], String> {
    let bytes = hex::decode(text.trim()).map_err(|_| "--auth-key takes 32 hex digits".to_owned())?;
    bytes.try_into().map_err(|_| "--auth-key takes 32 hex digits (16 bytes)".to_owned())
}
