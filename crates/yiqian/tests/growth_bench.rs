//! A benchmark, not a test (ignored; it asserts no timing): how the cost of the hot paths
//! grows with the data. For each size, a fresh PostgreSQL database is seeded with that many
//! orders by the seeding of `yiqian db seed` (`App::seed_orders`: activated orders with
//! certificates, some waiting for review, some expired), analysed, and then measured on the
//! service in this process:
//!
//! - order details (`GET /api/v1/orders/{id}`) of sampled seeded applicants, 16 at a time;
//! - OCSP GETs for sampled seeded certificates, 16 at a time (each signed on first request,
//!   then served from memory with a status check by index at most every second);
//! - whole applicant journeys (login, order, payment, the five materials steps, submission)
//!   of new applicants, one after another.
//!
//! Figures go to `docs/benchmarks.md`. Run it alone, in release, with PostgreSQL:
//!
//! ```text
//! YIQIAN_TEST_DATABASE_URL=postgres://… cargo test --release -p yiqian --test growth_bench -- --ignored --nocapture
//! ```
//!
//! `YIQIAN_BENCH_SIZES` (default `10000,1000000`) sets the sizes, `YIQIAN_BENCH_SECONDS`
//! (default 20) the length of each load and `YIQIAN_BENCH_JOURNEYS` (default 20) the journeys.

mod common;

use common::phone::{Phone, journey, phone_client};
use common::*;
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Latency percentiles of a set of durations, in milliseconds.
fn percentiles(mut d: Vec<Duration>) -> (f64, f64, usize) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q) as usize).min(d.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99), d.len())
}

/// Sends `request(i)` from `workers` clients at once for `seconds`; the latency of each
/// answer, all of which must be 200.
async fn load<F>(workers: usize, seconds: u64, request: F) -> Vec<Duration>
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                let mut i = w;
                while Instant::now() < until {
                    let started = Instant::now();
                    let r = request(i).send().await.expect("request");
                    assert_eq!(r.status(), 200, "request {i}");
                    r.bytes().await.expect("body");
                    out.push(started.elapsed());
                    i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 1;
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it alone, in release"]
async fn hot_paths_as_the_data_grows() {
    if std::env::var("YIQIAN_TEST_DATABASE_URL").is_err() {
        panic!("needs PostgreSQL: set YIQIAN_TEST_DATABASE_URL");
    }
    let sizes: Vec<usize> = std::env::var("YIQIAN_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes are numbers"))
        .collect();
    let seconds = env_or("YIQIAN_BENCH_SECONDS", 20u64);
    let journeys = env_or("YIQIAN_BENCH_JOURNEYS", 20usize);
    let mut table = Vec::new();
    for &size in &sizes {
        // Journeys come from addresses of their own, as phones do (the SMS limits per address).
        let h = Arc::new(start_configured(yiqian_store::Backend::Postgres, false, |c| c.trust_x_real_ip = true).await);
        let started = Instant::now();
        let report = h
            .server
            .app
            .seed_orders(size, 2000, move |done| {
                if done % (size / 10).max(1) < yiqian_app::seed::BATCH {
                    eprintln!("seeded {done} of {size}");
                }
            })
            .await
            .unwrap();
        let seeding = started.elapsed().as_secs_f64();
        let mut db = sqlx::PgConnection::connect(&h.config.database_url).await.unwrap();
        sqlx::query("VACUUM ANALYZE").execute(&mut db).await.unwrap();
        let bytes: i64 =
            sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut db).await.unwrap();

        let sample = Arc::new(report.sample.clone());
        let with_certs: Arc<Vec<String>> =
            Arc::new(report.sample.iter().filter_map(|s| s.ocsp_request.as_ref()).map(|r| ocsp_get_path(r)).collect());
        let (base, http) = (h.base.clone(), h.http.clone());
        let details = {
            let (sample, base, http) = (sample.clone(), base.clone(), http.clone());
            move |i: usize| {
                let s = &sample[i % sample.len()];
                http.get(format!("{base}/api/v1/orders/{}", s.order_id)).bearer_auth(&s.session_token)
            }
        };
        let ocsp = {
            let (paths, base, http) = (with_certs.clone(), base.clone(), http.clone());
            move |i: usize| http.get(format!("{base}/pki/ocsp/{}", paths[i % paths.len()]))
        };
        // Warm up: the connection pool, the OCSP signer and its first signatures.
        load(4, 2, details.clone()).await;
        load(4, 2, ocsp.clone()).await;
        let details = percentiles(load(16, seconds, details).await);
        let ocsp = percentiles(load(16, seconds, ocsp).await);

        // Journeys run in a task of their own, so that the database is dropped even if one fails.
        let journey_times = {
            let (h, base) = (h.clone(), base.clone());
            tokio::spawn(async move {
                let requests = Arc::new(AtomicUsize::new(0));
                let mut times = Vec::new();
                for n in 0..journeys {
                    let http = phone_client(n);
                    let mut phone = Phone { base: base.clone(), http, token: None, requests: requests.clone() };
                    let started = Instant::now();
                    journey(h.clone(), &mut phone, n, None).await;
                    times.push(started.elapsed());
                }
                times
            })
            .await
        };
        drop(db);
        let url = h.config.database_url.clone();
        if let Ok(h) = Arc::try_unwrap(h) {
            h.server.stop().await;
        }
        // A million orders take gigabytes: the database goes when measured.
        let name = database_name(&url);
        let mut admin = sqlx::PgConnection::connect(&std::env::var("YIQIAN_TEST_DATABASE_URL").unwrap()).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await
            .unwrap();
        let journey = percentiles(journey_times.expect("every journey reaches 受理成功"));
        let line = format!(
            "| {size} | {:.0} s | {:.0} MB | {:.2} / {:.2} ms ({:.0}/s) | {:.2} / {:.2} ms ({:.0}/s) | {:.0} / {:.0} ms |",
            seeding,
            bytes as f64 / 1e6,
            details.0,
            details.1,
            details.2 as f64 / seconds as f64,
            ocsp.0,
            ocsp.1,
            ocsp.2 as f64 / seconds as f64,
            journey.0,
            journey.1,
        );
        eprintln!("{line}");
        table.push(line);
    }
    println!("| orders | seeding | database | order details p50 / p99 | OCSP GET p50 / p99 | journey p50 / max |");
    println!("|---|---|---|---|---|---|");
    for line in table {
        println!("{line}");
    }
}
