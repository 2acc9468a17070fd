//! The business confirmation form (业务确认单) and the user guide (《个人数字证书使用说明》) end to
//! end: render PDFs — the forms alone, the guides alone, and each applicant's parcel papers
//! (two copies of the form, then the guide) — and read them back with poppler (`pdfinfo`,
//! `pdftotext`, `pdftoppm`): page count, the printed text, one raster per page, and the
//! activation QR code decoded from the raster.
//!
//! The poppler tools come from Debian `poppler-utils`. Without them the poppler checks say so and
//! pass, unless `YIQIAN_REQUIRE_POPPLER=1` (CI) makes that a failure. The error-path tests need
//! no tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use yiqian_documents::{ConfirmationForm, DocumentError, DocumentRenderer, UserGuide};

const POPPLER_TOOLS: [&str; 3] = ["pdfinfo", "pdftotext", "pdftoppm"];

/// Whether the poppler tools are installed; if not, prints why the caller skips, or panics
/// when `YIQIAN_REQUIRE_POPPLER=1`.
fn poppler_available(test: &str) -> bool {
    let missing: Vec<&str> =
        POPPLER_TOOLS.into_iter().filter(|tool| Command::new(tool).arg("-v").output().is_err()).collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("YIQIAN_REQUIRE_POPPLER").as_deref() != Ok("1"),
        "YIQIAN_REQUIRE_POPPLER=1 but {missing:?} missing: apt-get install poppler-utils"
    );
    println!("{test} skipped: {missing:?} not installed (install poppler-utils)");
    false
}

/// One renderer for all tests, as the application shares one.
fn renderer() -> &'static DocumentRenderer {
    static RENDERER: OnceLock<DocumentRenderer> = OnceLock::new();
    RENDERER.get_or_init(|| DocumentRenderer::new().expect("the embedded font and template load"))
}

/// A handwriting-like stroke, dark blue on a transparent 300×100 PNG.
fn signature_png() -> Vec<u8> {
    let (width, height) = (300u32, 100u32);
    let mut rgba = vec![0u8; (width * height * 4) as usize];
    for step in 0..2000 {
        let t = f64::from(step) / 2000.0;
        let x = 20.0 + t * 260.0;
        let y = 50.0 + (t * 25.0).sin() * 30.0 * (1.0 - t * 0.5);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1), (-1, 0), (0, -1)] {
            let (px, py) = (x as i32 + dx, y as i32 + dy);
            if (0..width as i32).contains(&px) && (0..height as i32).contains(&py) {
                let i = ((py as u32 * width + px as u32) * 4) as usize;
                rgba[i..i + 4].copy_from_slice(&[20, 30, 90, 255]);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header().unwrap().write_image_data(&rgba).unwrap();
    out
}

fn form(n: usize) -> ConfirmationForm {
    ConfirmationForm {
        order_no: format!("YQ20261125{:06}", 100 + n),
        applicant_name: ["张三", "李四", "欧阳晓明"][n % 3].to_owned(),
        id_number_masked: format!("1101**********{:04}", 1234 + n),
        mobile_masked: "138****5678".into(),
        recipient: "张三 138****5678".into(),
        address: "北京市海淀区中关村大街1号院2号楼3层301室（工作日收件，周末请放快递柜）".into(),
        product: "个人数字证书(UKEY)".into(),
        validity: "2年".into(),
        certificate_serial: format!("4F2A9C0B7D1E3F5A6B8C9D0E1F2A3B4C5D6E{:04X}", 0x7F80 + n),
        token_serial: format!("UK2026112500{:04}", 12 + n),
        issued_on: "2026年11月25日".into(),
        signature_png: signature_png(),
        // The third is long enough to wrap under the QR code, and to need a denser code.
        activation_url: match n {
            2 => "https://activate.yiqian.example.cn/wechat/activate?order=YQ20261125000102&token=Zm9vYmFyYmF6cXV4cXV1eA&v=2"
                .into(),
            _ => format!("https://yiqian.example.cn/activate/7Q2M-K8ZP-{n:04}"),
        },
        ca_name: "宜签数字证书认证中心".into(),
        customer_service: "400-800-1234".into(),
    }
}

/// Runs a poppler tool, returning stdout; panics with stderr on failure.
fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(output.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

fn write_pdf(dir: &Path, name: &str, pdf: &[u8]) -> String {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    path.to_str().unwrap().to_owned()
}

fn page_count(pdf: &str) -> usize {
    let info = run("pdfinfo", &[pdf]);
    let pages = info.lines().find_map(|l| l.strip_prefix("Pages:")).unwrap_or_else(|| panic!("no Pages in {info}"));
    pages.trim().parse().unwrap()
}

/// The text of one page (`-layout`), with all whitespace removed: typst spaces Latin and CJK
/// apart optically, which pdftotext may render as a space.
fn page_text(pdf: &str, page: usize) -> String {
    let page = page.to_string();
    let text = run("pdftotext", &["-layout", "-enc", "UTF-8", "-f", &page, "-l", &page, pdf, "-"]);
    squash(&text)
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[track_caller]
fn assert_printed(text: &str, expected: &str) {
    assert!(text.contains(&squash(expected)), "{expected:?} is not on the page:\n{text}");
}

/// Rasterises every page with `pdftoppm -r 50 -png` and checks there is one non-trivial PNG each.
fn assert_rasterises(dir: &Path, pdf: &str, pages: usize) {
    let prefix = dir.join("page");
    run("pdftoppm", &["-r", "50", "-png", pdf, prefix.to_str().unwrap()]);
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("page-") && p.extension().unwrap() == "png")
        .collect();
    pngs.sort();
    assert_eq!(pngs.len(), pages, "{pngs:?}");
    for png in pngs {
        let size = std::fs::metadata(&png).unwrap().len();
        assert!(size > 5_000, "{} is only {size} bytes", png.display());
    }
}

/// Checks a rendered form's pages: the details and the copy line of each copy.
fn assert_form_pages(pdf: &str, form: &ConfirmationForm, first_page: usize) {
    for (page, copy) in [(first_page, "第一联"), (first_page + 1, "第二联")] {
        let text = page_text(pdf, page);
        for expected in [
            "业务确认单",
            copy,
            &form.ca_name,
            &form.order_no,
            &form.applicant_name,
            &form.id_number_masked,
            &form.mobile_masked,
            &form.certificate_serial,
            &form.token_serial,
            &form.address,
            &form.activation_url,
            &form.customer_service,
            "申请时手写签名",
            "收到UKEY后请用微信扫码激活",
            "申请人签字",
            "本人确认以上信息真实、准确，已收到UKEY。",
        ] {
            assert_printed(&text, expected);
        }
    }
}

#[test]
fn one_form_renders_as_two_pages_with_the_details_and_a_scannable_qr_code() {
    let form = form(0);
    let pdf = renderer().confirmation_forms(std::slice::from_ref(&form)).unwrap();
    if !poppler_available("one_form_renders_as_two_pages_with_the_details_and_a_scannable_qr_code") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "one.pdf", &pdf);
    assert_eq!(page_count(&path), 2);
    assert_form_pages(&path, &form, 1);
    let whole = squash(&run("pdftotext", &["-layout", "-enc", "UTF-8", &path, "-"]));
    assert_printed(&whole, "第一联：申请人留存");
    assert_printed(&whole, "第二联：申请人签字后寄回");
    assert_rasterises(dir.path(), &path, 2);

    for page in [1, 2] {
        assert_qr_code(dir.path(), &path, page, &form.activation_url);
    }
}

/// Reads the QR code back from a 150 dpi raster of the page.
#[track_caller]
fn assert_qr_code(dir: &Path, pdf: &str, page: usize, expected: &str) {
    let prefix = dir.join(format!("qr{page}"));
    let page_arg = page.to_string();
    let args =
        ["-r", "150", "-gray", "-png", "-f", &page_arg, "-l", &page_arg, "-singlefile", pdf, prefix.to_str().unwrap()];
    run("pdftoppm", &args);
    let decoded = decode_qr_codes(&prefix.with_extension("png"));
    assert_eq!(decoded, [expected], "the QR code on page {page}");
}

/// Every QR code rqrr finds in a PNG (pdftoppm writes RGB even with `-gray`).
fn decode_qr_codes(png_path: &Path) -> Vec<String> {
    let bytes = std::fs::read(png_path).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let (width, height, stride) = (frame.width as usize, frame.height as usize, frame.line_size);
    let channels = frame.color_type.samples();
    let grey = |x: usize, y: usize| {
        let pixel = &pixels[y * stride + x * channels..][..channels];
        match frame.color_type {
            png::ColorType::Rgb | png::ColorType::Rgba => {
                ((u16::from(pixel[0]) + u16::from(pixel[1]) + u16::from(pixel[2])) / 3) as u8
            }
            _ => pixel[0],
        }
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, grey);
    image.detect_grids().iter().map(|grid| grid.decode().expect("a readable QR code").1).collect()
}

#[test]
fn a_batch_of_three_renders_six_pages_in_order() {
    let forms: Vec<ConfirmationForm> = (0..3).map(form).collect();
    let pdf = renderer().confirmation_forms(&forms).unwrap();
    if !poppler_available("a_batch_of_three_renders_six_pages_in_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "batch.pdf", &pdf);
    assert_eq!(page_count(&path), 6);
    for (i, form) in forms.iter().enumerate() {
        assert_form_pages(&path, form, 2 * i + 1);
        // No other applicant's order number on this form's pages.
        for other in forms.iter().filter(|f| f.order_no != form.order_no) {
            assert!(!page_text(&path, 2 * i + 1).contains(&other.order_no));
        }
    }
    assert_rasterises(dir.path(), &path, 6);
    assert_qr_code(dir.path(), &path, 5, &forms[2].activation_url);
}

#[test]
fn markup_characters_in_the_data_print_literally() {
    let mut form = form(1);
    // Short enough for its table cell, so pdftotext -layout keeps it on one line.
    form.applicant_name = "#set text(red) *王五* $x$".into();
    form.recipient = r#"#panic("boom") _赵六_ [x] \ <a> @b `c` "q" // d"#.into();
    form.address = r#"上海市#strong[浦东]新区 $1$ 号 #{1 + 1} ]) } 路 /* 9 */ ~ -- ="#.into();
    form.order_no = "#pagebreak()".into();
    let pdf = renderer().confirmation_forms(std::slice::from_ref(&form)).unwrap();
    if !poppler_available("markup_characters_in_the_data_print_literally") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "markup.pdf", &pdf);
    assert_eq!(page_count(&path), 2, "an injected #pagebreak() would add pages");
    let text = page_text(&path, 1);
    for expected in [&form.applicant_name, &form.address, &form.recipient, &form.order_no] {
        assert_printed(&text, expected);
    }
}

#[test]
fn an_empty_batch_is_an_error() {
    let error = renderer().confirmation_forms(&[]).unwrap_err();
    assert!(matches!(error, DocumentError::EmptyBatch), "{error:?}");
    assert!(error.to_string().contains("empty"), "{error}");
}

#[test]
fn a_signature_that_is_not_a_png_is_an_error_naming_the_form() {
    let mut forms: Vec<ConfirmationForm> = (0..2).map(form).collect();
    forms[1].signature_png = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 not really a JPEG either".to_vec();
    let error = renderer().confirmation_forms(&forms).unwrap_err();
    let DocumentError::BadSignature { index, order_no, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*index, order_no.as_str()), (1, forms[1].order_no.as_str()));
    assert!(error.to_string().contains("not a PNG"), "{error}");

    // A PNG cut short is caught too, before typst sees it.
    let png = signature_png();
    forms[1].signature_png = png[..png.len() / 2].to_vec();
    let error = renderer().confirmation_forms(&forms).unwrap_err();
    assert!(matches!(error, DocumentError::BadSignature { index: 1, .. }), "{error:?}");

    forms[1].signature_png = Vec::new();
    let error = renderer().confirmation_forms(&forms).unwrap_err();
    assert!(matches!(error, DocumentError::BadSignature { index: 1, .. }), "{error:?}");
}

#[test]
fn an_activation_url_too_long_for_a_qr_code_is_an_error() {
    let mut form = form(0);
    form.activation_url = format!("https://yiqian.example.cn/{}", "a".repeat(5000));
    let error = renderer().confirmation_forms(&[form]).unwrap_err();
    assert!(matches!(error, DocumentError::QrCode { index: 0, .. }), "{error:?}");
}

#[test]
fn a_form_that_does_not_fit_its_page_is_an_error_naming_it() {
    let mut forms: Vec<ConfirmationForm> = (0..2).map(form).collect();
    forms[1].address = "很长的地址".repeat(400);
    let error = renderer().confirmation_forms(&forms).unwrap_err();
    let DocumentError::Overflow { expected, culprit, .. } = &error else { panic!("{error:?}") };
    assert_eq!(*expected, 4);
    assert_eq!(culprit, &format!("form 1 (order {})", forms[1].order_no));
}

#[test]
fn the_renderer_can_be_shared_between_threads() {
    let renderer = Arc::new(DocumentRenderer::new().unwrap());
    let threads: Vec<_> = (0..2)
        .map(|n| {
            let renderer = Arc::clone(&renderer);
            std::thread::spawn(move || renderer.confirmation_forms(&[form(n)]).unwrap())
        })
        .collect();
    for thread in threads {
        assert!(thread.join().unwrap().starts_with(b"%PDF-"));
    }
}

// ---------------------------------------------------------------------------------------------
// The user guide (《个人数字证书使用说明》), alone and in the parcel papers
// ---------------------------------------------------------------------------------------------

/// What every guide says, whoever it is for: the title, how to activate, PIN safety, validity
/// and after-sales.
const GUIDE_TEXT: [&str; 19] = [
    "个人数字证书使用说明",
    "一、数字证书和UKEY是什么",
    "二、激活证书（须申请人本人操作）",
    "用微信扫描业务确认单上的激活二维码，或用手机浏览器打开激活链接：",
    "使用申请时绑定的手机号登录",
    "勾选“本人已阅读并同意申请”，点击“下一步”。",
    "用普通话大声读出屏幕上的数字，录制视频并上传。",
    "验证通过后证书自动激活，订单显示“已激活”，PIN码随即以短信发送到您绑定的手机。",
    "三、PIN码安全",
    "不会随包裹寄出",
    "工作人员不会通过电话、短信或微信向您索要PIN码或验证码。",
    "请用UKEY配套的管理工具修改PIN码",
    "连续多次输错PIN码，UKEY将被锁定；锁定后请携带本人身份证和UKEY到服务网点解锁。",
    "切勿将UKEY借给他人，切勿把PIN码告诉任何人。",
    "四、有效期与续期",
    "请在证书到期前，携带本人身份证和UKEY到服务网点办理续期。",
    "五、售后服务",
    "PIN码解锁",
    "以上业务须本人携带有效身份证原件（和UKEY）到服务网点办理，暂不支持在线办理。",
];

/// Checks a guide's page: the fixed text, and this guide's order, product, validity, link, CA
/// and hotline.
#[track_caller]
fn assert_guide_page(pdf: &str, guide: &UserGuide, page: usize) {
    let text = page_text(pdf, page);
    for expected in GUIDE_TEXT {
        assert_printed(&text, expected);
    }
    for expected in [
        format!("订单号：{}", guide.order_no),
        format!("由{}核实您的身份后签发（{}，有效期{}）", guide.ca_name, guide.product, guide.validity),
        guide.activation_url.clone(),
        format!("证书有效期为{}，自签发之日起计算", guide.validity),
        format!("UKEY遗失或被盗，请立即拨打客服电话{}挂失", guide.customer_service),
        format!("如有疑问，请拨打{}客服电话{}", guide.ca_name, guide.customer_service),
    ] {
        assert_printed(&text, &expected);
    }
}

#[test]
fn the_parcel_papers_are_each_applicants_two_copies_then_their_user_guide() {
    let forms: Vec<ConfirmationForm> = (0..3).map(form).collect();
    let pdf = renderer().shipping_documents(&forms).unwrap();
    if !poppler_available("the_parcel_papers_are_each_applicants_two_copies_then_their_user_guide") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "parcels.pdf", &pdf);
    assert_eq!(page_count(&path), 9, "three pages per applicant");
    for (i, form) in forms.iter().enumerate() {
        let first = 3 * i + 1;
        assert_form_pages(&path, form, first);
        assert!(!page_text(&path, first).contains("个人数字证书使用说明"));
        let guide_page = first + 2;
        assert_guide_page(&path, &UserGuide::from(form), guide_page);
        // The guide carries the order number and nothing personal.
        let text = page_text(&path, guide_page);
        for personal in [&form.applicant_name, &form.id_number_masked, &form.mobile_masked, &form.address] {
            assert!(!text.contains(&squash(personal)), "{personal:?} is on the guide:\n{text}");
        }
        for other in forms.iter().filter(|f| f.order_no != form.order_no) {
            assert!(!text.contains(&other.order_no), "{} is on the guide of {}", other.order_no, form.order_no);
        }
    }
    assert_rasterises(dir.path(), &path, 9);
    // The forms' QR codes survive in the combined document; the guide has none.
    assert_qr_code(dir.path(), &path, 7, &forms[2].activation_url);
    let prefix = dir.path().join("guide");
    run(
        "pdftoppm",
        &["-r", "150", "-gray", "-png", "-f", "3", "-l", "3", "-singlefile", &path, prefix.to_str().unwrap()],
    );
    assert!(decode_qr_codes(&prefix.with_extension("png")).is_empty());
}

#[test]
fn a_user_guide_renders_alone_on_one_page() {
    let guides: Vec<UserGuide> = (0..2).map(|n| UserGuide::from(&form(n))).collect();
    let one = renderer().user_guides(&guides[..1]).unwrap();
    let two = renderer().user_guides(&guides).unwrap();
    if !poppler_available("a_user_guide_renders_alone_on_one_page") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "guide.pdf", &one);
    assert_eq!(page_count(&path), 1);
    assert_guide_page(&path, &guides[0], 1);
    assert_rasterises(dir.path(), &path, 1);
    let info = run("pdfinfo", &[&path]);
    assert!(info.lines().any(|l| l.starts_with("Title:") && l.contains("个人数字证书使用说明")), "{info}");

    let path = write_pdf(dir.path(), "guides.pdf", &two);
    assert_eq!(page_count(&path), 2);
    assert_guide_page(&path, &guides[0], 1);
    assert_guide_page(&path, &guides[1], 2);
}

#[test]
fn markup_characters_in_a_guide_print_literally() {
    let guide = UserGuide {
        order_no: "#pagebreak()".into(),
        ca_name: "#set text(red) *某某* 认证中心".into(),
        customer_service: r#"400 #panic("boom") $1$"#.into(),
        ..UserGuide::from(&form(0))
    };
    let pdf = renderer().user_guides(std::slice::from_ref(&guide)).unwrap();
    if !poppler_available("markup_characters_in_a_guide_print_literally") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_pdf(dir.path(), "markup-guide.pdf", &pdf);
    assert_eq!(page_count(&path), 1, "an injected #pagebreak() would add a page");
    assert_guide_page(&path, &guide, 1);
}

#[test]
fn empty_batches_of_guides_and_parcels_are_errors() {
    for error in [renderer().user_guides(&[]).unwrap_err(), renderer().shipping_documents(&[]).unwrap_err()] {
        assert!(matches!(error, DocumentError::EmptyBatch), "{error:?}");
    }
}

#[test]
fn a_guide_that_does_not_fit_its_page_is_an_error_naming_it() {
    let mut guides: Vec<UserGuide> = (0..2).map(|n| UserGuide::from(&form(n))).collect();
    guides[1].customer_service = "400-800-1234 转 2（工作日 9:00-18:00）".repeat(60);
    let error = renderer().user_guides(&guides).unwrap_err();
    let DocumentError::Overflow { expected, culprit, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*expected, culprit.as_str()), (2, format!("user guide 1 (order {})", guides[1].order_no).as_str()));

    // In the parcel papers the same hotline overflows the guide but not the form (which prints
    // it only in the page footer, never a reason for another page): the guide is named.
    let mut forms: Vec<ConfirmationForm> = (0..2).map(form).collect();
    forms[1].customer_service = guides[1].customer_service.clone();
    let error = renderer().shipping_documents(&forms).unwrap_err();
    let DocumentError::Overflow { expected, culprit, .. } = &error else { panic!("{error:?}") };
    assert_eq!((*expected, culprit.as_str()), (6, format!("user guide 1 (order {})", forms[1].order_no).as_str()));
    assert!(error.to_string().contains("shipping documents"), "{error}");
}

#[test]
fn a_bad_form_in_the_parcel_papers_is_an_error_naming_it() {
    let mut forms: Vec<ConfirmationForm> = (0..2).map(form).collect();
    forms[1].signature_png = b"not a PNG".to_vec();
    let error = renderer().shipping_documents(&forms).unwrap_err();
    assert!(matches!(error, DocumentError::BadSignature { index: 1, .. }), "{error:?}");
}
