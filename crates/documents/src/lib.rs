//! Printable PDF documents for the CA's paperwork, rendered with [typst](https://typst.app)
//! through `typst-as-lib`.
//!
//! Today there is one document: the business confirmation form (业务确认单) that ships with
//! every UKEY, in two copies per applicant ([`DocumentRenderer::confirmation_forms`]).
//!
//! Everything a render needs is compiled into the binary: the typst template
//! (`templates/confirmation.typ`) and the CJK font (WenQuanYi Micro Hei, `fonts/`, Apache-2.0
//! or GPL-3+ with font exception; see `fonts/LICENSE-wqy-microhei.txt`). Nothing is read from
//! the system's fonts or the file system, and nothing is downloaded.
//!
//! Applicant data never becomes typst source: it is handed to the template as
//! `sys.inputs` values (strings and image bytes), so `#`, `*`, `[`, `$` and friends in a
//! name or an address print as themselves.

mod confirmation;
mod error;
mod renderer;

pub use confirmation::ConfirmationForm;
pub use error::DocumentError;
pub use renderer::DocumentRenderer;
