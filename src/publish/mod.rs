//! The publish pipeline: storage (its rules are in `crate::rules::publish`).

pub mod store;
