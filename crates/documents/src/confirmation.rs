//! The business confirmation form (业务确认单): its data, and how that data becomes typst input.
//!
//! The form's strings and images are turned into a typst [`Dict`] here; the layout lives in
//! `templates/confirmation.typ`.

use crate::DocumentError;
use qrcode::{EcLevel, QrCode};
use typst::foundations::{Bytes, Dict, IntoValue, Value};

/// One applicant's confirmation form. All strings are already what to print (masked where needed).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfirmationForm {
    /// 订单号.
    pub order_no: String,
    /// 申请人.
    pub applicant_name: String,
    /// 证件号码, masked, e.g. `1101**********1234`.
    pub id_number_masked: String,
    /// 手机号码, masked, e.g. `138****5678`.
    pub mobile_masked: String,
    /// 收件人: the recipient's name and masked phone number.
    pub recipient: String,
    /// 收件地址, in full; long addresses wrap.
    pub address: String,
    /// 证书类型, e.g. `个人数字证书(UKEY)`.
    pub product: String,
    /// 有效期, e.g. `2年`.
    pub validity: String,
    /// 证书序列号, in hex (up to 40 characters print on one line).
    pub certificate_serial: String,
    /// UKEY序列号: the token's serial number.
    pub token_serial: String,
    /// 签发日期, e.g. `2026年11月25日`.
    pub issued_on: String,
    /// The applicant's handwritten signature: a PNG, transparent or on a white background.
    pub signature_png: Vec<u8>,
    /// What the activation QR code encodes; also printed in small type under the code.
    pub activation_url: String,
    /// The CA's name for the heading, e.g. `宜签数字证书认证中心`.
    pub ca_name: String,
    /// 客服电话, printed in the footer.
    pub customer_service: String,
}

/// Like the derived `Debug`, but the signature image shows as its size, not as its bytes.
impl std::fmt::Debug for ConfirmationForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmationForm")
            .field("order_no", &self.order_no)
            .field("applicant_name", &self.applicant_name)
            .field("id_number_masked", &self.id_number_masked)
            .field("mobile_masked", &self.mobile_masked)
            .field("recipient", &self.recipient)
            .field("address", &self.address)
            .field("product", &self.product)
            .field("validity", &self.validity)
            .field("certificate_serial", &self.certificate_serial)
            .field("token_serial", &self.token_serial)
            .field("issued_on", &self.issued_on)
            .field("signature_png", &format_args!("<{} bytes>", self.signature_png.len()))
            .field("activation_url", &self.activation_url)
            .field("ca_name", &self.ca_name)
            .field("customer_service", &self.customer_service)
            .finish()
    }
}

/// The PNG file signature.
pub(crate) const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";
/// The most memory the signature check may use to decode one image (a signature is small).
const PNG_DECODE_LIMIT: usize = 64 * 1024 * 1024;

impl ConfirmationForm {
    /// The form as typst input: one dictionary of strings plus the signature PNG and the QR SVG
    /// as bytes. `index` is the form's position in the batch, for error messages.
    pub(crate) fn to_input(&self, index: usize) -> Result<Value, DocumentError> {
        check_png(&self.signature_png).map_err(|reason| DocumentError::BadSignature {
            index,
            order_no: self.order_no.clone(),
            reason,
        })?;
        let qr = qr_svg(&self.activation_url).map_err(|reason| DocumentError::QrCode {
            index,
            order_no: self.order_no.clone(),
            reason,
        })?;
        let mut dict = Dict::new();
        let texts = [
            ("order_no", &self.order_no),
            ("applicant_name", &self.applicant_name),
            ("id_number_masked", &self.id_number_masked),
            ("mobile_masked", &self.mobile_masked),
            ("recipient", &self.recipient),
            ("address", &self.address),
            ("product", &self.product),
            ("validity", &self.validity),
            ("certificate_serial", &self.certificate_serial),
            ("token_serial", &self.token_serial),
            ("issued_on", &self.issued_on),
            ("activation_url", &self.activation_url),
            ("ca_name", &self.ca_name),
            ("customer_service", &self.customer_service),
        ];
        for (key, text) in texts {
            dict.insert(key.into(), text.as_str().into_value());
        }
        dict.insert("signature".into(), Bytes::new(self.signature_png.clone()).into_value());
        dict.insert("qr".into(), Bytes::from_string(qr).into_value());
        Ok(Value::Dict(dict))
    }
}

/// Checks that `bytes` is a PNG that decodes completely (signature, chunks, CRCs, image data),
/// so typst is never handed something it would fail on with a less helpful message.
fn check_png(bytes: &[u8]) -> Result<(), String> {
    if bytes.is_empty() {
        return Err("the image is empty".to_owned());
    }
    if !bytes.starts_with(PNG_MAGIC) {
        return Err(format!("not a PNG file (it does not start with the PNG signature; {} bytes)", bytes.len()));
    }
    let decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), png::Limits { bytes: PNG_DECODE_LIMIT });
    let mut reader = decoder.read_info().map_err(|e| format!("broken PNG header: {e}"))?;
    let size = reader.output_buffer_size().ok_or_else(|| "the PNG is too large".to_owned())?;
    if size > PNG_DECODE_LIMIT {
        return Err("the PNG is too large".to_owned());
    }
    let mut pixels = vec![0; size];
    reader.next_frame(&mut pixels).map_err(|e| format!("broken PNG image data: {e}"))?;
    Ok(())
}

/// The QR code for `url` as an SVG document: error correction level M, with
/// no quiet zone (the template leaves white space around it), black on white.
fn qr_svg(url: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .quiet_zone(false)
        .module_dimensions(8, 8)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_a_png() {
        assert!(check_png(b"").unwrap_err().contains("empty"));
        assert!(check_png(b"GIF89a....").unwrap_err().contains("not a PNG"));
        let truncated = [PNG_MAGIC, b"\0\0\0\rIHDR"].concat();
        assert!(check_png(&truncated).unwrap_err().contains("broken PNG"));
    }

    #[test]
    fn debug_shows_the_signature_size_only() {
        let form = ConfirmationForm { signature_png: vec![7; 1234], ..ConfirmationForm::default() };
        assert!(format!("{form:?}").contains("signature_png: <1234 bytes>"));
    }

    #[test]
    fn qr_svg_is_an_svg() {
        let svg = qr_svg("https://example.cn/activate/ABC").unwrap();
        assert!(svg.contains("<svg"), "{svg}");
    }
}
