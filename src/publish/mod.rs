//! The publish pipeline: rules and storage.

pub mod rules;
pub mod store;
