//! The typst engine with the embedded font and templates, shared by every render.

use crate::error::{compile_error, join_diagnostics};
use crate::{ConfirmationForm, DocumentError};
use typst::foundations::{Array, Bytes, Dict, IntoValue};
use typst::text::Font;
use typst_as_lib::{TypstEngine, TypstTemplateMainFile};
use typst_layout::PagedDocument;

/// WenQuanYi Micro Hei: a TrueType collection with "WenQuanYi Micro Hei" (face 0) and
/// "WenQuanYi Micro Hei Mono" (face 1). Licence: `fonts/LICENSE-wqy-microhei.txt`.
static WQY_MICROHEI: &[u8] = include_bytes!("../fonts/wqy-microhei.ttc");
/// The font families the templates name; [`DocumentRenderer::new`] checks they are all there.
const FAMILIES: [&str; 2] = ["WenQuanYi Micro Hei", "WenQuanYi Micro Hei Mono"];
/// The confirmation form's typst template.
static CONFIRMATION_TEMPLATE: &str = include_str!("../templates/confirmation.typ");
/// What the confirmation form is called in error messages.
const CONFIRMATION: &str = "business confirmation form (业务确认单)";

/// Renders the CA's documents to PDF. Parses the embedded font once (tens of milliseconds), so build one
/// and share it (it is `Send + Sync`; put it in an `Arc`). Renders do not touch the file system.
pub struct DocumentRenderer {
    confirmation: TypstEngine<TypstTemplateMainFile>,
}

impl std::fmt::Debug for DocumentRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentRenderer").finish_non_exhaustive()
    }
}

impl DocumentRenderer {
    /// Loads the embedded font and template.
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
        let confirmation =
            TypstEngine::builder().main_file(("confirmation.typ", CONFIRMATION_TEMPLATE)).fonts(fonts).build();
        Ok(DocumentRenderer { confirmation })
    }

    /// Renders the forms, each in two copies (第一联 申请人留存 / 第二联 签字后寄回), one A4 page
    /// per copy, in order: form 1 copy 1, form 1 copy 2, form 2 copy 1, …
    ///
    /// Fails on an empty batch; and, naming the form, on a signature that is not a valid PNG, an
    /// activation URL too long for a QR code, or a field so long the form overflows its page.
    pub fn confirmation_forms(&self, forms: &[ConfirmationForm]) -> Result<Vec<u8>, DocumentError> {
        self.render_confirmation_forms(forms).map(|(pdf, _warnings)| pdf)
    }

    /// [`Self::confirmation_forms`], also returning typst's warnings (for the tests).
    fn render_confirmation_forms(&self, forms: &[ConfirmationForm]) -> Result<(Vec<u8>, Vec<String>), DocumentError> {
        let (document, warnings) = self.lay_out_confirmation_forms(forms)?;
        let (pages, expected) = (document.pages().len(), 2 * forms.len());
        if pages != expected {
            // Lay the forms out one by one to name the one that overflows (an error path only).
            let overflowing = (0..forms.len()).find(|&i| {
                self.lay_out_confirmation_forms(&forms[i..=i]).is_ok_and(|(single, _)| single.pages().len() != 2)
            });
            let culprit = match overflowing {
                Some(i) => format!("form {i} (order {})", forms[i].order_no),
                None => "a form".to_owned(),
            };
            return Err(DocumentError::Overflow { pages, expected, culprit });
        }
        let pdf = typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default()).map_err(|diagnostics| {
            DocumentError::Pdf { document: CONFIRMATION, diagnostics: join_diagnostics(&diagnostics) }
        })?;
        Ok((pdf, warnings))
    }

    /// Compiles the confirmation form template for `forms`, returning the pages and typst's
    /// warnings.
    fn lay_out_confirmation_forms(
        &self,
        forms: &[ConfirmationForm],
    ) -> Result<(PagedDocument, Vec<String>), DocumentError> {
        if forms.is_empty() {
            return Err(DocumentError::EmptyBatch);
        }
        let inputs = forms.iter().enumerate().map(|(i, form)| form.to_input(i)).collect::<Result<Array, _>>()?;
        let mut dict = Dict::new();
        dict.insert("forms".into(), inputs.into_value());

        let compiled = self.confirmation.compile_with_input::<_, PagedDocument>(dict);
        let warnings = compiled.warnings.iter().map(|w| join_diagnostics([w])).collect();
        let document = compiled.output.map_err(|e| compile_error(CONFIRMATION, e))?;
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
    fn the_template_compiles_without_warnings() {
        let renderer = DocumentRenderer::new().unwrap();
        let (pdf, warnings) = renderer.render_confirmation_forms(&[form()]).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(warnings.is_empty(), "typst warnings: {warnings:?}");
    }
}
