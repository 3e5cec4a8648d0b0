//! One answer of the site, kept whole enough to judge: status, every header (a header sent
//! twice stays twice), and at most 1 MiB of body.

use std::time::Duration;

use futures::StreamExt as _;
use vigia_core::{Error, ErrorKind, Result, error_chain};

use crate::http::{clip, shown};

const MAX_BODY: usize = 1 << 20;
/// Each request of a smoke check (the checks' budget holds several).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

#[derive(Debug, Clone)]
pub(super) struct Page {
    /// The URL asked, as shown (no user or password).
    pub url: String,
    pub status: u16,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    /// `GET url`, redirects not followed, under [`REQUEST_TIMEOUT`].
    pub async fn get(client: &reqwest::Client, url: &str) -> Result<Self> {
        Self::read(client.get(url).timeout(REQUEST_TIMEOUT), url).await
    }

    /// `request` sent and read; `url` is what it asks, for messages.
    pub async fn read(request: reqwest::RequestBuilder, url: &str) -> Result<Self> {
        let shown = shown(url);
        let response = request.send().await.map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!("no answer from {shown}: {}", error_chain(&e.without_url())),
            )
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                Error::new(
                    ErrorKind::Network,
                    format!(
                        "{shown}: the answer broke off: {}",
                        error_chain(&e.without_url())
                    ),
                )
            })?;
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
            if body.len() == MAX_BODY {
                break;
            }
        }
        Ok(Self {
            url: shown,
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    /// Every value of the header `name` (lower case).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).next()
    }

    /// `Content-Type` without its parameters, in lower case (clipped: it is shown).
    pub fn media_type(&self) -> String {
        clip(
            self.header("content-type")
                .and_then(|v| v.split(';').next())
                .unwrap_or_default(),
        )
        .to_ascii_lowercase()
    }

    /// A 200 HTML page (what a login page must be before its headers mean anything).
    pub fn is_page(&self) -> bool {
        self.status == 200 && self.is_html()
    }

    pub fn is_html(&self) -> bool {
        self.media_type() == "text/html"
    }
}
