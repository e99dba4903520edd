//! The web console at `/`: plain ES modules and CSS from `console/`, built into the binary so
//! that the daemon needs nothing else at run time and refers to nothing outside itself. The
//! console is a frontend like any other and speaks only GraphQL; this module only serves its
//! files, each with a strict Content-Security-Policy and an ETag, gzip-encoded to the
//! browsers that accept it.

use std::sync::{Arc, LazyLock};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::api::cache::Answer;

/// Scripts, styles, images and sockets from this origin only; no inline script or style, no
/// plugins, no framing. `'self'` covers `ws:`/`wss:` to the same host in CSP Level 3 browsers
/// (the browser test's subscriptions run under this policy in Chromium).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Asset names carry no version, so browsers must ask again each time; the ETag makes that
/// a 304 while the binary is the same.
const CACHE_CONTROL: &str = "no-cache";

/// One file of the console, as built in.
struct Asset {
    path: &'static str,
    body: &'static [u8],
}

/// Builds the asset table from paths below `console/`.
macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(Asset {
            path: $path,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
        }),*]
    };
}

/// Every file the console has; `index.html` is served at `/` (and at `GET /graphql`).
static ASSETS: &[Asset] = assets![
    "index.html",
    "style.css",
    "favicon.svg",
    "dom.js",
    "graphql.js",
    "harvest.js",
    "labels.js",
    "live.js",
    "main.js",
    "orgform.js",
    "pages/account.js",
    "pages/accounts.js",
    "pages/edit.js",
    "pages/ide.js",
    "pages/onboarding.js",
    "pages/organizations.js",
    "pages/register.js",
    "pages/signin.js",
    "pages/standalone.js",
    "pages/tokens.js",
    "pages/units.js",
    "router.js",
    "session.js",
];

/// An asset as served: its entity tag, a digest of its bytes, and the answer that sends it
/// gzip-encoded to the browsers that accept that (compressed once, at the first such ask).
struct Served {
    etag: HeaderValue,
    answer: Arc<Answer>,
}

/// Every asset as served, in the order of [`ASSETS`], made once per process.
static SERVED: LazyLock<Vec<Served>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = hex::encode(&Sha256::digest(asset.body)[..16]);
            // Weak: the gzip and identity encodings share it, as they show the same file.
            let etag =
                HeaderValue::from_str(&format!("W/\"{digest}\"")).expect("hex is a valid header");
            Served {
                etag,
                answer: Answer::new(asset.body),
            }
        })
        .collect()
});

/// Registers `/` (the index page) and `/console/{file}` (its modules, style and icon), for
/// GET and HEAD.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(index).head(index))
        .service(web::resource("/console/{file:.+}").get(file).head(file));
}

/// The console's index page, for `/` and for `GET /graphql`, where it opens the GraphQL IDE.
pub async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

async fn file(req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    serve(&req, &path)
}

/// Answers with the asset at `path`, a 304 when the caller holds it already, or a 404.
fn serve(req: &HttpRequest, path: &str) -> HttpResponse {
    let Some(i) = ASSETS.iter().position(|asset| asset.path == path) else {
        return HttpResponse::NotFound()
            .insert_header((header::CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("not found");
    };
    let served = &SERVED[i];
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|held| held == served.etag);
    let mut response = if fresh {
        HttpResponse::NotModified().finish()
    } else {
        served.answer.respond(req, content_type(path))
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, served.etag.clone());
    for (name, value) in [
        (header::CACHE_CONTROL, CACHE_CONTROL),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The media type of a console file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `console/` but not to [`ASSETS`] would be a 404 in the browser.
    #[test]
    fn every_console_file_is_served() {
        fn files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("console/ is readable") {
                let path = entry.expect("console/ is readable").path();
                if path.is_dir() {
                    files(&path, base, out);
                } else {
                    let relative = path.strip_prefix(base).expect("below console/");
                    out.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        files(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        served.sort();
        assert_eq!(served, on_disk);
    }

    #[test]
    fn every_asset_has_a_known_media_type() {
        for asset in ASSETS {
            assert_ne!(
                content_type(asset.path),
                "application/octet-stream",
                "{}",
                asset.path
            );
        }
    }
}
