//! CRL build time and size for 1,000,000 revoked entries, per algorithm. A benchmark, not a
//! test:
//!
//!     cargo build --release -p yiqian-pki --example crl_bench
//!     /usr/bin/time -v target/release/examples/crl_bench [sm2 p256 rsa3072] [--entries N] [--out DIR]
//!
//! For each algorithm: a root and an issuing CA under it (software keys), 1,000,000 entries
//! with random 16-byte serials, revocation times spread over a year and reasons cycling
//! through every reason allowed in a full CRL (all but removeFromCRL), all prepared before
//! the clock starts; then one `build_crl` call (DER encoding and signature) is timed. With
//! `--out DIR` each CRL is written to `DIR/<algorithm>.crl`, to be parsed afterwards with
//! `openssl crl -inform DER -noout -in …` (not from here: a child process would count in the
//! peak memory `/usr/bin/time -v` reports for this one).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};
use yiqian_pki::x509_cert::Certificate;
use yiqian_pki::{
    Algorithm, CertificateRequest, IssuanceOptions, Profile, RevocationReason, RevokedEntry, SerialNumber, Signer,
    SoftwareKey, build_crl, issue,
};

const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn hierarchy(alg: Algorithm) -> Result<(Certificate, SoftwareKey), Box<dyn std::error::Error>> {
    let now = SystemTime::now();
    let root_key = SoftwareKey::generate(alg)?;
    let root = issue(
        &CertificateRequest {
            profile: Profile::Root,
            subject: "CN=yiqian Bench Root,O=yiqian,C=CN".parse()?,
            public_key: root_key.public_key().clone(),
            serial: SerialNumber::random(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 20 * YEAR,
            issuer: None,
            options: &IssuanceOptions::default(),
        },
        &root_key,
    )?;
    let ca_key = SoftwareKey::generate(alg)?;
    let ca = issue(
        &CertificateRequest {
            profile: Profile::IssuingCa,
            subject: "CN=yiqian Bench Issuing CA,O=yiqian,C=CN".parse()?,
            public_key: ca_key.public_key().clone(),
            serial: SerialNumber::random(),
            not_before: now - Duration::from_secs(60),
            not_after: now + 10 * YEAR,
            issuer: Some(&root),
            options: &IssuanceOptions::default(),
        },
        &root_key,
    )?;
    Ok((ca, ca_key))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut algorithms = Vec::new();
    let mut entries = 1_000_000usize;
    let mut out_dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--entries" {
            entries = args.next().ok_or("--entries N")?.parse()?;
        } else if arg == "--out" {
            out_dir = Some(args.next().ok_or("--out DIR")?.into());
        } else {
            algorithms.push(arg.parse::<Algorithm>()?);
        }
    }
    if algorithms.is_empty() {
        algorithms = vec![Algorithm::Sm2, Algorithm::P256, Algorithm::Rsa3072];
    }
    let reasons: Vec<RevocationReason> =
        RevocationReason::ALL.into_iter().filter(|r| *r != RevocationReason::RemoveFromCrl).collect();
    let now = SystemTime::now();
    let started = Instant::now();
    let revoked: Vec<RevokedEntry> = (0..entries)
        .map(|i| RevokedEntry {
            serial: SerialNumber::random(),
            revoked_at: now - Duration::from_secs((i as u64 * 31) % (365 * 86_400)),
            reason: reasons[i % reasons.len()],
        })
        .collect();
    println!("prepared {entries} entries in {:.3} s (not timed below)", started.elapsed().as_secs_f64());

    for alg in algorithms {
        let (ca, key) = hierarchy(alg)?;
        let started = Instant::now();
        let crl = build_crl(&ca, &key, 1, now, now + Duration::from_secs(7 * 86_400), &revoked)?;
        let took = started.elapsed();
        println!(
            "{:<8} build_crl over {entries} entries: {:.3} s, {} bytes ({:.1} MB)",
            alg.as_str(),
            took.as_secs_f64(),
            crl.len(),
            crl.len() as f64 / 1e6
        );
        if let Some(dir) = &out_dir {
            let path = dir.join(format!("{alg}.crl"));
            std::fs::write(&path, &crl)?;
            println!("{:<8} written to {}", alg.as_str(), path.display());
        }
        drop(crl);
    }
    Ok(())
}
