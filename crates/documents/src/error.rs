//! What can go wrong while rendering a document.

use typst::diag::SourceDiagnostic;
use typst_as_lib::TypstAsLibError;

/// Why a document could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// A batch render was asked for zero documents; an empty PDF is never what the caller wants.
    #[error("nothing to render: the batch is empty")]
    EmptyBatch,
    /// An applicant's handwritten signature is not a PNG image that decodes cleanly.
    #[error("confirmation form {index} (order {order_no}): the signature is not a usable PNG image: {reason}")]
    BadSignature {
        /// Position of the form in the batch, from 0.
        index: usize,
        /// The form's order number, to find the applicant.
        order_no: String,
        /// What is wrong with the image.
        reason: String,
    },
    /// The activation URL could not be encoded as a QR code (in practice: it is far too long).
    #[error(
        "confirmation form {index} (order {order_no}): the activation URL cannot be encoded as a QR code: {reason}"
    )]
    QrCode {
        /// Position of the form in the batch, from 0.
        index: usize,
        /// The form's order number, to find the applicant.
        order_no: String,
        /// The encoder's explanation.
        reason: String,
    },
    /// The documents did not come out as exactly one A4 page per copy of a confirmation form and
    /// one per user guide, because some field is far too long; printing such a batch would mix
    /// up the applicants' papers.
    #[error(
        "the {document} came out as {pages} pages instead of {expected} (one A4 page per copy of a form, \
         one per user guide): {culprit} does not fit on its page, some field is far too long"
    )]
    Overflow {
        /// Which documents were being rendered.
        document: &'static str,
        /// How many pages typst laid out.
        pages: usize,
        /// Two per form, one per guide.
        expected: usize,
        /// Which document overflows, e.g. `form 1 (order YQ…)` or `user guide 0 (order YQ…)`
        /// (counting from 0).
        culprit: String,
    },
    /// The embedded font could not be parsed (a broken build, not bad input).
    #[error("the embedded font is unusable: {0}")]
    Font(String),
    /// typst rejected the template or its inputs; the diagnostics are joined with `; `.
    #[error("typst could not lay out the {document}: {diagnostics}")]
    Typst {
        /// Which document was being rendered.
        document: &'static str,
        /// typst's error messages and hints.
        diagnostics: String,
    },
    /// The laid-out document could not be written as PDF; the diagnostics are joined with `; `.
    #[error("typst could not export the {document} as PDF: {diagnostics}")]
    Pdf {
        /// Which document was being rendered.
        document: &'static str,
        /// typst's error messages and hints.
        diagnostics: String,
    },
}

/// Joins typst diagnostics into one line: each message, followed by its hints.
pub(crate) fn join_diagnostics<'a>(diagnostics: impl IntoIterator<Item = &'a SourceDiagnostic>) -> String {
    let mut joined = Vec::new();
    for diagnostic in diagnostics {
        let mut line = diagnostic.message.to_string();
        for hint in &diagnostic.hints {
            line.push_str(" (hint: ");
            line.push_str(&hint.v);
            line.push(')');
        }
        joined.push(line);
    }
    if joined.is_empty() { "no diagnostics given".to_owned() } else { joined.join("; ") }
}

/// Turns a typst-as-lib compile failure into [`DocumentError::Typst`].
pub(crate) fn compile_error(document: &'static str, error: TypstAsLibError) -> DocumentError {
    let diagnostics = match error {
        TypstAsLibError::TypstSource(diagnostics) => join_diagnostics(&diagnostics),
        other => other.to_string(),
    };
    DocumentError::Typst { document, diagnostics }
}
