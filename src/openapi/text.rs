//! JSON Schemas of the text inputs, built from the limits and character rules the parsers
//! enforce (`community::domain`), for `#[schema(schema_with = ...)]` on input fields.
//!
//! The patterns are written for both ECMA-262 (what JSON Schema specifies) and Python's `re`
//! (what schemathesis generates from), so they use only character classes of explicit code
//! points: `\s` differs between the two, and from Rust's `char::is_whitespace`. Every string
//! excludes NUL, which `ApiJson` refuses in any field. `maxLength` counts characters as sent,
//! before trimming, which is how the parsers count them.

use utoipa::openapi::schema::{Array, Object, ObjectBuilder, SchemaType, Type};

/// Rust's `char::is_whitespace` (Unicode White_Space): what `str::trim` removes.
pub const WHITE_SPACE: &str =
    r"\t-\r \u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// Format characters that render as nothing (see `community::domain::is_invisible`).
pub const ZERO_WIDTH: &str =
    r"\u00AD\u115F\u1160\u180E\u200B-\u200F\u2060-\u2064\u3164\uFEFF\uFFA0";

/// Control characters (Unicode Cc, Rust's `char::is_control`).
pub const CONTROL: &str = r"\u0000-\u001F\u007F-\u009F";

/// Any text without NUL.
pub fn no_nul() -> String {
    r"^[^\u0000]*$".into()
}

/// Text with at least one visible character, and no NUL.
pub fn visible() -> String {
    format!(r"^[^\u0000]*[^\u0000{WHITE_SPACE}{ZERO_WIDTH}][^\u0000]*$")
}

/// A string matching `pattern`, of `min..=max` characters.
pub fn pattern(pattern: String, min: usize, max: usize) -> Object {
    string(pattern, min, max).build()
}

fn string(pattern: String, min: usize, max: usize) -> ObjectBuilder {
    Object::builder()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length((min > 0).then_some(min))
        .max_length(Some(max))
}

/// A required text field (`domain::required_text`): something visible, at most `max`
/// characters.
pub fn required(max: usize) -> Object {
    string(visible(), 1, max).build()
}

/// Free text up to `max` characters; may be empty.
pub fn optional(max: usize) -> Object {
    string(no_nul(), 0, max).build()
}

/// `schema` with a description (a query parameter's schema_with drops the field's doc
/// comment, so the schema carries it).
pub fn described(mut schema: Object, description: impl Into<String>) -> Object {
    schema.description = Some(description.into());
    schema
}

/// Any 64-bit integer (an id or cursor, where one that names nothing finds nothing).
pub fn id() -> Object {
    integer(i64::MIN, i64::MAX)
}

/// `schema`, or null.
pub fn or_null(mut schema: Object) -> Object {
    if let SchemaType::Type(kind) = schema.schema_type {
        schema.schema_type = SchemaType::from_iter([kind, Type::Null]);
    }
    if let Some(values) = &mut schema.enum_values {
        values.push(serde_json::Value::Null);
    }
    schema
}

/// Like [`optional`], and `null` too.
pub fn nullable(max: usize) -> Object {
    string(no_nul(), 0, max)
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .build()
}

/// One of `keys`; `""` or null for none.
pub fn optional_key(keys: Vec<String>) -> Object {
    let mut values: Vec<serde_json::Value> = keys.into_iter().map(Into::into).collect();
    values.push("".into());
    values.push(serde_json::Value::Null);
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .build()
}

/// One of `values` (which may include null).
pub fn nullable_enum(values: Vec<serde_json::Value>) -> Object {
    Object::builder()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .build()
}

/// A list of at most `max` `items`.
pub fn list(items: Object, max: usize) -> Array {
    Array::builder().items(items).max_items(Some(max)).build()
}

/// One of `keys`.
pub fn key(keys: Vec<String>) -> Object {
    Object::builder()
        .schema_type(Type::String)
        .enum_values(Some(keys))
        .build()
}

/// An integer in `min..=max`.
pub fn integer(min: i64, max: i64) -> Object {
    Object::builder()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
        .build()
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    fn class(set: &str) -> Regex {
        Regex::new(&format!("^[{set}]$")).unwrap()
    }

    /// Asserts that the class `set` holds exactly the characters `rust` says yes to.
    fn assert_class_is(set: &str, rust: fn(char) -> bool) {
        // Arrange
        let class = class(set);

        // Act / Assert
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                class.is_match(c.encode_utf8(&mut [0; 4])),
                rust(c),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn white_space_is_exactly_what_rust_trims() {
        assert_class_is(WHITE_SPACE, char::is_whitespace);
    }

    #[test]
    fn control_is_exactly_what_rust_calls_control() {
        assert_class_is(CONTROL, char::is_control);
    }

    #[test]
    fn a_single_character_is_visible_exactly_when_the_parser_says_so() {
        // Arrange
        let visible = Regex::new(&visible()).unwrap();

        // Act / Assert
        for c in (1..=0x10FFFF).filter_map(char::from_u32) {
            let text = c.to_string();
            let parsed = crate::community::domain::required_text(Some(&text), 10).is_ok();
            assert_eq!(visible.is_match(&text), parsed, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn the_visible_pattern_needs_one_visible_character_and_no_nul() {
        // Arrange
        let visible = Regex::new(&visible()).unwrap();

        // Act / Assert
        for good in [" a ", "\u{200B}x\u{FEFF}", "야구", "a\nb"] {
            assert!(visible.is_match(good), "{good:?}");
        }
        for bad in ["", " \t\n", "\u{200B}\u{3164}", "a\u{0}"] {
            assert!(!visible.is_match(bad), "{bad:?}");
        }
    }

    /// Whether `text` is valid by `schema`'s pattern and lengths, as a JSON Schema validator
    /// would judge it.
    fn valid(schema: &Object, pattern: &Regex, text: &str) -> bool {
        let len = text.chars().count();
        pattern.is_match(text)
            && schema.min_length.is_none_or(|min| len >= min)
            && schema.max_length.is_none_or(|max| len <= max)
    }

    /// Every character up to U+3200 and the notable ones above, alone and in the given
    /// contexts (`{}` stands for the character): the schema and the parser must agree on all.
    fn agree(schema: Object, parse: impl Fn(&str) -> bool, contexts: &[&str]) {
        let notable = [0xAC00, 0xD7A3, 0xFEFF, 0xFFA0, 0xFFFD, 0x1F600, 0x10FFFF];
        let pattern = Regex::new(schema.pattern.as_deref().unwrap()).unwrap();
        let chars = (0..0x3200).chain(notable).filter_map(char::from_u32);
        for c in chars {
            for context in contexts.iter().chain(&["{}"]) {
                let text = context.replace("{}", &c.to_string());
                // ApiJson refuses a NUL in any string before a parser sees it.
                let accepted = !text.contains('\0') && parse(&text);
                assert_eq!(
                    valid(&schema, &pattern, &text),
                    accepted,
                    "{text:?} (U+{:04X})",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn the_username_schema_agrees_with_the_parser() {
        use crate::community::domain::{parse_username, username_schema};
        let long = "a".repeat(39);
        agree(
            username_schema(),
            |text| parse_username(Some(text)).is_ok(),
            &["a{}b", " {}a ", "{}\u{200B}", &format!("{long}{{}}"), "{}/"],
        );
    }

    #[test]
    fn the_email_schema_agrees_with_the_parser() {
        use crate::community::domain::{email_schema, parse_email};
        agree(
            email_schema(),
            |text| parse_email(Some(text)).is_ok(),
            &["a{}@b", "a@{}", "{}@b", " a@b{}", "{}a@b ", "a@b{}c"],
        );
    }

    #[test]
    fn the_password_schema_agrees_with_the_parser() {
        use crate::community::domain::{parse_password, password_schema};
        agree(
            password_schema(),
            |text| parse_password(Some(text)).is_ok(),
            &["1234567{}", "{}", " {}      "],
        );
    }

    #[test]
    fn the_tag_schema_agrees_with_the_parser() {
        use crate::community::domain::{parse_tags, tags_schema};
        let utoipa::openapi::schema::ArrayItems::RefOrSchema(item) = tags_schema().items else {
            panic!("tags have an item schema");
        };
        let utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(tag)) = *item else {
            panic!("a tag is an object schema");
        };
        agree(
            tag,
            |text| parse_tags(&[text.to_string()]).is_ok(),
            &[" {} ", "a{}", &"b".repeat(39)],
        );
    }

    #[test]
    fn the_hashtag_pattern_agrees_with_the_parser() {
        use crate::catalog::domain::{hashtag_pattern, Hashtag};
        let schema = pattern(hashtag_pattern(false), 0, usize::MAX);
        agree(
            schema,
            |text| Hashtag::parse(text).is_ok(),
            &["#{}", " #a{}", "{}#", &"b".repeat(29)],
        );
    }

    #[test]
    fn the_chat_message_schema_agrees_with_the_parser() {
        use crate::chat::domain::{message_schema, MessageBody};
        agree(
            message_schema(),
            |text| MessageBody::parse(Some(text)).is_ok(),
            &["a{}b", " {} ", "{}\n", "\t{}"],
        );
    }
}
