//! Answers to reads of the listing as last made, served again while [`App::version`] stays
//! the same (nothing the API reads has changed since): a frontend's or a script's repeated
//! page costs no query and no rendering. A client that accepts gzip gets the answer
//! compressed, once per answer: a page of a hundred accounts is about a tenth of its size.
//!
//! [`App::version`]: crate::app::App::version

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::http::header::{
    self, AcceptEncoding, ContentEncoding, Encoding, Header, HeaderValue,
};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use flate2::write::GzEncoder;
use flate2::Compression;

/// Bytes kept at most, of requests (the key: a URI, or a GraphQL query and its variables)
/// and their answers as made (compressed copies come on top, a fraction of that): a few
/// hundred pages of a hundred accounts.
const MAX_BYTES: usize = 32 << 20;

/// One answer as made, and its gzip encoding once a client has asked for that.
pub struct Answer {
    body: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Answer {
    /// The answer `body`, not yet compressed.
    pub fn new(body: impl Into<Bytes>) -> Arc<Self> {
        Arc::new(Self {
            body: body.into(),
            gzip: OnceLock::new(),
        })
    }

    /// The response to `req`: gzip-encoded if its `Accept-Encoding` prefers that to the
    /// answer as made, which is sent otherwise (also when the header cannot be read).
    pub fn respond(&self, req: &HttpRequest, content_type: &'static str) -> HttpResponse {
        let mut response = HttpResponse::Ok();
        response
            .content_type(content_type)
            .insert_header((header::VARY, HeaderValue::from_static("accept-encoding")));
        if !accepts_gzip(req) {
            return response.body(self.body.clone());
        }
        let gzip = self.gzip.get_or_init(|| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder
                .write_all(&self.body)
                .and_then(|()| encoder.finish())
                .map(Bytes::from)
                .expect("compressing into memory cannot fail")
        });
        response
            .insert_header(ContentEncoding::Gzip)
            .body(gzip.clone())
    }
}

fn accepts_gzip(req: &HttpRequest) -> bool {
    AcceptEncoding::parse(req).is_ok_and(|accepted| {
        accepted.negotiate([Encoding::gzip(), Encoding::identity()].iter())
            == Some(Encoding::gzip())
    })
}

/// The answers made at one version, by request.
#[derive(Default)]
pub struct Answers(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    version: u64,
    bytes: usize,
    answers: HashMap<String, Arc<Answer>>,
}

impl Answers {
    /// The answer to `request` made at `version`, if it was kept.
    pub fn get(&self, version: u64, request: &str) -> Option<Arc<Answer>> {
        let kept = self.0.lock().expect("answer cache poisoned");
        if kept.version != version {
            return None;
        }
        kept.answers.get(request).cloned()
    }

    /// Keeps the answer to `request`, made from what was read after `version` was taken;
    /// answers made at older versions go.
    pub fn keep(&self, version: u64, request: String, answer: Arc<Answer>) {
        let cost = request.len() + answer.body.len();
        let mut kept = self.0.lock().expect("answer cache poisoned");
        if version < kept.version || cost > MAX_BYTES {
            return;
        }
        if version > kept.version {
            *kept = Kept {
                version,
                ..Kept::default()
            };
        }
        if let Some(old) = kept.answers.remove(&request) {
            kept.bytes -= request.len() + old.body.len();
        }
        if kept.bytes + cost > MAX_BYTES {
            kept.answers.clear();
            kept.bytes = 0;
        }
        kept.bytes += cost;
        kept.answers.insert(request, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: usize) -> Arc<Answer> {
        Answer::new(vec![b' '; bytes])
    }

    #[test]
    fn an_answer_is_served_at_the_version_it_was_made_at_and_no_other() {
        let answers = Answers::default();
        answers.keep(1, "a".into(), answer(3));
        assert_eq!(answers.get(1, "a").map(|a| a.body.len()), Some(3));
        assert!(answers.get(1, "b").is_none(), "another request");
        assert!(answers.get(2, "a").is_none(), "the store changed since");
    }

    #[test]
    fn an_answer_made_before_a_change_never_replaces_those_after_it() {
        let answers = Answers::default();
        answers.keep(2, "a".into(), answer(2));
        answers.keep(1, "a".into(), answer(1));
        assert_eq!(answers.get(2, "a").map(|a| a.body.len()), Some(2));
        answers.keep(3, "b".into(), answer(1));
        assert!(answers.get(2, "a").is_none(), "older answers went");
        assert!(answers.get(3, "b").is_some());
    }

    #[test]
    fn requests_count_as_much_as_answers() {
        let answers = Answers::default();
        let padded = "q".repeat(MAX_BYTES / 2);
        answers.keep(1, format!("a{padded}"), answer(1));
        answers.keep(1, format!("b{padded}"), answer(1));
        assert!(
            answers.get(1, &format!("a{padded}")).is_none(),
            "two padded requests with tiny answers pass the limit"
        );
        assert!(answers.get(1, &format!("b{padded}")).is_some());
        answers.keep(1, "x".repeat(MAX_BYTES), answer(1));
        assert!(
            answers.get(1, &"x".repeat(MAX_BYTES)).is_none(),
            "a request larger than the limit is not kept"
        );
        assert_eq!(answers.0.lock().unwrap().bytes, MAX_BYTES / 2 + 2);
    }

    #[test]
    fn answers_past_the_limit_make_room_by_dropping_the_others() {
        let answers = Answers::default();
        let size = MAX_BYTES / 4 - 1;
        for request in ["a", "b", "c", "d"] {
            answers.keep(1, request.into(), answer(size));
        }
        assert!(answers.get(1, "a").is_some());
        answers.keep(1, "e".into(), answer(size));
        assert!(answers.get(1, "a").is_none(), "dropped to make room");
        assert!(answers.get(1, "e").is_some());
        answers.keep(1, "e".into(), answer(size));
        assert_eq!(
            answers.0.lock().unwrap().bytes,
            size + 1,
            "a replaced answer counts once, with its request"
        );
    }

    /// The response `answer` gives a request with this `Accept-Encoding`: its
    /// `Content-Encoding` and its body decoded.
    async fn respond(answer: &Answer, accept_encoding: Option<&str>) -> (Option<String>, Bytes) {
        let mut req = actix_web::test::TestRequest::default();
        if let Some(accepted) = accept_encoding {
            req = req.insert_header((header::ACCEPT_ENCODING, accepted));
        }
        let response = answer.respond(&req.to_http_request(), "application/json");
        let headers = response.headers();
        assert_eq!(headers.get(header::VARY).unwrap(), "accept-encoding");
        assert_eq!(
            headers.get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap();
        let body = match encoding.as_deref() {
            Some("gzip") => {
                let mut plain = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::GzDecoder::new(&body[..]),
                    &mut plain,
                )
                .unwrap();
                Bytes::from(plain)
            }
            _ => body,
        };
        (encoding, body)
    }

    #[tokio::test]
    async fn an_answer_is_compressed_for_the_clients_that_accept_gzip_and_only_them() {
        let body = Bytes::from(r#"{"accounts":[{"account_id":"111122223333"}]}"#.repeat(50));
        let answer = Answer::new(body.clone());
        for accepted in ["gzip", "gzip, deflate, br", "br;q=1, gzip;q=0.5"] {
            assert_eq!(
                respond(&answer, Some(accepted)).await,
                (Some("gzip".into()), body.clone()),
                "{accepted}"
            );
        }
        for accepted in [
            None,
            Some("identity"),
            Some("br"),
            Some("*"),
            Some("gzip;q=0"),
            Some("gzip;q=0.5, identity"),
        ] {
            assert_eq!(
                respond(&answer, accepted).await,
                (None, body.clone()),
                "{accepted:?}"
            );
        }
        assert!(
            answer.gzip.get().unwrap().len() < body.len() / 10,
            "the copy kept is the compressed one"
        );
    }
}
