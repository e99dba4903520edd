//! Answers to reads of the listing as last made, served again while [`App::version`] stays
//! the same (nothing the API reads has changed since): a frontend's or a script's repeated
//! page costs no query and no rendering.
//!
//! [`App::version`]: crate::app::App::version

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::web::Bytes;

/// Bytes of answers kept at most: a few hundred pages of a hundred accounts.
const MAX_BYTES: usize = 32 << 20;

/// The answers made at one version, by request.
#[derive(Default)]
pub struct Answers(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    version: u64,
    bytes: usize,
    answers: HashMap<String, Bytes>,
}

impl Answers {
    /// The answer to `request` made at `version`, if it was kept.
    pub fn get(&self, version: u64, request: &str) -> Option<Bytes> {
        let kept = self.0.lock().expect("answer cache poisoned");
        if kept.version != version {
            return None;
        }
        kept.answers.get(request).cloned()
    }

    /// Keeps the answer to `request`, made from what was read after `version` was taken;
    /// answers made at older versions go.
    pub fn keep(&self, version: u64, request: String, answer: Bytes) {
        let mut kept = self.0.lock().expect("answer cache poisoned");
        if version < kept.version || answer.len() > MAX_BYTES {
            return;
        }
        if version > kept.version {
            *kept = Kept {
                version,
                ..Kept::default()
            };
        }
        if kept.bytes + answer.len() > MAX_BYTES {
            kept.answers.clear();
            kept.bytes = 0;
        }
        kept.bytes += answer.len();
        if let Some(old) = kept.answers.insert(request, answer) {
            kept.bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(bytes: usize) -> Bytes {
        Bytes::from(vec![b' '; bytes])
    }

    #[test]
    fn an_answer_is_served_at_the_version_it_was_made_at_and_no_other() {
        let answers = Answers::default();
        answers.keep(1, "a".into(), answer(3));
        assert_eq!(answers.get(1, "a").map(|a| a.len()), Some(3));
        assert!(answers.get(1, "b").is_none(), "another request");
        assert!(answers.get(2, "a").is_none(), "the store changed since");
    }

    #[test]
    fn an_answer_made_before_a_change_never_replaces_those_after_it() {
        let answers = Answers::default();
        answers.keep(2, "a".into(), answer(2));
        answers.keep(1, "a".into(), answer(1));
        assert_eq!(answers.get(2, "a").map(|a| a.len()), Some(2));
        answers.keep(3, "b".into(), answer(1));
        assert!(answers.get(2, "a").is_none(), "older answers went");
        assert!(answers.get(3, "b").is_some());
    }

    #[test]
    fn answers_past_the_limit_make_room_by_dropping_the_others() {
        let answers = Answers::default();
        let size = MAX_BYTES / 4;
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
            size,
            "a replaced answer counts once"
        );
    }
}
