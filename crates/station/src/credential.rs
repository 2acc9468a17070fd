//! The station's credential: obtained once by enrolment (a member of staff's name, password
//! and one-time code, asked for on the terminal without echo) and kept in a file readable by
//! the station's user only. The file holds the server's address, the station's name and id,
//! the bearer credential and its expiry — never a password or a PIN.

use crate::client::{ApiError, StationClient};
use crate::wire;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// What the credential file holds.
#[derive(Serialize, Deserialize)]
pub struct StationCredentialFile {
    /// The server's address.
    pub server: String,
    /// The station's name.
    pub station_name: String,
    /// The station's id.
    pub station_id: String,
    /// The bearer credential.
    pub credential: String,
    /// When it ends (RFC 3339).
    pub expires_at: String,
}

/// Debug without the credential.
impl std::fmt::Debug for StationCredentialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StationCredentialFile")
            .field("server", &self.server)
            .field("station_name", &self.station_name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Why the credential could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The file could not be read or written.
    #[error("工作站凭证文件 {path}: {detail}")]
    File {
        /// Which file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The terminal could not be read.
    #[error("无法读取输入: {0}")]
    Input(String),
}

/// The default credential file: `$XDG_CONFIG_HOME/yiqian/station.json`, else
/// `~/.config/yiqian/station.json`.
pub fn default_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("yiqian").join("station.json")
}

/// Answers to the enrolment's questions: from the terminal (the password without echo), or,
/// when standard input is not a terminal, one per line from it.
pub struct Answers {
    /// The member of staff's login name.
    pub staff_name: String,
    /// The password.
    pub password: String,
    /// The authenticator's current code.
    pub code: String,
}

impl Answers {
    /// Asks on the terminal, or reads three lines from standard input.
    pub fn ask() -> Result<Answers, CredentialError> {
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
        let staff_name = ask_line("用户名: ")?;
        let password = if tty {
            rpassword::prompt_password("密码: ").map_err(|e| CredentialError::Input(e.to_string()))?
        } else {
            let mut s = String::new();
            std::io::stdin().lock().read_line(&mut s).map_err(|e| CredentialError::Input(e.to_string()))?;
            s.trim_end_matches(['\r', '\n']).to_owned()
        };
        Ok(Answers { staff_name, password, code: ask_line("动态验证码: ")? })
    }
}

/// One answer: asked on the terminal, or the next line of standard input.
pub fn ask_line(prompt: &str) -> Result<String, CredentialError> {
    let input = |e: std::io::Error| CredentialError::Input(e.to_string());
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("{prompt}");
        std::io::stderr().flush().map_err(input)?;
    }
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s).map_err(input)?;
    Ok(s.trim().to_owned())
}

/// Enrols the station and writes its credential file (mode 0600).
pub async fn enrol(
    server: &str,
    station_name: &str,
    answers: Answers,
    path: &Path,
) -> Result<StationCredentialFile, CredentialError> {
    let client = StationClient::new(server, None)?;
    let request = wire::EnrolmentRequest {
        staff_name: answers.staff_name,
        password: answers.password,
        code: answers.code,
        station_name: station_name.to_owned(),
    };
    let r = client.enrol(&request).await?;
    drop(request);
    let file = StationCredentialFile {
        server: server.trim_end_matches('/').to_owned(),
        station_name: station_name.trim().to_owned(),
        station_id: r.station_id,
        credential: r.credential,
        expires_at: r.expires_at,
    };
    write(path, &file)?;
    Ok(file)
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> CredentialError + '_ {
    move |e| CredentialError::File { path: path.to_owned(), detail: e.to_string() }
}

fn write(path: &Path, file: &StationCredentialFile) -> Result<(), CredentialError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(file_error(path))?;
    }
    let text = serde_json::to_string_pretty(file).map_err(|e| CredentialError::Input(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(file_error(path))?;
    f.write_all(text.as_bytes()).map_err(file_error(path))?;
    Ok(())
}

/// Reads the credential file.
pub fn load(path: &Path) -> Result<StationCredentialFile, CredentialError> {
    let text = std::fs::read_to_string(path).map_err(|e| CredentialError::File {
        path: path.to_owned(),
        detail: if e.kind() == std::io::ErrorKind::NotFound {
            "不存在:请先运行 `yiqian station enrol --server URL --name 工作站名称`".into()
        } else {
            e.to_string()
        },
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CredentialError::File { path: path.to_owned(), detail: format!("格式不正确: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_file_round_trips_and_is_private() {
        let dir = std::env::temp_dir().join(format!("yiqian-station-{}", std::process::id()));
        let path = dir.join("nested").join("station.json");
        let file = StationCredentialFile {
            server: "http://127.0.0.1:8080".into(),
            station_name: "制证室-1".into(),
            station_id: "WS1".into(),
            credential: "SECRET".into(),
            expires_at: "2026-12-08T00:00:00Z".into(),
        };
        write(&path, &file).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.credential, "SECRET");
        assert!(!format!("{back:?}").contains("SECRET"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let missing = load(&dir.join("none.json")).unwrap_err().to_string();
        assert!(missing.contains("yiqian station enrol"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
