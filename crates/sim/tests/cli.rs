//! The `yiqian-sim` command as an operator runs it for a demonstration: make accounts, print
//! the matching `yiqian` configuration, serve the stand-ins.

use std::process::{Command, Stdio};

fn sim(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_yiqian-sim")).args(args).output().expect("run yiqian-sim");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn accounts_config_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = dir.path().join("accounts");
    let (ok, out) = sim(&["accounts", accounts.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(accounts.join("accounts.json").exists() && accounts.join("wechatpay_merchant_key.pem").exists());

    let (ok, toml) = sim(&["config", "--accounts", accounts.to_str().unwrap(), "--sim-url", "http://127.0.0.1:19901"]);
    assert!(ok, "{toml}");
    for section in ["[providers]", "[wechatpay]", "[alipay]", "[tencent.sms_templates]", "[sf]", "[nuonuo]"] {
        assert!(toml.contains(section), "{section}");
    }
    assert!(toml.contains("gateway_url = \"http://127.0.0.1:19901/gateway.do\""), "{toml}");

    let (ok, out) = sim(&["serve", "--accounts", dir.path().join("missing").to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("accounts.json"), "{out}");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_yiqian-sim"))
        .args(["serve", "--accounts", accounts.to_str().unwrap(), "--listen", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut page = None;
    for _ in 0..100 {
        if let Ok(r) = http::blocking_get(&format!("http://{addr}/sim/sf")) {
            page = Some(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let page = page.expect("the stand-ins answer");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
}

mod http {
    /// A GET with the standard library only (the test needs no async runtime).
    pub fn blocking_get(url: &str) -> std::io::Result<String> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").expect("http");
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
        let mut s = std::net::TcpStream::connect(host)?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }
}
