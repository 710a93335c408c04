//! Domain types of the community, parsed from raw input at the edge. Once a value is a
//! `Username` or a `Title`, the code after it can trust it: it is trimmed, non-empty and
//! within its documented limit.
//!
//! Limits (also in the README): username 1-40 characters (no whitespace or `/`), email up to
//! 254, password 8-128, bio 1,000, image URL 2,000, title 200, description 500, body 65,536,
//! up to 10 tags of up to 40 characters each, comment 10,000 characters.

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

pub const MAX_USERNAME: usize = 40;
pub const MAX_EMAIL: usize = 254;
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 128;
pub const MAX_BIO: usize = 1_000;
pub const MAX_IMAGE_URL: usize = 2_000;
pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 500;
pub const MAX_BODY: usize = 65_536;
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG: usize = 40;
pub const MAX_COMMENT: usize = 10_000;
/// Largest page a list endpoint returns; larger `limit`s are refused with 422.
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 20;

/// Collects field errors so one response can report every invalid field at once.
#[derive(Default)]
pub struct Problems(BTreeMap<String, Vec<String>>);

impl Problems {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    /// Records the error of `result` under `field`, returning the value if there was one.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|msg| self.add(field, msg)).ok()
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(AppError::Unprocessable(self.0))
        }
    }
}

/// A required text field: at most `max` characters as sent, trimmed, with something
/// visible in it.
pub fn required_text(value: Option<&str>, max: usize) -> Result<String, String> {
    let value = bounded_text(value.unwrap_or(""), max)?;
    let value = value.trim();
    if value.chars().all(is_invisible) {
        return Err("can't be empty".into());
    }
    Ok(value.to_string())
}

/// White space, and the format characters that render as nothing (zero-width space and
/// joiners, word joiner, byte-order mark, soft hyphen, Hangul fillers): a title of only these
/// looks empty on every page, so it counts as empty. `str::trim` keeps them, as they are not
/// Unicode white space. (`openapi::text::ZERO_WIDTH` is the same set, for the document.)
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{FEFF}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{FFA0}'
        )
}

/// Checks a field's length limit, counted in characters as sent (before any trimming, as
/// the OpenAPI document's `maxLength` counts).
pub fn bounded_text(value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        return Err(format!("is too long (maximum is {max} characters)"));
    }
    Ok(value.to_string())
}

pub fn parse_username(value: Option<&str>) -> Result<String, String> {
    let name = required_text(value, MAX_USERNAME)?;
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c.is_control())
    {
        return Err("may not contain spaces, slashes or control characters".into());
    }
    Ok(name)
}

/// The document's schema of [`parse_username`]: trimmed, then 1-40 characters with
/// something visible and no white space, slash or control character.
pub fn username_schema() -> utoipa::openapi::schema::Object {
    use crate::openapi::text::{CONTROL, WHITE_SPACE, ZERO_WIDTH};
    let inner = format!("[^{WHITE_SPACE}/{CONTROL}]");
    let pattern = format!(
        "^[{WHITE_SPACE}]*{inner}*[^{WHITE_SPACE}{ZERO_WIDTH}/{CONTROL}]{inner}*[{WHITE_SPACE}]*$"
    );
    crate::openapi::text::pattern(pattern, 1, MAX_USERNAME)
}

/// The document's schema of [`parse_email`]: trimmed, then something before and after the
/// first `@`, and no space.
pub fn email_schema() -> utoipa::openapi::schema::Object {
    use crate::openapi::text::WHITE_SPACE;
    let pattern = format!(
        r"^[{WHITE_SPACE}]*[^{WHITE_SPACE} @\u0000][^ @\u0000]*@[^ \u0000]*[^{WHITE_SPACE} \u0000][{WHITE_SPACE}]*$"
    );
    crate::openapi::text::pattern(pattern, 3, MAX_EMAIL)
}

/// The document's schema of [`parse_password`]: 8-128 characters, spaces included.
pub fn password_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::pattern(crate::openapi::text::no_nul(), MIN_PASSWORD, MAX_PASSWORD)
}

/// The document's schema of a page size, `1..=max`.
pub fn page_limit_schema() -> utoipa::openapi::schema::Object {
    let schema = crate::openapi::text::integer(1, MAX_PAGE);
    crate::openapi::text::described(schema, format!("Page size, 1 to {MAX_PAGE}."))
}

/// The document's schema of a page offset: not negative.
pub fn offset_schema() -> utoipa::openapi::schema::Object {
    let schema = crate::openapi::text::integer(0, i64::MAX);
    crate::openapi::text::described(schema, "How many to skip (default 0).")
}

/// The document's schema of [`parse_tags`]: at most 10 tags, each with something other than
/// white space, at most 40 characters as sent.
pub fn tags_schema() -> utoipa::openapi::schema::Array {
    use crate::openapi::text::WHITE_SPACE;
    let tag = crate::openapi::text::pattern(
        format!(r"^[^\u0000]*[^\u0000{WHITE_SPACE}][^\u0000]*$"),
        1,
        MAX_TAG,
    );
    crate::openapi::text::list(tag, MAX_TAGS)
}

/// The document's schema of a board key ([`Category::parse`]).
pub fn category_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::key(Category::ALL.iter().map(|c| c.key().to_string()).collect())
}

/// A board key, or null for the default (`free`).
pub fn nullable_category_schema() -> utoipa::openapi::schema::Object {
    let mut keys: Vec<serde_json::Value> = Category::ALL.iter().map(|c| c.key().into()).collect();
    keys.push(serde_json::Value::Null);
    crate::openapi::text::nullable_enum(keys)
}

/// Emails are compared case-insensitively, so they are stored lowercased.
pub fn parse_email(value: Option<&str>) -> Result<String, String> {
    let email = required_text(value, MAX_EMAIL)?.to_lowercase();
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !email.contains(' ') =>
        {
            Ok(email)
        }
        _ => Err("is invalid".into()),
    }
}

pub fn parse_password(value: Option<&str>) -> Result<String, String> {
    // Passwords are not trimmed: spaces are legitimate characters in them.
    let password = value.unwrap_or("");
    if password.is_empty() {
        return Err("can't be empty".into());
    }
    let len = password.chars().count();
    if len < MIN_PASSWORD {
        return Err(format!(
            "is too short (minimum is {MIN_PASSWORD} characters)"
        ));
    }
    if len > MAX_PASSWORD {
        return Err(format!(
            "is too long (maximum is {MAX_PASSWORD} characters)"
        ));
    }
    Ok(password.to_string())
}

/// `null` or `""` clears an optional profile field.
pub fn parse_optional(value: &str, max: usize) -> Result<Option<String>, String> {
    let value = bounded_text(value, max)?;
    let value = value.trim();
    Ok(if value.is_empty() {
        None
    } else {
        Some(value.to_string())
    })
}

/// The form a tag is stored and looked up in: trimmed, ASCII lowercased. The same rule as
/// review hashtags, so `LG`, `lg` and `Lg` are one tag, in a filter as in an article; other
/// scripts are left as written (Hangul has no case).
pub fn tag_key(tag: &str) -> String {
    tag.trim().to_ascii_lowercase()
}

pub fn parse_tags(tags: &[String]) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("has too many tags (maximum is {MAX_TAGS})"));
    }
    let mut parsed = Vec::with_capacity(tags.len());
    for tag in tags {
        // The limit counts the tag as sent, as the document's maxLength does.
        if tag.chars().count() > MAX_TAG {
            return Err(format!(
                "has a tag that is too long (maximum is {MAX_TAG} characters)"
            ));
        }
        let tag = tag.trim();
        if tag.is_empty() {
            return Err("can't contain empty tags".into());
        }
        parsed.push(tag_key(tag));
    }
    // Sorted and unique: clients (and the RealWorld suite) expect a stable alphabetical order.
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// The board an article is posted on. Keys are stable API values; `ko` is the Korean label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Free,
    Question,
    Baseball,
    Food,
    Meetup,
    Other,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Free,
        Category::Question,
        Category::Baseball,
        Category::Food,
        Category::Meetup,
        Category::Other,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Category::Free => "free",
            Category::Question => "question",
            Category::Baseball => "baseball",
            Category::Food => "food",
            Category::Meetup => "meetup",
            Category::Other => "other",
        }
    }

    pub fn label_ko(self) -> &'static str {
        match self {
            Category::Free => "잡담",
            Category::Question => "질문",
            Category::Baseball => "야구",
            Category::Food => "음식",
            Category::Meetup => "직관모집",
            Category::Other => "기타",
        }
    }

    pub fn parse(key: &str) -> Result<Category, String> {
        Category::ALL
            .into_iter()
            .find(|c| c.key() == key)
            .ok_or_else(|| {
                let keys: Vec<_> = Category::ALL.iter().map(|c| c.key()).collect();
                format!("must be one of {}", keys.join(", "))
            })
    }
}

/// A readable, unique slug: the title lowercased, with every run of characters that are not
/// letters or digits (in any script, so Hangul stays) turned into one `-`, cut to 60
/// characters, plus a random 6-character suffix. The suffix makes equal titles unique without
/// a read-then-write race, and keeps the slug stable for the life of the title.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len() + 7);
    let mut pending_dash = false;
    for ch in title.chars().flat_map(char::to_lowercase) {
        if ch.is_alphanumeric() {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(ch);
        } else {
            pending_dash = true;
        }
        if slug.chars().count() >= 60 {
            break;
        }
    }
    if slug.is_empty() {
        slug.push_str("article");
    }
    slug.push('-');
    slug.push_str(&random_suffix());
    slug
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern, so user input is matched
/// literally.
pub fn like_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for ch in query.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_titles_keep_their_hangul_in_the_slug() {
        let slug = slugify("잠실 직관 같이 가요");
        assert!(slug.starts_with("잠실-직관-같이-가요-"), "{slug}");
        assert_eq!(
            slug.chars().count(),
            "잠실-직관-같이-가요-".chars().count() + 6
        );
    }

    #[test]
    fn text_of_only_invisible_characters_is_empty_but_visible_text_keeps_them() {
        assert_eq!(
            required_text(Some("\u{200B} \u{FEFF}\u{00AD}"), 10),
            Err("can't be empty".to_string())
        );
        // A joiner inside an emoji sequence is part of visible text and stays.
        assert_eq!(
            required_text(Some(" 👨\u{200D}👩 "), 10),
            Ok("👨\u{200D}👩".to_string())
        );
    }

    #[test]
    fn equal_titles_get_different_slugs() {
        assert_ne!(slugify("How to train"), slugify("How to train"));
    }

    #[test]
    fn punctuation_only_titles_still_get_a_slug() {
        assert!(slugify("!!!").starts_with("article-"));
    }

    #[test]
    fn tags_are_lowercased_so_that_case_variants_are_one_tag() {
        let tags =
            parse_tags(&["LG".into(), "lg".into(), "Twins".into(), "트윈스".into()]).unwrap();
        assert_eq!(tags, vec!["lg", "twins", "트윈스"]);
    }

    #[test]
    fn tags_are_sorted_and_deduplicated() {
        let tags = parse_tags(&["training".into(), "dragons".into(), "dragons".into()]).unwrap();
        assert_eq!(tags, vec!["dragons", "training"]);
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }

    #[test]
    fn emails_need_an_at_sign_and_are_lowercased() {
        assert_eq!(
            parse_email(Some(" Jake@Example.com ")).unwrap(),
            "jake@example.com"
        );
        assert!(parse_email(Some("jake")).is_err());
        assert!(parse_email(Some("")).is_err());
    }

    #[test]
    fn usernames_may_not_contain_spaces() {
        assert!(parse_username(Some("jake jacob")).is_err());
        assert!(parse_username(Some(&"x".repeat(41))).is_err());
        assert_eq!(parse_username(Some("야구팬")).unwrap(), "야구팬");
    }
}
