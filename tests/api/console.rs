//! Every page the daemon serves works where nothing outside can be reached: the console at `/`
//! (and at `GET /graphql`, its IDE) and Swagger UI at `/api/v1/docs/`, with every file they
//! refer to, transitively, refer to no address outside the daemon.

use std::collections::{BTreeSet, VecDeque};

use reqwest::{StatusCode, Url};

use crate::helpers::{Backend, TestApp};

/// The pages an operator opens by hand; everything else is found from them.
const PAGES: &[&str] = &["/", "/graphql", "/api/v1/docs/"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_page_refers_to_nothing_outside_the_daemon() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let origin = Url::parse(&app.address).unwrap();
    let mut queue: VecDeque<Url> = PAGES.iter().map(|p| origin.join(p).unwrap()).collect();
    let mut seen = BTreeSet::new();
    let mut outside = Vec::new();
    while let Some(url) = queue.pop_front() {
        if !seen.insert(url.clone()) {
            continue;
        }
        let response = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url} is served");
        let media = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let Some(kind) = Kind::of(&media) else {
            continue; // images and the like refer to nothing
        };
        let text = response.text().await.unwrap();
        // Swagger UI's default shows a badge loaded from its online validator.
        if url.path().ends_with("swagger-initializer.js")
            && !text.contains(r#""validatorUrl": "none""#)
        {
            outside.push(format!(
                "{url} leaves validatorUrl at its default, https://validator.swagger.io"
            ));
        }
        for reference in kind.references(&text) {
            if ["data:", "blob:", "#"]
                .iter()
                .any(|p| reference.starts_with(p))
            {
                continue;
            }
            match url.join(&reference) {
                Ok(target) if target.origin() == origin.origin() => {
                    let mut target = target;
                    target.set_fragment(None);
                    queue.push_back(target);
                }
                _ => outside.push(format!("{url} refers to {reference}")),
            }
        }
    }
    assert!(
        outside.is_empty(),
        "outside addresses:\n{}",
        outside.join("\n")
    );
    // The crawl reached the console's modules, not only its index.
    let paths: BTreeSet<&str> = seen.iter().map(Url::path).collect();
    for expected in [
        "/console/main.js",
        "/console/graphql.js",
        "/console/pages/ide.js",
        "/console/style.css",
        "/api/v1/docs/swagger-ui-bundle.js",
    ] {
        assert!(
            paths.contains(expected),
            "{expected} was reached: {paths:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_files_come_with_their_type_a_strict_policy_and_an_etag() {
    use reqwest::header::{
        ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
        IF_NONE_MATCH,
    };
    let app = TestApp::spawn(Backend::Sqlite).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.address));
    for (path, media) in [
        ("/", "text/html; charset=utf-8"),
        ("/console/main.js", "text/javascript; charset=utf-8"),
        ("/console/style.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ] {
        let answer = get(path).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        assert_eq!(answer.headers()[CONTENT_TYPE], media, "{path}");
        let policy = answer.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.starts_with("default-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        // Held already: nothing is sent again.
        let etag = answer.headers()[ETAG].clone();
        let again = get(path).header(IF_NONE_MATCH, etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let gzip = get("/console/main.js")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()[CONTENT_ENCODING], "gzip");
    for path in ["/console/nope.js", "/console/../Cargo.toml", "/console/"] {
        let answer = get(path).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{path}");
    }
    app.stop().await;
}

/// The kinds of file that refer to others, by media type.
enum Kind {
    Html,
    Css,
    JavaScript,
}

impl Kind {
    fn of(media: &str) -> Option<Self> {
        let essence = media.split(';').next().unwrap_or_default().trim();
        match essence {
            "text/html" => Some(Self::Html),
            "text/css" => Some(Self::Css),
            "text/javascript" | "application/javascript" => Some(Self::JavaScript),
            _ => None,
        }
    }

    /// The addresses `text` refers to: `src=` and `href=` in HTML (and what its inline
    /// styles refer to), `url(…)` and `@import` in CSS, and the module specifiers of `import`
    /// and `export … from` in JavaScript.
    fn references(&self, text: &str) -> Vec<String> {
        match self {
            Self::Html => {
                let mut found = attribute_values(text, "src=");
                found.extend(attribute_values(text, "href="));
                found.extend(Self::Css.references(text));
                found
            }
            Self::Css => {
                let mut found: Vec<String> = after_each(text, "url(")
                    .map(|rest| {
                        let inner = rest.split(')').next().unwrap_or_default().trim();
                        inner.trim_matches(['"', '\'']).to_owned()
                    })
                    .collect();
                found.extend(after_each(text, "@import").filter_map(|rest| {
                    let rest = rest.trim_start();
                    quoted(rest).map(str::to_owned)
                }));
                found
            }
            Self::JavaScript => module_specifiers(text),
        }
    }
}

/// Each part of `text` that follows an occurrence of `marker`.
fn after_each<'a>(text: &'a str, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.match_indices(marker)
        .map(move |(i, _)| &text[i + marker.len()..])
}

/// The string a quote opens at the start of `text`: `"…"` or `'…'`.
fn quoted(text: &str) -> Option<&str> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    text[1..].split(quote).next()
}

/// The values of an HTML attribute written `name="…"`, `name='…'` or unquoted.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    after_each(html, name)
        .map(|rest| {
            quoted(rest).map_or_else(
                || {
                    rest.split(|c: char| c.is_whitespace() || c == '>')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                },
                str::to_owned,
            )
        })
        .collect()
}

/// The specifiers of a module's imports and re-exports (`import … from "x"`, `import "x"`,
/// `export … from "x"`, `import("x")`) that name an address: relative, rooted or absolute.
/// Bare specifiers load nothing without an import map, and skipping them keeps a string
/// such as `"… from"` in a minified bundle from being taken for one.
fn module_specifiers(js: &str) -> Vec<String> {
    ["from", "import"]
        .iter()
        .flat_map(|keyword| after_each(js, keyword))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            quoted(rest.strip_prefix('(').map_or(rest, str::trim_start))
        })
        .filter(|specifier| {
            ["./", "../", "/"].iter().any(|p| specifier.starts_with(p)) || specifier.contains("://")
        })
        .map(str::to_owned)
        .collect()
}

/// The scanners themselves: an outside address in each place the test looks is found.
#[test]
fn outside_references_are_found_in_html_css_and_modules() {
    let html = r#"<link rel="stylesheet" href="https://cdn.example/ui.css">
        <script src='//cdn.example/ui.js'></script><img src=http://img.example/a.png>
        <style>@import "https://fonts.example/f.css"; body { background: url('https://c.example/b.png') }</style>"#;
    assert_eq!(
        Kind::Html.references(html),
        [
            "//cdn.example/ui.js",
            "http://img.example/a.png",
            "https://cdn.example/ui.css",
            "https://c.example/b.png",
            "https://fonts.example/f.css",
        ]
    );
    let js = "import { h } from \"./dom.js\";\nimport 'https://cdn.example/polyfill.js';\n\
              export { x } from '../x.js';\nconst m = await import(\"https://cdn.example/m.js\");\n\
              const text = \"copied from\" + name;";
    let mut found = Kind::JavaScript.references(js);
    found.sort();
    assert_eq!(
        found,
        [
            "../x.js",
            "./dom.js",
            "https://cdn.example/m.js",
            "https://cdn.example/polyfill.js"
        ]
    );
}
