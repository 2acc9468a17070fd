//! A benchmark, not a test (ignored; it asserts no timing): keys personalised per minute by the
//! real `yiqian station` binary with 1, 2 and 4 SoftHSM2 slots in parallel, and where each key's
//! time goes (key generation on the key, the issuance round trip, writing and recording).
//! Figures go to `docs/benchmarks.md`. Run it alone, in release:
//!
//! ```text
//! cargo test --release -p yiqian --test station_bench -- --ignored --nocapture
//! ```
//!
//! `YIQIAN_BENCH_ALGORITHMS` (default `p256,rsa3072`) and `YIQIAN_BENCH_KEYS` (keys per slot
//! count, default 8, at most 14: each count has a fresh service, and the sandbox sends one
//! address at most 30 SMS codes a day, two per order) change what is measured.

mod common;

use common::station::*;
use common::*;
use std::time::Instant;
use yiqian_store::Backend;
use yiqian_store::fulfilment::PersonalisedAt;
use yiqian_token::softhsm::{MODULE, SoftHsmHub};

const FACTORY_SO_PIN: &str = "12345678";

/// The seconds of each step in a station's "完成" line.
fn steps(line: &str) -> Option<[f64; 4]> {
    let rest = line.split("用时 ").nth(1)?;
    let numbers: Vec<f64> = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.parse().ok())
        .collect();
    (numbers.len() >= 4).then(|| [numbers[0], numbers[1], numbers[2], numbers[3]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo test --release -p yiqian --test station_bench -- --ignored --nocapture"]
async fn keys_per_minute_with_one_two_and_four_slots() {
    SoftHsmHub::available().expect("the benchmark needs SoftHSM2");
    let algorithms = std::env::var("YIQIAN_BENCH_ALGORITHMS").unwrap_or_else(|_| "p256,rsa3072".into());
    let per_config: usize = std::env::var("YIQIAN_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    println!("| algorithm | slots | keys | wall time | keys/min | key generation | issuance | writing |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for algorithm in algorithms.split(',') {
        let hub_dir = tempfile::tempdir().unwrap();
        let hub = SoftHsmHub::create(hub_dir.path()).unwrap();
        let slots = [1usize, 2, 4];
        let total: usize = slots.len() * per_config;
        for _ in 0..total {
            hub.add_key("ePass2003", FACTORY_SO_PIN, "11111111").unwrap();
        }
        let lister = Station::softhsm(hub_dir.path().join("unused.json"), &hub.conf(), FACTORY_SO_PIN);
        let mut keys = lister.command(&["keys", "--reader", "pkcs11", "--module", MODULE]);
        let listing = String::from_utf8(keys.output().unwrap().stdout).unwrap();
        let serials: Vec<String> = listing
            .lines()
            .filter(|l| l.contains("ePass2003"))
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect();
        assert_eq!(serials.len(), total, "{listing}");
        for (i, &slot_count) in slots.iter().enumerate() {
            // A fresh service for each count: the sandbox's daily SMS limit per address.
            let h = start_configured(Backend::Sqlite, false, |c| c.ca_algorithm = algorithm.into()).await;
            let maker = console_login(&h, "zhao.min", "fulfilment").await;
            let station = Station::softhsm(
                hub_dir.path().join(format!("station-{slot_count}.json")),
                &hub.conf(),
                FACTORY_SO_PIN,
            );
            enrol(&h, &station, &maker.name, &maker.password, &maker.totp_secret, "bench").await;
            let member = member(&h, "zhao.min").await;
            let mine = &serials[i * per_config..(i + 1) * per_config];
            let orders: Vec<String> =
                approved_orders(&h, 1, per_config as u32).await.into_iter().map(|(_, id, _)| id).collect();
            let batch = h.server.app.start_issuance_batch(&member, &orders, PersonalisedAt::Station).await.unwrap();
            let mut wall = 0.0;
            let mut sums = [0.0f64; 4];
            let mut done = 0usize;
            for run in mine.chunks(slot_count) {
                let started = Instant::now();
                let (ok, out) = station.run(&batch, run).await;
                wall += started.elapsed().as_secs_f64();
                assert!(ok, "{out}");
                for line in out.lines().filter(|l| l.contains("完成 YQ")) {
                    let s = steps(line).unwrap_or_else(|| panic!("{line}"));
                    for (sum, v) in sums.iter_mut().zip(s) {
                        *sum += v;
                    }
                    done += 1;
                }
            }
            assert_eq!(done, per_config);
            h.server.stop().await;
            let n = done as f64;
            println!(
                "| {algorithm} | {slot_count} | {done} | {wall:.2} s | {:.0} | {:.0} ms | {:.0} ms | {:.0} ms |",
                n / wall * 60.0,
                sums[1] / n * 1000.0,
                sums[2] / n * 1000.0,
                sums[3] / n * 1000.0
            );
        }
    }
}
