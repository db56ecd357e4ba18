//! The JSON request body extractor shared by every POST operation.
//!
//! v1 validates fields one by one with exact messages, so the body is parsed
//! into a JSON object here and each handler reads its fields with
//! [`crate::fields`]. The type parameter only documents the expected fields in
//! the OpenAPI spec.

use std::{marker::PhantomData, time::Duration};

use anyhow::Context;
use poem::{Request, RequestBody, http::header};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaMediaType, MetaRequest, Registry},
    types::Type,
};
use serde_json::Value;

use crate::{error::AppError, fields::JsonObject};

/// Limits on reading a request body, stored as request data by the app.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest accepted body in bytes.
    pub max_bytes: usize,
    /// Time allowed for receiving the whole body.
    pub read_timeout: Duration,
}

/// A request body that was checked to be a JSON object, documented in the
/// spec as `T`.
pub struct JsonBody<T> {
    pub object: JsonObject,
    documented_as: PhantomData<fn() -> T>,
}

impl<'a, T: Type> ApiExtractor<'a> for JsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: "application/json",
                schema: T::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _options: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let limits = request
            .data::<BodyLimits>()
            .copied()
            .context("body limits are missing from the request data")
            .map_err(AppError::Internal)?;
        let object = read_json_object(request, body, limits).await?;
        Ok(Self {
            object,
            documented_as: PhantomData,
        })
    }
}

/// Checks the content type and size, then parses the body as a JSON object.
async fn read_json_object(
    request: &Request,
    body: &mut RequestBody,
    limits: BodyLimits,
) -> Result<JsonObject, AppError> {
    check_content_type(request)?;
    let limit = limits.max_bytes;

    // A declared length over the limit is rejected before reading anything;
    // chunked bodies are cut off while reading.
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return Err(AppError::PayloadTooLarge { limit });
    }

    let body = body.take().map_err(anyhow::Error::from)?;
    // A client that stops sending mid-body would otherwise hold the
    // connection open, because the idle-connection timeout waits for requests
    // in flight.
    let read = tokio::time::timeout(limits.read_timeout, body.into_bytes_limit(limit)).await;
    let bytes = match read {
        Err(_elapsed) => {
            return Err(AppError::BodyTimeout {
                seconds: limits.read_timeout.as_secs(),
            });
        }
        Ok(Err(poem::error::ReadBodyError::PayloadTooLarge)) => {
            return Err(AppError::PayloadTooLarge { limit });
        }
        Ok(Err(other)) => {
            return Err(AppError::BadRequest {
                message: format!("failed to read the request body: {other}"),
                code: "invalid_body",
                field: None,
            });
        }
        Ok(Ok(bytes)) => bytes,
    };

    parse_json_object(&bytes)
}

/// Parses `bytes` as one JSON object. serde_json rejects what v1 let through
/// and then could not respond to: `NaN` and `Infinity`, numbers beyond the f64
/// range, nesting of 128 levels or more, invalid UTF-8 and lone surrogates.
pub fn parse_json_object(bytes: &[u8]) -> Result<JsonObject, AppError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) | Err(_) => Err(AppError::invalid_json()),
    }
}

fn check_content_type(request: &Request) -> Result<(), AppError> {
    let mut values = request.headers().get_all(header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Err(AppError::UnsupportedMediaType {
            found: "no Content-Type header".to_owned(),
        });
    };
    if values.next().is_some() {
        return Err(AppError::UnsupportedMediaType {
            found: "more than one Content-Type header".to_owned(),
        });
    }

    let text = String::from_utf8_lossy(value.as_bytes());
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(AppError::UnsupportedMediaType {
            found: format!("{text:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_object_with_surrounding_whitespace() {
        let object = parse_json_object(b" {\"a\": 1}\n").unwrap();
        assert_eq!(object["a"], 1);
    }

    #[test]
    fn parse_rejects_non_objects_and_extensions() {
        let cases: &[&[u8]] = &[
            b"",
            b"[]",
            b"null",
            b"\"x\"",
            b"{} {}",
            b"{\"a\": NaN}",
            b"{\"a\": Infinity}",
            b"{\"a\": 1e400}",
            b"{\"a\": \"\\ud800\"}",
            b"\xef\xbb\xbf{}",
            b"{\"a\": \"\xff\"}",
        ];
        for case in cases {
            let error = parse_json_object(case).unwrap_err();
            assert_eq!(error.to_string(), "invalid json", "input {case:?}");
        }
    }

    #[test]
    fn parse_rejects_huge_integers_and_deep_nesting() {
        let huge = format!("{{\"a\": 1{}}}", "0".repeat(400));
        assert!(parse_json_object(huge.as_bytes()).is_err());
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(2000), "]".repeat(2000));
        assert!(parse_json_object(deep.as_bytes()).is_err());
    }

    #[test]
    fn parse_keeps_last_duplicate_key() {
        let object = parse_json_object(b"{\"a\": 1, \"a\": 2}").unwrap();
        assert_eq!(object["a"], 2);
    }
}
