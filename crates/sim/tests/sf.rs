//! The real SF Express adapter against the stand-in: booking (idempotent per order), a wrong
//! check word, routes with the right and wrong phone digits, and an added delivery scan.

use tokio::sync::OnceCell;
use yiqian_domain::OrderId;
use yiqian_domain::applicant::ShippingAddress;
use yiqian_domain::identity::MobileNumber;
use yiqian_providers::ProviderError;
use yiqian_providers::courier::{Courier, ShipmentRequest};
use yiqian_providers::sf::{SfConfig, SfContact, SfCourier};
use yiqian_sim::RunningSim;
use yiqian_sim::accounts::SimAccounts;

static ACCOUNTS: OnceCell<SimAccounts> = OnceCell::const_new();

async fn accounts() -> &'static SimAccounts {
    ACCOUNTS
        .get_or_init(|| async {
            tokio::task::spawn_blocking(|| SimAccounts::generate().expect("stand-in accounts"))
                .await
                .expect("generation finished")
        })
        .await
}

fn sender() -> SfContact {
    SfContact {
        company: "宜签数字认证".into(),
        contact: "发货组".into(),
        mobile: "0591-87654321".into(),
        province: "福建省".into(),
        city: "福州市".into(),
        county: "鼓楼区".into(),
        address: "五四路100号".into(),
    }
}

fn courier(sim: &RunningSim, accounts: &SimAccounts, checkword: &str) -> SfCourier {
    let a = &accounts.sf;
    let config = SfConfig::new(a.partner_id.clone(), checkword, a.monthly_card.clone(), sender())
        .unwrap()
        .with_base_url(format!("{}/std/service", sim.base_url()))
        .unwrap();
    SfCourier::new(config).unwrap()
}

fn request(order: &str) -> ShipmentRequest {
    ShipmentRequest {
        order: OrderId::parse(order).unwrap(),
        to: ShippingAddress {
            recipient: "张三".into(),
            phone: MobileNumber::parse("13800138000").unwrap(),
            province: "北京市".into(),
            city: "北京市".into(),
            district: "海淀区".into(),
            region_code: "110108".into(),
            street: "中关村大街1号".into(),
        },
        cargo: "数字证书UKEY".into(),
    }
}

async fn start() -> RunningSim {
    RunningSim::start(accounts().await).await.unwrap()
}

#[tokio::test]
async fn booking_twice_returns_one_waybill() {
    let sim = start().await;
    let sf = courier(&sim, accounts().await, &accounts().await.sf.checkword);
    assert_eq!((sf.name(), sf.display_name()), ("sf", "顺丰速运"));

    let first = sf.create_shipment(&request("YQ20260101AAAA")).await.unwrap();
    assert_eq!(first.courier, "顺丰速运");
    assert!(first.tracking_no.starts_with("SF") && first.tracking_no.len() == 15, "{}", first.tracking_no);
    assert!(first.tracking_no[2..].bytes().all(|b| b.is_ascii_digit()));

    let again = sf.create_shipment(&request("YQ20260101AAAA")).await.unwrap();
    assert_eq!(again, first);

    let orders = sim.sim.sf.orders();
    assert_eq!(orders.len(), 1);
    let o = &orders[0];
    assert_eq!((o.order_id.as_str(), o.waybill_no.as_str()), ("YQ20260101AAAA", first.tracking_no.as_str()));
    assert_eq!(o.create_calls, 2, "the repeat reached SF and was refused as 重复下单");
    assert_eq!((o.pay_method, o.express_type_id, o.parcel_qty), (1, 2, 1));
    assert_eq!(o.monthly_card, accounts().await.sf.monthly_card);
    assert_eq!(o.cargo, vec!["数字证书UKEY".to_owned()]);
    assert_eq!((o.sender.company.as_str(), o.sender.mobile.as_str()), ("宜签数字认证", "0591-87654321"));
    assert_eq!(
        (o.recipient.contact.as_str(), o.recipient.mobile.as_str(), o.recipient.county.as_str()),
        ("张三", "13800138000", "海淀区")
    );

    let other = sf.create_shipment(&request("YQ20260101BBBB")).await.unwrap();
    assert_ne!(other.tracking_no, first.tracking_no);
    assert_eq!(sim.sim.sf.orders().len(), 2);
}

#[tokio::test]
async fn a_wrong_check_word_is_refused_and_books_nothing() {
    let sim = start().await;
    let sf = courier(&sim, accounts().await, "not-the-check-word");
    let err = sf.create_shipment(&request("YQ20260101CCCC")).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Rejected { provider: "sf", detail } if detail.contains("A1006")), "{err:?}");
    assert!(sim.sim.sf.orders().is_empty());
    let err = sf.route("SF0000000000000", "8000").await.unwrap_err();
    assert!(!err.is_transient());
}

#[tokio::test]
async fn routes_need_the_recipient_phone_and_grow_in_order() {
    let sim = start().await;
    let sf = courier(&sim, accounts().await, &accounts().await.sf.checkword);
    let shipment = sf.create_shipment(&request("YQ20260101DDDD")).await.unwrap();

    let events = sf.route(&shipment.tracking_no, "8000").await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].remark.as_str(), events[0].op_code.as_str()), ("顺丰速运 已收取快件", "50"));
    assert_eq!(events[0].place, "福州市");
    assert_eq!(events[0].at.len(), 19);

    assert!(sf.route(&shipment.tracking_no, "1234").await.unwrap().is_empty(), "wrong phone digits: no routes");
    assert!(sf.route("SF9999999999999", "8000").await.unwrap().is_empty(), "unknown waybill: no routes");

    assert!(sim.sim.sf.add_route(&shipment.tracking_no, "北京市海淀区", "派送中", "44"));
    // The page's control adds a scan too.
    let form = [
        ("waybill", shipment.tracking_no.as_str()),
        ("place", "北京市海淀区"),
        ("remark", "已签收"),
        ("op_code", "80"),
    ];
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/sim/sf/route", sim.base_url()))
        .body(form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish())
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(!sim.sim.sf.add_route("SF9999999999999", "x", "y", "80"));

    let events = sf.route(&shipment.tracking_no, "8000").await.unwrap();
    let codes: Vec<&str> = events.iter().map(|e| e.op_code.as_str()).collect();
    assert_eq!(codes, ["50", "44", "80"]);
    assert_eq!(events[2].remark, "已签收");
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));

    let page = reqwest::get(format!("{}/sim/sf", sim.base_url())).await.unwrap().text().await.unwrap();
    assert!(page.contains(&shipment.tracking_no));
}
