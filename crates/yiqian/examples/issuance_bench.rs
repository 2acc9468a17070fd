//! Issuance rate per CA algorithm, end to end through the application, against the raw
//! signing rate of the same issuing key. A benchmark, not a test: run it with
//!
//!     cargo run --release -p yiqian --example issuance_bench [-- sm2 p256 rsa3072]
//!
//! For each algorithm: a fresh temporary data directory (SQLite), an `App` built by
//! `yiqian::server::assemble`, `ca_init`, N subscriber CSRs generated beforehand (not timed),
//! then N sequential `issue_certificate` calls (CSR check + profile + sign + commit + audit,
//! plus the OCSP pre-signing the application does after each issuance), then the issuing
//! key's `Signer::sign` over a 1 KiB message for about 2 s.

use std::sync::Arc;
use std::time::{Duration, Instant};
use yiqian::config::Config;
use yiqian::server::assemble;
use yiqian_app::SystemClock;
use yiqian_app::authority::IssueRequest;
use yiqian_pki::{Algorithm, SoftwareKey, build_csr, personal_subject};

const NAME: &str = "张三";
const ID_NUMBER: &str = "110101199003074477";

fn count_for(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Rsa3072 => 200,
        _ => 2000,
    }
}

async fn bench(alg: Algorithm) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = Config { data_dir: dir.path().to_path_buf(), ca_algorithm: alg.to_string(), ..Config::default() };
    let app = assemble(&config, "http://127.0.0.1:18095", Arc::new(SystemClock)).await?.app;
    app.ca_init(alg, "bench").await?;

    let n = count_for(alg);
    let started = Instant::now();
    let subject = personal_subject(NAME)?;
    let mut csrs = Vec::with_capacity(n);
    for _ in 0..n {
        let key = SoftwareKey::generate(alg)?;
        csrs.push(build_csr(&subject, &key)?);
    }
    let keygen = started.elapsed();

    let started = Instant::now();
    for csr in csrs {
        let request = IssueRequest {
            csr,
            csr_common_name: None,
            name: Some(NAME.to_owned()),
            id_number: ID_NUMBER.to_owned(),
            hold: false,
            order: None,
            actor: "bench".to_owned(),
        };
        app.issue_certificate(&request).await?;
    }
    let issuing = started.elapsed();
    let issued = app.list_certificates(i64::try_from(n)? + 10).await?.len();
    assert_eq!(issued, n, "every certificate is stored");

    let ca = app.issuing_ca().await?;
    let message = vec![0x5au8; 1024];
    let started = Instant::now();
    let mut signs = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        std::hint::black_box(ca.signer.sign(std::hint::black_box(&message))?);
        signs += 1;
    }
    let signing = started.elapsed();

    println!(
        "{:<8} issued {n:>5} in {:>7.3} s = {:>8.1} certs/s ({:>6.2} ms each) | raw sign 1 KiB: {signs:>6} in {:.3} s = {:>8.1} signs/s | (CSR keys generated in {:.1} s, not timed)",
        alg.as_str(),
        issuing.as_secs_f64(),
        n as f64 / issuing.as_secs_f64(),
        issuing.as_secs_f64() * 1000.0 / n as f64,
        signing.as_secs_f64(),
        signs as f64 / signing.as_secs_f64(),
        keygen.as_secs_f64(),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let algorithms: Vec<Algorithm> = if args.is_empty() {
        vec![Algorithm::Sm2, Algorithm::P256, Algorithm::Rsa3072]
    } else {
        args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?
    };
    for alg in algorithms {
        bench(alg).await?;
    }
    Ok(())
}
