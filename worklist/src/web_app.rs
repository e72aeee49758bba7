//! The web application (`viewer/`, built by Vite into `viewer/dist`) served
//! at `/`: its hashed assets cached for a year, `index.html` revalidated on
//! every load so a new build reaches everyone at once, every path that is
//! not the API answered with `index.html` for the application's own
//! router, and a Content-Security-Policy that lets only the centre's own
//! scripts run: patient text that slipped into HTML could not execute.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

/// Scripts from the centre only (`wasm-unsafe-eval` for the image codecs'
/// WebAssembly), no inline script, no style sheets but the centre's, no
/// plugins, no framing, connections to the centre alone. Style attributes
/// are allowed (`style-src-attr`): Cornerstone sets one on each measurement
/// label, and a style attribute cannot run script.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
     worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The built application, or why there is none.
#[derive(Clone)]
pub struct WebApp {
    /// Any path: its file, else `index.html` for the application's router.
    pages: Option<ServeDir<ServeFile>>,
    /// `/assets/`: hashed files only; a name that is not there is 404, never
    /// `index.html` under a year-long cache.
    assets: ServeDir,
    dir: PathBuf,
}

impl WebApp {
    /// Serves `dir` (a Vite build with `index.html` at its root). A missing
    /// build is not fatal: the API still works, and `/` says how to build.
    pub fn new(dir: &Path) -> WebApp {
        let index = dir.join("index.html");
        let pages = index.is_file().then(|| ServeDir::new(dir).fallback(ServeFile::new(index)));
        WebApp { pages, assets: ServeDir::new(dir), dir: dir.to_owned() }
    }

    /// Why the application cannot be served, when it cannot.
    pub fn missing(&self) -> Option<String> {
        self.pages.is_none().then(|| {
            format!(
                "the web application is not built: {} has no index.html; run `npm ci && npm run build --workspace viewer` \
                 in the source tree, or set worklist.web_app to a built copy",
                self.dir.display()
            )
        })
    }

    /// Answers a GET or HEAD outside the API with the application's file.
    pub async fn serve(&self, mut request: Request) -> Response {
        let Some(pages) = &self.pages else {
            let reason = self.missing().unwrap_or_default();
            return (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], reason).into_response();
        };
        let asset = request.uri().path().starts_with("/assets/");
        // No file name is longer than 255 bytes, so such a segment names no
        // file; asked of the file system, it failed as ENAMETOOLONG: a 500.
        if request.uri().path().split('/').any(|segment| segment.len() > 255) {
            if asset {
                return StatusCode::NOT_FOUND.into_response();
            }
            *request.uri_mut() = axum::http::Uri::from_static("/");
        }
        let answer = if asset { self.assets.clone().oneshot(request).await } else { pages.clone().oneshot(request).await };
        let mut response = match answer {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        let cache = if asset && response.status() == StatusCode::OK { "public, max-age=31536000, immutable" } else { "no-cache" };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        response
    }
}
