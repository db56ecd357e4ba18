//! Timestamps as stored in the database: RFC 3339 text in UTC.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// Returns the current UTC time as RFC 3339 text, for example
/// `2026-12-04T19:46:27.123456Z`.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|error| unreachable!("RFC 3339 formatting of UTC time failed: {error}"))
}
