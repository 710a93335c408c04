//! Pictures in articles: an optional cover (`coverImage`, an upload id) and the uploads the
//! body embeds, both kept in `article_uploads` (role `cover` or `body`).
//!
//! The body's pictures are not sent as a separate list: they are found in the body itself,
//! as references to `/media/<upload id>/…` (the URLs `GET /api/uploads/{id}` gives, relative
//! or absolute, in Markdown or not). The body is what readers see, so deriving the list from
//! it means the two can never disagree; a client embeds a picture simply by writing its URL.
//!
//! Every upload an article uses must exist, belong to the article's author and not have
//! failed; otherwise the write is refused with 422 naming the field (`coverImage` or `body`).
//! A pending upload is accepted: it is usually seconds from ready, and its URL already shows
//! the original.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::domain::Problems;
use crate::db::Db;
use crate::error::Result;
use crate::media::{files, store as uploads, UploadId};

/// Most uploads one body may embed.
pub const MAX_BODY_IMAGES: usize = 50;

/// An upload as an article shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", from = "StoredImage")]
pub struct ArticleImage {
    pub id: String,
    /// The display image; the original while the upload is still being processed.
    pub url: Option<String>,
    /// Null until the upload is processed.
    pub thumbnail_url: Option<String>,
}

/// An upload as the article queries read it: the URLs are made here, in one place, from the
/// id and status (see `store::articles`).
#[derive(Debug, Deserialize)]
pub struct StoredImage {
    pub id: String,
    pub status: String,
}

impl From<StoredImage> for ArticleImage {
    fn from(stored: StoredImage) -> Self {
        let (url, thumbnail_url) = files::image_urls(&stored.id, &stored.status);
        ArticleImage {
            id: stored.id,
            url,
            thumbnail_url,
        }
    }
}

/// The uploads an article write sets; `None` leaves that part as it is.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImageChanges {
    /// `Some(None)` removes the cover.
    pub cover: Option<Option<UploadId>>,
    /// The uploads the new body embeds, in order of first appearance.
    pub body: Option<Vec<UploadId>>,
}

impl ImageChanges {
    /// True when applying these to a new article links no upload.
    pub fn is_empty(&self) -> bool {
        self.cover.as_ref().is_none_or(|c| c.is_none())
            && self.body.as_ref().is_none_or(|b| b.is_empty())
    }
}

/// The uploads `body` refers to (`/media/<uuid>/…`), each once, in order of first appearance.
pub fn embedded_uploads(body: &str) -> Vec<UploadId> {
    const MARK: &str = "/media/";
    const UUID_LEN: usize = 36;
    let mut found: Vec<UploadId> = Vec::new();
    for (at, _) in body.match_indices(MARK) {
        let rest = &body[at + MARK.len()..];
        let Some(candidate) = rest.get(..UUID_LEN) else {
            continue;
        };
        if !rest[UUID_LEN..].starts_with('/') {
            continue;
        }
        if let Ok(id) = UploadId::parse(candidate) {
            if !found.contains(&id) {
                found.push(id);
            }
        }
    }
    found
}

/// Parses the cover (`None`: not sent; `Some(None)`: null) and the uploads embedded in `body`
/// (`None`: body not sent or already invalid), and checks that each is an upload of
/// `author_id` that did not fail. Problems are recorded under `coverImage` and `body`.
pub async fn check(
    db: &Db,
    author_id: i64,
    problems: &mut Problems,
    cover: Option<Option<&str>>,
    body: Option<&str>,
) -> Result<ImageChanges> {
    let mut changes = ImageChanges {
        cover: match cover {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => problems
                .check("coverImage", UploadId::parse(text))
                .map(Some),
        },
        body: body.map(embedded_uploads),
    };
    if let Some(ids) = &changes.body {
        if ids.len() > MAX_BODY_IMAGES {
            problems.add(
                "body",
                format!("embeds {} uploads; at most {MAX_BODY_IMAGES}", ids.len()),
            );
            changes.body = None;
        }
    }
    let cover = changes.cover.iter().flatten();
    let body = changes.body.iter().flatten();
    let wanted: Vec<String> = cover.chain(body).map(|id| id.as_str().into()).collect();
    let found: HashMap<String, (i64, String)> = uploads::owners(db, &wanted)
        .await?
        .into_iter()
        .map(|(id, owner, status)| (id, (owner, status)))
        .collect();
    let refuse = |id: &UploadId| -> Option<String> {
        match found.get(id.as_str()) {
            None => Some(format!("upload {} does not exist", id.as_str())),
            Some((owner, _)) if *owner != author_id => {
                Some(format!("upload {} is not yours", id.as_str()))
            }
            Some((_, status)) if status == "failed" => Some(format!(
                "upload {} failed to process; upload the picture again",
                id.as_str()
            )),
            Some(_) => None,
        }
    };
    for id in changes.cover.iter().flatten() {
        if let Some(problem) = refuse(id) {
            problems.add("coverImage", problem);
        }
    }
    for id in changes.body.iter().flatten() {
        if let Some(problem) = refuse(id) {
            problems.add("body", problem);
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0190f3c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e";
    const B: &str = "0190f3c4-7b1e-7c3a-9d2e-4f5a6b7c8d9f";

    #[test]
    fn embedded_uploads_are_found_once_each_in_order_of_first_appearance() {
        let body = format!(
            "![a](/media/{B}/display.jpg) text ![b](https://fans.example/media/{A}/thumb.webp)\n\
             again /media/{B}/display.jpg, and /media/not-a-uuid/display.jpg, /media/{A}"
        );

        let found = embedded_uploads(&body);

        let ids: Vec<&str> = found.iter().map(UploadId::as_str).collect();
        assert_eq!(ids, vec![B, A]);
    }

    #[test]
    fn upload_ids_are_normalised_to_the_form_the_server_issues() {
        let id = UploadId::parse(&A.to_uppercase()).unwrap();
        assert_eq!(id.as_str(), A);
        assert!(UploadId::parse("cover.jpg").is_err());
    }

    #[test]
    fn a_stored_upload_shows_the_urls_of_its_status() {
        let image = |status: &str| {
            ArticleImage::from(StoredImage {
                id: A.into(),
                status: status.into(),
            })
        };
        assert_eq!(
            image("ready").url.as_deref(),
            Some(format!("/media/{A}/display.jpg").as_str())
        );
        assert_eq!(
            image("ready").thumbnail_url.as_deref(),
            Some(format!("/media/{A}/thumb.jpg").as_str())
        );
        assert_eq!(
            image("pending").url.as_deref(),
            Some(format!("/media/{A}/original").as_str())
        );
        assert_eq!(image("pending").thumbnail_url, None);
    }
}
