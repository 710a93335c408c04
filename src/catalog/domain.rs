//! Domain types of the catalogue, parsed from raw input at the edge. Once a value is a
//! [`Won`], a [`Stock`], a [`Rating`] or a [`Hashtag`], the code after it can trust it.
//!
//! Parsers return `Result<_, String>` (the message for a 422 on the caller's field name), as
//! in [`crate::community::domain`], so one response can report every invalid field at once.
//!
//! Limits (also in the README): a price is 1-1,000,000 won, stock 0-100,000 units, a rating
//! 1-5 stars; store and menu item names up to 100 characters, a store's location up to 100,
//! a review body up to 2,000; up to 10 hashtags per review, each 1-30 characters.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::community::domain::{Problems, DEFAULT_PAGE, MAX_PAGE};

/// Longest store name, in characters.
pub const MAX_STORE_NAME: usize = 100;
/// Longest store location ("A01(1층)", "3루 외야"), in characters.
pub const MAX_LOCATION: usize = 100;
/// Longest menu item name, in characters.
pub const MAX_ITEM_NAME: usize = 100;
/// Longest review body, in characters. A review may have no body: stars alone are a review.
pub const MAX_REVIEW_BODY: usize = 2_000;
/// Most hashtags on one review, counting those written in its body.
pub const MAX_HASHTAGS: usize = 10;
/// Longest hashtag, in characters, without its `#`.
pub const MAX_HASHTAG: usize = 30;
/// Most units of one menu item a store can hold in stock. Far above any stand's real stock;
/// it exists so that a typo (an extra zero or three) is refused, not stored.
pub const MAX_STOCK: i64 = 100_000;

/// An amount of Korean won: a whole number (the won has no minor unit in use), at least 1
/// and at most [`Won::MAX`]. Used for menu prices here and for order lines in the orders
/// module.
///
/// Serialises as a plain JSON integer; deserialising checks the range, so a `Won` read from
/// JSON is as trustworthy as one from [`Won::parse`]. Handlers that want the 422 to name
/// their own field take an `i64` and call [`Won::parse`] instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Won(i64);

impl Won {
    /// The smallest price: free items are not sold through the catalogue.
    pub const MIN: i64 = 1;
    /// The largest price of one item. No stand sells anything near it; like [`MAX_STOCK`],
    /// it turns a typo into a 422.
    pub const MAX: i64 = 1_000_000;

    pub fn parse(value: i64) -> Result<Won, String> {
        if (Self::MIN..=Self::MAX).contains(&value) {
            Ok(Won(value))
        } else {
            Err(format!(
                "must be a whole number of won from {} to {}",
                Self::MIN,
                Self::MAX
            ))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for Won {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        Won::parse(value)
    }
}

impl From<Won> for i64 {
    fn from(won: Won) -> i64 {
        won.0
    }
}

impl fmt::Display for Won {
    /// `5,500원`, as a Korean price tag reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        write!(f, "{grouped}원")
    }
}

/// Units of a menu item left: 0 (sold out) to [`MAX_STOCK`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stock(i64);

impl Stock {
    pub fn parse(value: i64) -> Result<Stock, String> {
        if (0..=MAX_STOCK).contains(&value) {
            Ok(Stock(value))
        } else {
            Err(format!("must be a whole number from 0 to {MAX_STOCK}"))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A review's stars: 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(i64);

impl Rating {
    pub fn parse(value: i64) -> Result<Rating, String> {
        if (1..=5).contains(&value) {
            Ok(Rating(value))
        } else {
            Err("must be a whole number of stars from 1 to 5".into())
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A hashtag, normalised so that `#맛집`, `맛집` and ` 맛집 ` are one tag and `#Beer` is
/// `beer`: one leading `#` stripped, ASCII letters lowercased, 1 to [`MAX_HASHTAG`]
/// characters, each an ASCII letter or digit, `_`, or Hangul.
///
/// Other scripts are refused rather than guessed at: lowercasing them would need Unicode
/// case folding, and a search by tag is an exact match on the stored form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hashtag(String);

impl Hashtag {
    pub fn parse(raw: &str) -> Result<Hashtag, String> {
        let raw = raw.trim();
        let tag = raw.strip_prefix('#').unwrap_or(raw);
        if tag.is_empty() {
            return Err("can't contain an empty hashtag".into());
        }
        if tag.chars().count() > MAX_HASHTAG {
            return Err(format!(
                "has a hashtag that is too long (maximum is {MAX_HASHTAG} characters)"
            ));
        }
        if !tag.chars().all(is_tag_char) {
            return Err(
                "has a hashtag with a character other than letters (a-z, Hangul), digits or _"
                    .into(),
            );
        }
        Ok(Hashtag(tag.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The document's pattern of one [`Hashtag::parse`] input: trimmed, an optional `#`, then
/// 1 to [`MAX_HASHTAG`] tag characters. With `or_empty`, white space alone (no hashtag) too.
pub fn hashtag_pattern(or_empty: bool) -> String {
    use crate::openapi::text::WHITE_SPACE;
    let tag = format!(r"#?[0-9A-Za-z_\uAC00-\uD7A3\u1100-\u11FF\u3130-\u318F]{{1,{MAX_HASHTAG}}}");
    let tag = if or_empty { format!("({tag})?") } else { tag };
    format!("^[{WHITE_SPACE}]*{tag}[{WHITE_SPACE}]*$")
}

/// The document's schema of the hashtags a review lists: at most [`MAX_HASHTAGS`] (those in
/// the body count too).
pub fn hashtags_schema() -> utoipa::openapi::schema::Array {
    let tag = utoipa::openapi::schema::Object::builder()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(hashtag_pattern(false)))
        .build();
    crate::openapi::text::list(tag, MAX_HASHTAGS)
}

/// The document's schema of a price in won.
pub fn price_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::integer(Won::MIN, Won::MAX)
}

/// The document's schema of a stock count.
pub fn stock_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::integer(0, MAX_STOCK)
}

/// The document's schema of a review's stars.
pub fn rating_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::integer(1, 5)
}

fn is_tag_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || is_hangul(ch)
}

fn is_hangul(ch: char) -> bool {
    matches!(ch,
        '\u{AC00}'..='\u{D7A3}'   // syllables: 가-힣
        | '\u{1100}'..='\u{11FF}' // jamo
        | '\u{3130}'..='\u{318F}' // compatibility jamo: ㅋㅋ
    )
}

/// The hashtags of a review: those given explicitly (each must parse, or the whole list is
/// refused) and those written in the body as `#tag` (a `#` at the start or after
/// whitespace, then tag characters; a word that is not a valid tag is just prose and is
/// skipped). Deduplicated and sorted; more than [`MAX_HASHTAGS`] in all is refused.
pub fn review_hashtags(explicit: &[String], body: &str) -> Result<Vec<Hashtag>, String> {
    // The list as sent counts too (before duplicates merge), as the document's maxItems does.
    if explicit.len() > MAX_HASHTAGS {
        return Err(format!("has too many hashtags (maximum is {MAX_HASHTAGS})"));
    }
    let mut tags = explicit
        .iter()
        .map(|raw| Hashtag::parse(raw))
        .collect::<Result<Vec<_>, _>>()?;
    tags.extend(hashtags_in(body));
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_HASHTAGS {
        return Err(format!(
            "has too many hashtags (maximum is {MAX_HASHTAGS}, counting those written in the body)"
        ));
    }
    Ok(tags)
}

/// `#tag`s written in free text; see [`review_hashtags`].
fn hashtags_in(text: &str) -> Vec<Hashtag> {
    hashtag_spans(text)
        .into_iter()
        .filter_map(|span| match span {
            Span::Tag { tag, .. } => Some(tag),
            Span::Text(_) => None,
        })
        .collect()
}

/// A piece of free text: prose, or a `#tag` as written with the tag it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span<'a> {
    Text(&'a str),
    Tag { written: &'a str, tag: Hashtag },
}

/// Splits text into prose and the `#tag`s [`review_hashtags`] would collect from it, in
/// order, so a page can show each tag as a link; joined, the spans are the text again.
pub fn hashtag_spans(text: &str) -> Vec<Span<'_>> {
    let mut spans = Vec::new();
    let mut prose_from = 0;
    let mut previous = None::<char>;
    let mut chars = text.char_indices().peekable();
    while let Some((start, ch)) = chars.next() {
        let at_word_start = previous.is_none_or(char::is_whitespace);
        previous = Some(ch);
        if ch != '#' || !at_word_start {
            continue;
        }
        let mut end = start + ch.len_utf8();
        while let Some(&(i, next)) = chars.peek() {
            if !is_tag_char(next) {
                break;
            }
            end = i + next.len_utf8();
            previous = Some(next);
            chars.next();
        }
        if let Ok(tag) = Hashtag::parse(&text[start..end]) {
            if prose_from < start {
                spans.push(Span::Text(&text[prose_from..start]));
            }
            spans.push(Span::Tag {
                written: &text[start..end],
                tag,
            });
            prose_from = end;
        }
    }
    if prose_from < text.len() {
        spans.push(Span::Text(&text[prose_from..]));
    }
    spans
}

/// A page of a list: `limit` 1-[`MAX_PAGE`] (default [`DEFAULT_PAGE`]), `offset` ≥ 0, as
/// for articles.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// Records out-of-range values in `problems` (under `limit` and `offset`).
    pub fn parse(problems: &mut Problems, limit: Option<i64>, offset: Option<i64>) -> Page {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        let offset = offset.unwrap_or(0);
        if !(1..=MAX_PAGE).contains(&limit) {
            problems.add("limit", format!("must be between 1 and {MAX_PAGE}"));
        }
        if offset < 0 {
            problems.add("offset", "must not be negative");
        }
        Page { limit, offset }
    }
}

/// A coordinate in degrees, within `-bound..=bound` (90 for latitude, 180 for longitude).
pub fn parse_degrees(value: f64, bound: f64) -> Result<f64, String> {
    if value.is_finite() && (-bound..=bound).contains(&value) {
        Ok(value)
    } else {
        Err(format!("must be between -{bound} and {bound} degrees"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_outside_one_won_to_a_million_are_refused() {
        assert!(Won::parse(0).is_err());
        assert!(Won::parse(-500).is_err());
        assert!(Won::parse(1_000_001).is_err());
        assert_eq!(Won::parse(1).unwrap().get(), 1);
        assert_eq!(Won::parse(1_000_000).unwrap().get(), 1_000_000);
    }

    #[test]
    fn won_reads_and_writes_as_a_plain_json_integer_and_checks_its_range() {
        let won: Won = serde_json::from_str("5500").unwrap();
        assert_eq!(serde_json::to_string(&won).unwrap(), "5500");
        assert!(serde_json::from_str::<Won>("0").is_err());
    }

    #[test]
    fn won_prints_like_a_korean_price_tag() {
        assert_eq!(Won::parse(5_500).unwrap().to_string(), "5,500원");
        assert_eq!(Won::parse(1_000_000).unwrap().to_string(), "1,000,000원");
        assert_eq!(Won::parse(500).unwrap().to_string(), "500원");
    }

    #[test]
    fn stock_may_be_zero_but_not_negative_or_absurd() {
        assert_eq!(Stock::parse(0).unwrap().get(), 0);
        assert!(Stock::parse(-1).is_err());
        assert!(Stock::parse(MAX_STOCK + 1).is_err());
    }

    #[test]
    fn ratings_are_one_to_five_stars() {
        assert!(Rating::parse(0).is_err());
        assert!(Rating::parse(6).is_err());
        assert_eq!(Rating::parse(5).unwrap().get(), 5);
    }

    #[test]
    fn hashtags_lose_their_hash_and_ascii_capitals_but_keep_hangul() {
        assert_eq!(Hashtag::parse("#맛집").unwrap().as_str(), "맛집");
        assert_eq!(Hashtag::parse(" Beer_2 ").unwrap().as_str(), "beer_2");
        assert_eq!(Hashtag::parse("#치맥ㅋㅋ").unwrap().as_str(), "치맥ㅋㅋ");
    }

    #[test]
    fn hashtags_with_spaces_punctuation_or_too_many_characters_are_refused() {
        assert!(Hashtag::parse("#").is_err());
        assert!(Hashtag::parse("two words").is_err());
        assert!(Hashtag::parse("a-b").is_err());
        assert!(Hashtag::parse("##double").is_err());
        assert!(Hashtag::parse(&"가".repeat(MAX_HASHTAG + 1)).is_err());
        assert!(Hashtag::parse(&"가".repeat(MAX_HASHTAG)).is_ok());
    }

    #[test]
    fn hashtags_written_in_the_body_are_collected_with_the_given_ones() {
        let tags = review_hashtags(
            &["#가성비".into()],
            "#치맥 최고! 줄이 길어요 #Long_Line, 그래도 #가성비 좋음. not#atag http://x/#frag",
        )
        .unwrap();
        let tags: Vec<&str> = tags.iter().map(Hashtag::as_str).collect();
        assert_eq!(tags, vec!["long_line", "가성비", "치맥"]);
    }

    #[test]
    fn a_bad_given_hashtag_is_refused_but_a_bad_one_in_the_body_is_prose() {
        assert!(review_hashtags(&["no spaces".into()], "").is_err());
        let tags = review_hashtags(&[], &format!("# alone, #{}", "x".repeat(40))).unwrap();
        assert!(tags.is_empty());
    }

    #[test]
    fn hashtag_spans_mark_the_tags_and_join_back_into_the_text() {
        let text = "치킨 #맛집 a#no # alone #Beer!";
        let spans = hashtag_spans(text);
        let tags: Vec<&str> = spans
            .iter()
            .filter_map(|s| match s {
                Span::Tag { tag, .. } => Some(tag.as_str()),
                Span::Text(_) => None,
            })
            .collect();
        assert_eq!(tags, ["맛집", "beer"]);
        let joined: String = spans
            .iter()
            .map(|s| match s {
                Span::Text(t) => *t,
                Span::Tag { written, .. } => *written,
            })
            .collect();
        assert_eq!(joined, text);
    }

    #[test]
    fn more_than_ten_hashtags_in_all_are_refused() {
        let given: Vec<String> = (0..6).map(|i| format!("tag{i}")).collect();
        let body = "#a #b #c #d #e";
        assert!(review_hashtags(&given, body).is_err());
        assert_eq!(review_hashtags(&given, "#a #b #c #d").unwrap().len(), 10);
    }

    #[test]
    fn coordinates_must_be_on_the_globe() {
        assert!(parse_degrees(91.0, 90.0).is_err());
        assert!(parse_degrees(f64::NAN, 90.0).is_err());
        assert_eq!(parse_degrees(37.5, 90.0).unwrap(), 37.5);
    }
}
