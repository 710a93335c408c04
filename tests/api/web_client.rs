//! A minimal browser for the web UI tests: keeps cookies (by name, as `Set-Cookie` says),
//! does not follow redirects (tests look at them), reads the page's CSRF token, and posts
//! urlencoded forms.

use std::collections::BTreeMap;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::helpers::TestApp;

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub html: String,
}

impl Page {
    /// The page's CSRF token (its `csrf-token` meta element).
    pub fn csrf(&self) -> String {
        self.html
            .split(r#"<meta name="csrf-token" content=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page has a csrf-token meta element")
            .to_string()
    }

    pub fn location(&self) -> &str {
        self.headers["location"].to_str().unwrap()
    }

    /// The `Set-Cookie` header for `name`, if the response set (or removed) it.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_string)
    }
}

pub struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
    /// Sent as `Accept-Language` when set.
    pub accept_language: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            accept_language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header("cookie", self.cookie_header());
        if let Some(lang) = &self.accept_language {
            request = request.header("accept-language", lang);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let pair = value.split(';').next().unwrap();
            let (name, cookie) = pair.split_once('=').unwrap();
            if value.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), cookie.to_string());
            }
        }
        let html = response.text().await.expect("body");
        Page {
            status,
            headers,
            html,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(self.app.url(path));
        self.send(request).await
    }

    /// Posts `fields` as a urlencoded form (add `("csrf", token)` yourself).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.client.post(self.app.url(path)).form(fields);
        self.send(request).await
    }

    /// Posts with headers only (as page scripts do), no body.
    pub async fn post_with_header(&mut self, path: &str, header: (&str, &str)) -> Page {
        let request = self
            .client
            .post(self.app.url(path))
            .header(header.0, header.1);
        self.send(request).await
    }

    /// Signs up through the form (password `password123`), leaving the session cookie set.
    pub async fn register(&mut self, name: &str) -> Page {
        let csrf = self.get("/register").await.csrf();
        let email = format!("{name}@example.com");
        let page = self
            .post(
                "/register",
                &[
                    ("csrf", &csrf),
                    ("username", name),
                    ("email", &email),
                    ("password", "password123"),
                    ("team", "doosan"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        page
    }

    /// Logs in through the form.
    pub async fn login(&mut self, email: &str, password: &str) -> Page {
        let csrf = self.get("/login").await.csrf();
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }
}
