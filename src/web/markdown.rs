//! Article bodies are Markdown (as in RealWorld); the web UI renders them to HTML and then
//! keeps only a safe list of tags and attributes (ammonia): no scripts, no event handlers, no
//! `javascript:` links, whatever the author wrote.

/// The body as sanitised HTML, ready to be put into a page unescaped.
pub fn to_safe_html(markdown: &str) -> String {
    let mut options = pulldown_cmark::Options::empty();
    options.insert(pulldown_cmark::Options::ENABLE_TABLES);
    options.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    let parser = pulldown_cmark::Parser::new_ext(markdown, options);
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow ugc"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::to_safe_html;

    #[test]
    fn markdown_becomes_html() {
        let html = to_safe_html("# 잠실\n\n**직관** 후기 [link](https://kbo.example)");
        assert!(html.contains("<h1>잠실</h1>"), "{html}");
        assert!(html.contains("<strong>직관</strong>"), "{html}");
        assert!(html.contains(r#"href="https://kbo.example""#), "{html}");
    }

    #[test]
    fn scripts_handlers_and_javascript_links_are_removed() {
        let html = to_safe_html(
            "<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[click](javascript:alert(3))",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
