//! Printable PDF documents for the CA's paperwork, rendered with [typst](https://typst.app)
//! through `typst-as-lib`.
//!
//! Two documents go into every applicant's parcel with the UKEY: the business confirmation form
//! (业务确认单), in two copies ([`ConfirmationForm`]), and the personal digital certificate user
//! guide (《个人数字证书使用说明》, [`UserGuide`]). [`DocumentRenderer::shipping_documents`]
//! prints both for a batch of applicants in one PDF, in parcel order;
//! [`DocumentRenderer::confirmation_forms`] and [`DocumentRenderer::user_guides`] print one kind.
//!
//! Everything a render needs is compiled into the binary: the typst templates (`templates/`:
//! `main.typ`, which lays out the documents it is given in order, and the modules it imports)
//! and the CJK font (WenQuanYi Micro Hei, `fonts/`, Apache-2.0 or GPL-3+ with font exception;
//! see `fonts/LICENSE-wqy-microhei.txt`). Nothing is read from the system's fonts or the file
//! system, and nothing is downloaded.
//!
//! Applicant data never becomes typst source: it is handed to the templates as
//! `sys.inputs` values (strings and image bytes), so `#`, `*`, `[`, `$` and friends in a
//! name or an address print as themselves.

mod confirmation;
mod error;
mod renderer;
mod user_guide;

pub use confirmation::ConfirmationForm;
pub use error::DocumentError;
pub use renderer::DocumentRenderer;
pub use user_guide::UserGuide;
