//! Console section (being written).

use crate::WebState;
use axum::Router;

/// This section's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
}
