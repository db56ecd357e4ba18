//! JSON text in v1's style, used for the `json` export artifact that clients
//! compare as text: `", "` and `": "` separators, and every character outside
//! printable ASCII escaped as `\uXXXX` with lower-case hex (astral characters as
//! surrogate pairs).

use std::io;

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CharEscape, Formatter};

struct V1Formatter;

impl Formatter for V1Formatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut units = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() && c != '\u{7f}' {
                let mut byte = [0u8; 1];
                writer.write_all(c.encode_utf8(&mut byte).as_bytes())?;
            } else {
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let text = match escape {
            CharEscape::Quote => "\\\"".to_owned(),
            CharEscape::ReverseSolidus => "\\\\".to_owned(),
            CharEscape::Solidus => "/".to_owned(),
            CharEscape::Backspace => "\\b".to_owned(),
            CharEscape::FormFeed => "\\f".to_owned(),
            CharEscape::LineFeed => "\\n".to_owned(),
            CharEscape::CarriageReturn => "\\r".to_owned(),
            CharEscape::Tab => "\\t".to_owned(),
            CharEscape::AsciiControl(byte) => format!("\\u{byte:04x}"),
        };
        writer.write_all(text.as_bytes())
    }
}

/// Serialises `value` as v1 would write it.
pub fn to_v1_string(value: &Value) -> String {
    let mut buffer = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut buffer, V1Formatter);
    value
        .serialize(&mut serializer)
        .unwrap_or_else(|error| unreachable!("serialising a JSON value to memory failed: {error}"));
    // The formatter writes only ASCII.
    String::from_utf8(buffer).unwrap_or_else(|error| unreachable!("non-UTF-8 output: {error}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn escapes_non_ascii_delete_and_controls() {
        let text = to_v1_string(&json!({"k": "é\u{7f}\u{1}\n/😀", "n": [1, 2]}));
        assert_eq!(
            text,
            r#"{"k": "\u00e9\u007f\u0001\n/\ud83d\ude00", "n": [1, 2]}"#
        );
    }
}
