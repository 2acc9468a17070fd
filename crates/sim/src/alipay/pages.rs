//! The pages a payer sees at the Alipay stand-in: the mobile cashier, the error page Alipay
//! shows when a request does not check out, and short status pages. In Simplified Chinese.

use maud::{DOCTYPE, Markup, html};
use yiqian_domain::Fen;

/// The path the cashier's "确认付款" button posts to.
pub const PAY_PATH: &str = "/sim/alipay/pay";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style {
                    "body{font-family:sans-serif;background:#f5f5f5;margin:0}"
                    "header{background:#1677ff;color:#fff;padding:12px 16px;font-size:18px}"
                    "main{background:#fff;margin:12px;padding:16px;border-radius:8px}"
                    ".amount{font-size:32px;text-align:center;margin:16px 0}"
                    "button{width:100%;padding:12px;font-size:17px;background:#1677ff;color:#fff;border:0;border-radius:6px}"
                    ".note{color:#888;font-size:13px}"
                }
            }
            body {
                header { "支付宝 · 模拟收银台" }
                main { (body) }
                p class="note" { "这是本地模拟的支付宝，不会发生真实扣款。" }
            }
        }
    }
}

/// The wap cashier for an unpaid trade.
pub fn cashier(subject: &str, amount: Fen, trade_no: &str, quit_url: Option<&str>) -> Markup {
    layout(
        "支付宝 - 确认付款",
        html! {
            p { "订单信息：" (subject) }
            p class="amount" { "¥" (amount.yuan()) }
            p class="note" { "支付宝交易号：" (trade_no) }
            form method="post" action=(PAY_PATH) {
                input type="hidden" name="trade_no" value=(trade_no);
                button type="submit" { "确认付款" }
            }
            @if let Some(quit) = quit_url {
                p { a href=(quit) { "放弃付款，返回商家" } }
            }
        },
    )
}

/// Alipay's error page for a request that does not check out.
pub fn request_error(code: &str, reason: &str) -> Markup {
    layout(
        "支付宝 - 网上支付 安全快速！",
        html! {
            h3 { "调试错误，请回到请求来源地，重新发起请求。" }
            p { "错误代码 " (code) }
            p { "错误原因: " (reason) }
        },
    )
}

/// A short message page (paid already, closed, paid just now without a return URL).
pub fn message(title: &str, text: &str) -> Markup {
    layout(title, html! { h3 { (title) } p { (text) } })
}
