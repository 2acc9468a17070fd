//! The software token (being written).
