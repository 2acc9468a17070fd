//! The typst engine with the embedded font and templates, shared by every render.
//!
//! Every render compiles `templates/main.typ`, which lays out a list of documents ("parts")
//! in order — confirmation forms (two pages each) and user guides (one page each) — so one
//! PDF can hold a whole print job; each part's page count is checked afterwards.

use crate::error::{compile_error, join_diagnostics};
use crate::{ConfirmationForm, DocumentError, UserGuide};
use typst::foundations::{Array, Bytes, Dict, IntoValue, Value};
use typst::text::Font;
use typst_as_lib::{TypstEngine, TypstTemplateMainFile};
use typst_layout::PagedDocument;

/// WenQuanYi Micro Hei: a TrueType collection with "WenQuanYi Micro Hei" (face 0) and
/// "WenQuanYi Micro Hei Mono" (face 1). Licence: `fonts/LICENSE-wqy-microhei.txt`.
static WQY_MICROHEI: &[u8] = include_bytes!("../fonts/wqy-microhei.ttc");
/// The font families the templates name; [`DocumentRenderer::new`] checks they are all there.
const FAMILIES: [&str; 2] = ["WenQuanYi Micro Hei", "WenQuanYi Micro Hei Mono"];
/// The entry point of every render: the parts in `sys.inputs.parts`, in order.
static MAIN_TEMPLATE: &str = include_str!("../templates/main.typ");
/// The modules `main.typ` imports, by the names it imports them with.
static MODULES: [(&str, &str); 3] = [
    ("common.typ", include_str!("../templates/common.typ")),
    ("confirmation.typ", include_str!("../templates/confirmation.typ")),
    ("user_guide.typ", include_str!("../templates/user_guide.typ")),
];

/// What one render makes: its name in error messages and the PDF's title.
#[derive(Debug, Clone, Copy)]
struct Job {
    name: &'static str,
    title: &'static str,
}

/// Confirmation forms alone.
const CONFIRMATION: Job =
    Job { name: "business confirmation forms (业务确认单)", title: "数字证书业务确认单" };
/// User guides alone.
const USER_GUIDE: Job =
    Job { name: "user guides (个人数字证书使用说明)", title: "个人数字证书使用说明" };
/// Each applicant's confirmation form and user guide.
const SHIPPING: Job = Job {
    name: "shipping documents (业务确认单 and 个人数字证书使用说明)",
    title: "数字证书业务确认单及使用说明",
};

/// One document of a render, in print order.
enum Part<'a> {
    /// A confirmation form in its two copies; `index` is its position in the caller's batch.
    Confirmation { index: usize, form: &'a ConfirmationForm },
    /// A user guide; `index` is its position in the caller's batch (of guides, or of forms
    /// when it is the guide of a form).
    UserGuide { index: usize, guide: UserGuide },
}

impl Part<'_> {
    /// How many A4 pages the part must take.
    fn pages(&self) -> usize {
        match self {
            Part::Confirmation { .. } => 2,
            Part::UserGuide { .. } => 1,
        }
    }

    /// The part as `main.typ` takes it: `(kind: …, data: …)`.
    fn to_input(&self) -> Result<Value, DocumentError> {
        let (kind, data) = match self {
            Part::Confirmation { index, form } => ("confirmation", form.to_input(*index)?),
            Part::UserGuide { guide, .. } => ("user-guide", guide.to_input()),
        };
        let mut dict = Dict::new();
        dict.insert("kind".into(), kind.into_value());
        dict.insert("data".into(), data);
        Ok(Value::Dict(dict))
    }

    /// The part in an error message, e.g. `form 1 (order YQ…)`, counting from 0.
    fn describe(&self) -> String {
        match self {
            Part::Confirmation { index, form } => format!("form {index} (order {})", form.order_no),
            Part::UserGuide { index, guide } => format!("user guide {index} (order {})", guide.order_no),
        }
    }
}

/// Renders the CA's documents to PDF. Parses the embedded font once (tens of milliseconds), so build one
/// and share it (it is `Send + Sync`; put it in an `Arc`). Renders do not touch the file system.
pub struct DocumentRenderer {
    engine: TypstEngine<TypstTemplateMainFile>,
}

impl std::fmt::Debug for DocumentRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentRenderer").finish_non_exhaustive()
    }
}

impl DocumentRenderer {
    /// Loads the embedded font and templates.
    ///
    /// Fails only if the embedded font cannot be parsed, which would be a broken build.
    pub fn new() -> Result<DocumentRenderer, DocumentError> {
        let fonts: Vec<Font> = Font::iter(Bytes::new(WQY_MICROHEI)).collect();
        for family in FAMILIES {
            if !fonts.iter().any(|font| font.info().family == family) {
                return Err(DocumentError::Font(format!(
                    "the embedded WenQuanYi Micro Hei collection has no \"{family}\" face ({} faces parsed)",
                    fonts.len()
                )));
            }
        }
        let engine = TypstEngine::builder()
            .main_file(("main.typ", MAIN_TEMPLATE))
            .with_static_source_file_resolver(MODULES)
            .fonts(fonts)
            .build();
        Ok(DocumentRenderer { engine })
    }

    /// Renders the forms, each in two copies (第一联 申请人留存 / 第二联 签字后寄回), one A4 page
    /// per copy, in order: form 1 copy 1, form 1 copy 2, form 2 copy 1, …
    ///
    /// Fails on an empty batch; and, naming the form, on a signature that is not a valid PNG, an
    /// activation URL too long for a QR code, or a field so long the form overflows its page.
    pub fn confirmation_forms(&self, forms: &[ConfirmationForm]) -> Result<Vec<u8>, DocumentError> {
        let parts = forms.iter().enumerate().map(|(index, form)| Part::Confirmation { index, form }).collect();
        self.render(CONFIRMATION, parts).map(|(pdf, _warnings)| pdf)
    }

    /// Renders the user guides (《个人数字证书使用说明》), one A4 page each, in order.
    ///
    /// Fails on an empty batch, or, naming the guide, on a field so long the guide overflows its
    /// page.
    pub fn user_guides(&self, guides: &[UserGuide]) -> Result<Vec<u8>, DocumentError> {
        let parts = guides.iter().enumerate().map(|(index, guide)| Part::UserGuide { index, guide: guide.clone() });
        self.render(USER_GUIDE, parts.collect()).map(|(pdf, _warnings)| pdf)
    }

    /// Renders what is printed for each applicant's parcel, applicant after applicant: the two
    /// copies of the confirmation form, then the user guide made from the same form
    /// ([`UserGuide::from`]) — three A4 pages per form, in order: form 1 copy 1, form 1 copy 2,
    /// guide 1, form 2 copy 1, …
    ///
    /// Fails as [`Self::confirmation_forms`] does, and on a guide that overflows its page.
    pub fn shipping_documents(&self, forms: &[ConfirmationForm]) -> Result<Vec<u8>, DocumentError> {
        let parts = forms
            .iter()
            .enumerate()
            .flat_map(|(index, form)| {
                [Part::Confirmation { index, form }, Part::UserGuide { index, guide: UserGuide::from(form) }]
            })
            .collect();
        self.render(SHIPPING, parts).map(|(pdf, _warnings)| pdf)
    }

    /// Lays the parts out, checks each took its pages, and writes the PDF; also returns typst's
    /// warnings (for the tests).
    fn render(&self, job: Job, parts: Vec<Part<'_>>) -> Result<(Vec<u8>, Vec<String>), DocumentError> {
        let (document, warnings) = self.lay_out(job, &parts)?;
        let (pages, expected) = (document.pages().len(), parts.iter().map(Part::pages).sum::<usize>());
        if pages != expected {
            // Lay the parts out one by one to name the one that overflows (an error path only).
            let overflowing = parts.iter().find(|part| {
                self.lay_out(job, std::slice::from_ref(*part))
                    .is_ok_and(|(single, _)| single.pages().len() != part.pages())
            });
            let culprit = overflowing.map_or_else(|| "a document".to_owned(), Part::describe);
            return Err(DocumentError::Overflow { document: job.name, pages, expected, culprit });
        }
        let pdf = typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default()).map_err(|diagnostics| {
            DocumentError::Pdf { document: job.name, diagnostics: join_diagnostics(&diagnostics) }
        })?;
        Ok((pdf, warnings))
    }

    /// Compiles `main.typ` for `parts`, returning the pages and typst's warnings.
    fn lay_out(&self, job: Job, parts: &[Part<'_>]) -> Result<(PagedDocument, Vec<String>), DocumentError> {
        if parts.is_empty() {
            return Err(DocumentError::EmptyBatch);
        }
        let inputs = parts.iter().map(Part::to_input).collect::<Result<Array, _>>()?;
        let mut dict = Dict::new();
        dict.insert("title".into(), job.title.into_value());
        dict.insert("parts".into(), inputs.into_value());

        let compiled = self.engine.compile_with_input::<_, PagedDocument>(dict);
        let warnings = compiled.warnings.iter().map(|w| join_diagnostics([w])).collect();
        let document = compiled.output.map_err(|e| compile_error(job.name, e))?;
        Ok((document, warnings))
    }
}

/// `DocumentRenderer` is shared between request handlers.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<DocumentRenderer>();
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 white PNG, written out by hand: signature, IHDR, IDAT (zlib, stored block), IEND.
    fn tiny_png() -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        fn crc32(bytes: &[u8]) -> u32 {
            let mut crc = 0xffff_ffffu32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
                }
            }
            !crc
        }
        let mut png = crate::confirmation::PNG_MAGIC.to_vec();
        chunk(&mut png, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]);
        // Scanline: filter 0, one grey byte 0xff. zlib: header, one stored block, Adler-32.
        chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x02, 0x00, 0xfd, 0xff, 0x00, 0xff, 0x01, 0x01, 0x01, 0x00]);
        chunk(&mut png, b"IEND", &[]);
        png
    }

    fn form() -> ConfirmationForm {
        ConfirmationForm {
            order_no: "YQ202611250001".into(),
            applicant_name: "张三".into(),
            id_number_masked: "1101**********1234".into(),
            mobile_masked: "138****5678".into(),
            recipient: "张三 138****5678".into(),
            address: "北京市海淀区中关村大街1号".into(),
            product: "个人数字证书(UKEY)".into(),
            validity: "2年".into(),
            certificate_serial: "4F2A9C0B7D1E3F5A6B8C9D0E1F2A3B4C5D6E7F80".into(),
            token_serial: "UK20261125000123".into(),
            issued_on: "2026年11月25日".into(),
            signature_png: tiny_png(),
            activation_url: "https://yiqian.example.cn/a/ABCDEFGH".into(),
            ca_name: "宜签数字证书认证中心".into(),
            customer_service: "400-800-1234".into(),
        }
    }

    #[test]
    fn the_templates_compile_without_warnings() {
        let renderer = DocumentRenderer::new().unwrap();
        let form = form();
        let jobs = [
            (CONFIRMATION, vec![Part::Confirmation { index: 0, form: &form }]),
            (USER_GUIDE, vec![Part::UserGuide { index: 0, guide: UserGuide::from(&form) }]),
            (
                SHIPPING,
                vec![
                    Part::Confirmation { index: 0, form: &form },
                    Part::UserGuide { index: 0, guide: UserGuide::from(&form) },
                ],
            ),
        ];
        for (job, parts) in jobs {
            let (pdf, warnings) = renderer.render(job, parts).unwrap();
            assert!(pdf.starts_with(b"%PDF-"), "{job:?}");
            assert!(warnings.is_empty(), "{job:?}: typst warnings: {warnings:?}");
        }
    }
}
