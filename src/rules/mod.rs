//! The rules and constants of the v1 contract (spec section 4), each a pure
//! function over a table of data, so that they can be compared with the spec
//! line by line.

pub mod organize;
pub mod policy;
pub mod publish;
pub mod runs;
