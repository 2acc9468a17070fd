//! Local stand-ins of the vendors yiqian talks to, faithful enough on the wire to exercise
//! the real adapters: each verifies our request signatures exactly as the vendor does, signs
//! its answers with the vendor-side key, and sends signed (for WeChat Pay, encrypted)
//! notifications back to the URLs our requests name.
//!
//! One HTTP listener serves every vendor; their paths do not collide (`/v3/…` and
//! `/connect/…`, `/sns/…` WeChat; `/gateway.do` Alipay; `POST /` with `X-TC-Action` Tencent
//! Cloud; `/std/service` SF Express; `/open/v1/services` Nuonuo). Pages a person would see
//! (the cashiers) and the controls tests use live under `/sim/…`.
//!
//! Nothing here is a real credential; [`accounts::SimAccounts::generate`] makes fresh ones.

pub mod accounts;
pub mod alipay;
pub mod nuonuo;
pub mod sf;
pub mod tencent;
pub mod wechatpay;

use accounts::SimAccounts;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;

/// The stand-ins' shared state: one per vendor.
#[derive(Clone)]
pub struct Sim {
    /// WeChat Pay and WeChat web authorisation.
    pub wechatpay: Arc<wechatpay::WechatPaySim>,
    /// Alipay.
    pub alipay: Arc<alipay::AlipaySim>,
    /// Tencent Cloud (SMS, ID card OCR, FaceID).
    pub tencent: Arc<tencent::TencentSim>,
    /// SF Express.
    pub sf: Arc<sf::SfSim>,
    /// Nuonuo.
    pub nuonuo: Arc<nuonuo::NuonuoSim>,
}

impl Sim {
    /// Stand-ins for `accounts`, reachable at `base_url` (e.g. `http://127.0.0.1:9900`;
    /// used in the links they hand out, such as cashier pages).
    pub fn new(accounts: &SimAccounts, base_url: &str) -> Sim {
        let base_url = base_url.trim_end_matches('/');
        Sim {
            wechatpay: Arc::new(wechatpay::WechatPaySim::new(&accounts.wechatpay, base_url)),
            alipay: Arc::new(alipay::AlipaySim::new(&accounts.alipay, base_url)),
            tencent: Arc::new(tencent::TencentSim::new(&accounts.tencent)),
            sf: Arc::new(sf::SfSim::new(&accounts.sf)),
            nuonuo: Arc::new(nuonuo::NuonuoSim::new(&accounts.nuonuo, base_url)),
        }
    }

    /// Every vendor's routes.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(wechatpay::routes())
            .merge(alipay::routes())
            .merge(tencent::routes())
            .merge(sf::routes())
            .merge(nuonuo::routes())
            .with_state(self.clone())
    }
}

/// A running stand-in server (for tests): its address and state. Stops when dropped.
pub struct RunningSim {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for inspecting what it received.
    pub sim: Sim,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// Starts the stand-ins for `accounts` on a free loopback port.
    pub async fn start(accounts: &SimAccounts) -> std::io::Result<RunningSim> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let sim = Sim::new(accounts, &format!("http://{addr}"));
        let app = sim.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RunningSim { addr, sim, task })
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}
