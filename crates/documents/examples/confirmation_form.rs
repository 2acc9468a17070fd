//! Writes a sample business confirmation form (业务确认单) PDF, to look at the layout:
//!
//! ```text
//! cargo run -p yiqian-documents --example confirmation_form -- /tmp/form.pdf [forms] [--long] [--guide | --package]
//! pdftoppm -r 60 -png /tmp/form.pdf /tmp/form
//! ```
//!
//! A number renders that many forms in one batch (default 1). `--long` fills every field with
//! the longest text it should still hold, to check nothing overflows. `--guide` renders the
//! user guides (《个人数字证书使用说明》) of the forms instead, `--package` what is printed for the
//! parcels (each form's two copies, then its guide). The signature is a scribble drawn here as
//! a PNG.

use std::time::Instant;
use yiqian_documents::{ConfirmationForm, DocumentRenderer, UserGuide};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: confirmation_form <output.pdf> [number of forms] [--long] [--guide | --package]");
        std::process::exit(2);
    };
    let (mut count, mut long, mut what) = (1, false, "forms");
    for arg in args {
        match arg.as_str() {
            "--long" => long = true,
            "--guide" => what = "guides",
            "--package" => what = "packages",
            n => count = n.parse().expect("the number of forms, --long, --guide or --package"),
        }
    }

    let started = Instant::now();
    let renderer = DocumentRenderer::new().expect("renderer");
    let loaded = started.elapsed();
    let forms: Vec<ConfirmationForm> = (0..count).map(|n| if long { long_form(n) } else { sample_form(n) }).collect();
    let started = Instant::now();
    let (pdf, pages_each) = match what {
        "guides" => {
            let guides: Vec<UserGuide> = forms.iter().map(UserGuide::from).collect();
            (renderer.user_guides(&guides).expect("render"), 1)
        }
        "packages" => (renderer.shipping_documents(&forms).expect("render"), 3),
        _ => (renderer.confirmation_forms(&forms).expect("render"), 2),
    };
    let rendered = started.elapsed();
    std::fs::write(&path, &pdf).expect("write the PDF");
    println!(
        "{path}: {count} {what}, {} pages, {} bytes; font load {:.1} ms, render {:.1} ms",
        count * pages_each,
        pdf.len(),
        loaded.as_secs_f64() * 1e3,
        rendered.as_secs_f64() * 1e3
    );
}

/// A realistic form; the `n`th gets its own order number.
fn sample_form(n: usize) -> ConfirmationForm {
    ConfirmationForm {
        order_no: format!("YQ20261125{:06}", 1024 + n),
        applicant_name: "欧阳晓明".into(),
        id_number_masked: "1101**********1234".into(),
        mobile_masked: "138****5678".into(),
        recipient: "欧阳晓明 138****5678".into(),
        address: "广东省深圳市南山区粤海街道科技园社区科苑路15号科兴科学园B栋3单元1801室（前台代收，工作日9:00-18:00）"
            .into(),
        product: "个人数字证书(UKEY)".into(),
        validity: "2年".into(),
        certificate_serial: "5E3A0C9F17B24D68A1E0F3C27B9D4E516A8C2F70".into(),
        token_serial: "YQK-2026-00012345".into(),
        issued_on: "2026年11月25日".into(),
        signature_png: signature_png(),
        activation_url: format!("https://yiqian.example.cn/activate/7Q2M-K8ZP-{n:04}"),
        ca_name: "宜签数字证书认证中心".into(),
        customer_service: "400-800-1234".into(),
    }
}

/// A form with every field as long as it can reasonably get.
fn long_form(n: usize) -> ConfirmationForm {
    ConfirmationForm {
        applicant_name: "阿卜杜热西提·买买提艾力·司马义".into(),
        id_number_masked: "1101**********123X".into(),
        recipient: "阿卜杜热西提·买买提艾力·司马义（代收人：王小明） 138****5678".into(),
        address: "新疆维吾尔自治区伊犁哈萨克自治州伊宁市经济合作区上海路与天津路交叉口东北角\
                  伊犁国际商务中心写字楼A座二十三层2308室（请先电话联系，工作日10:00-19:30收件，周末及法定节假日放至一楼快递柜）"
            .into(),
        product: "个人数字证书(UKEY) · SM2/ECDSA P-256 双证书 · 含电子签章".into(),
        validity: "3年（至2029年11月24日）".into(),
        certificate_serial: "7F5E3A0C9F17B24D68A1E0F3C27B9D4E516A8C2F".into(),
        token_serial: "YQK-FT-ePass3003-2026-0000000012345678".into(),
        issued_on: "2026年11月25日".into(),
        activation_url: format!(
            "https://activate.yiqian.example.cn/wechat/activate?order=YQ20261125{:06}&token=Zm9vYmFyYmF6cXV4cXV1eA&v=2",
            1024 + n
        ),
        ca_name: "宜签数字证书认证中心（北京宜签信息技术有限公司）".into(),
        customer_service: "400-800-1234 转 2（工作日 9:00-18:00）".into(),
        ..sample_form(n)
    }
}

/// A handwriting-like scribble: a few sine strokes in dark blue on a transparent 600×200 PNG.
fn signature_png() -> Vec<u8> {
    let (width, height) = (600u32, 200u32);
    let mut rgba = vec![0u8; (width * height * 4) as usize];
    let mut dot = |x: f64, y: f64| {
        for dy in -2i32..=2 {
            for dx in -2i32..=2 {
                let (px, py) = (x as i32 + dx, y as i32 + dy);
                if dx * dx + dy * dy <= 5 && (0..width as i32).contains(&px) && (0..height as i32).contains(&py) {
                    let i = ((py as u32 * width + px as u32) * 4) as usize;
                    rgba[i..i + 4].copy_from_slice(&[20, 30, 90, 255]);
                }
            }
        }
    };
    for stroke in 0..4 {
        let x0 = 40.0 + f64::from(stroke) * 135.0;
        for step in 0..1200 {
            let t = f64::from(step) / 1200.0;
            let x = x0 + t * 120.0 + (t * 19.0).sin() * 14.0;
            let y = 100.0 + (t * 9.0 + f64::from(stroke)).sin() * 55.0 * (1.0 - t * 0.4);
            dot(x, y);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().expect("PNG header").write_image_data(&rgba).expect("PNG data");
    out
}
