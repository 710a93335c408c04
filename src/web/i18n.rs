//! The UI's two languages, Korean (the default) and English. Strings live in
//! `src/web/locales/*.yml` and are compiled in by rust-i18n; this module only picks the
//! language of a request and formats times.
//!
//! The language is a value carried by each request (in [`super::Layout`]), never
//! rust-i18n's process-wide current locale: requests in different languages run at the same
//! time. The choice is the `lang` cookie (set by `GET /lang/{code}`, the footer's links), then
//! the browser's `Accept-Language`, then Korean.

use std::borrow::Cow;

use axum::http::header::ACCEPT_LANGUAGE;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, Utc};
use chrono_tz::Asia::Seoul;

/// The cookie that remembers an explicit language choice.
pub const LANG_COOKIE: &str = "lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Ko,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    /// `ko`, `ko-KR`, `en`, `en-US`, ... (case-insensitive); other languages are not offered.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "ko" => Some(Lang::Ko),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The request's language: the `lang` cookie, else the best of `Accept-Language` we
    /// offer, else Korean.
    pub fn of_request(headers: &HeaderMap, jar: &CookieJar) -> Lang {
        if let Some(lang) = jar.get(LANG_COOKIE).and_then(|c| Lang::parse(c.value())) {
            return lang;
        }
        headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(from_accept_language)
            .unwrap_or_default()
    }

    /// The translation of `key`; a missing key shows as `ko.key` (caught by the unit test
    /// below for every key the templates use).
    pub fn t<'k>(self, key: &'k str) -> Cow<'k, str> {
        rust_i18n::t!(key, locale = self.code())
    }
}

/// The highest-weighted language of an `Accept-Language` header that we offer (RFC 9110
/// §12.5.4: `ko-KR,ko;q=0.9,en-US;q=0.8`); ties keep the header's order.
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(Lang, f32)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("");
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if let Some(lang) = Lang::parse(tag) {
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
    }
    best.map(|(lang, _)| lang)
}

/// A time as fans read it: relative while recent ("5분 전" / "5 minutes ago", up to a day),
/// then the date and time in Korea (Asia/Seoul), where every KBO game is played.
pub fn when(lang: Lang, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let code = lang.code();
    match secs {
        i64::MIN..=59 => rust_i18n::t!("time.just_now", locale = code).into_owned(),
        60..=3599 => rust_i18n::t!("time.minutes_ago", locale = code, n = secs / 60).into_owned(),
        3600..=86_399 => {
            rust_i18n::t!("time.hours_ago", locale = code, n = secs / 3600).into_owned()
        }
        _ => at
            .with_timezone(&Seoul)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
    }
}

/// The absolute Korea time, for a `<time>` element's tooltip.
pub fn korea_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Seoul)
        .format("%Y-%m-%d %H:%M KST")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn accept_language_picks_the_best_offered_language() {
        assert_eq!(from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            from_accept_language("fr;q=1, en;q=0.5, ko-KR;q=0.8"),
            Some(Lang::Ko)
        );
        assert_eq!(from_accept_language("fr, de"), None);
        assert_eq!(from_accept_language("en;q=0, ko;q=0.1"), Some(Lang::Ko));
        assert_eq!(from_accept_language("garbage;;q=x"), None);
    }

    #[test]
    fn recent_times_are_relative_and_older_ones_are_in_korea_time() {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let five_minutes_ago = now - chrono::Duration::minutes(5);
        let two_days_ago = Utc.with_ymd_and_hms(2026, 12, 2, 16, 30, 0).unwrap();

        assert_eq!(when(Lang::Ko, five_minutes_ago, now), "5분 전");
        assert_eq!(when(Lang::En, five_minutes_ago, now), "5 minutes ago");
        // 16:30 UTC is 01:30 the next day in Seoul (UTC+9).
        assert_eq!(when(Lang::Ko, two_days_ago, now), "2026-12-03 01:30");
    }

    /// Every `t("key")` in the templates and the web module's code, in both languages.
    #[test]
    fn every_key_used_is_translated_in_both_languages() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut sources = Vec::new();
        for dir in ["templates", "src/web"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).unwrap() {
                let path = entry.unwrap().path();
                if path.is_file() {
                    sources.push(std::fs::read_to_string(path).unwrap());
                }
            }
        }
        let mut keys = 0;
        for source in &sources {
            for piece in source.split("t(\"").skip(1) {
                let key = piece.split('"').next().unwrap();
                if key.is_empty() || !key.contains('.') || key.contains(' ') {
                    continue;
                }
                keys += 1;
                for lang in [Lang::Ko, Lang::En] {
                    let text = lang.t(key);
                    assert!(
                        !text.starts_with(&format!("{}.", lang.code())),
                        "{key} is missing in {}",
                        lang.code()
                    );
                }
            }
        }
        assert!(keys > 20, "only {keys} keys found: is the scan broken?");
    }
}
