//! Pages of the listing as last read, served again while the store's version stays the same
//! (nothing the API reads has changed since): a frontend's or a script's repeated page costs
//! no query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::projections::accounts::{AccountQuery, AccountView};

/// Accounts kept at most, over every page: a few tens of megabytes.
const MAX_ACCOUNTS: usize = 20_000;

/// The pages read at one version of the store.
#[derive(Default)]
pub(super) struct Pages(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    version: u64,
    accounts: usize,
    pages: HashMap<AccountQuery, Arc<[AccountView]>>,
}

impl Pages {
    /// The page `query` found at `version`, if it was kept.
    pub(super) fn get(&self, version: u64, query: &AccountQuery) -> Option<Arc<[AccountView]>> {
        let kept = self.0.lock().expect("page cache poisoned");
        if kept.version != version {
            return None;
        }
        kept.pages.get(query).cloned()
    }

    /// Keeps the page `query` found at `version`, read after that version was taken; pages
    /// of older versions go.
    pub(super) fn keep(&self, version: u64, query: &AccountQuery, page: Arc<[AccountView]>) {
        let mut kept = self.0.lock().expect("page cache poisoned");
        if version < kept.version {
            return;
        }
        if version > kept.version {
            *kept = Kept {
                version,
                ..Kept::default()
            };
        }
        if kept.accounts + page.len() > MAX_ACCOUNTS {
            kept.pages.clear();
            kept.accounts = 0;
        }
        kept.accounts += page.len();
        if let Some(old) = kept.pages.insert(query.clone(), page) {
            kept.accounts -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::account::Access;
    use crate::domain::AccountId;

    fn page(accounts: usize) -> Arc<[AccountView]> {
        let view = AccountView {
            account_id: AccountId::try_from("111122223333".to_owned()).unwrap(),
            name: "prod".into(),
            email: None,
            state: None,
            organization_id: None,
            managed: false,
            org_path: Vec::new(),
            tags: Default::default(),
            badges: Vec::new(),
            access: Access::not_checked(),
            first_seen: Utc::now(),
            last_seen: None,
        };
        vec![view; accounts].into()
    }

    fn query(limit: i64) -> AccountQuery {
        AccountQuery {
            limit,
            ..AccountQuery::default()
        }
    }

    #[test]
    fn a_page_is_served_at_the_version_it_was_read_at_and_no_other() {
        let pages = Pages::default();
        pages.keep(1, &query(100), page(3));
        assert_eq!(pages.get(1, &query(100)).map(|p| p.len()), Some(3));
        assert!(pages.get(1, &query(10)).is_none(), "another query");
        assert!(
            pages.get(2, &query(100)).is_none(),
            "the store changed since"
        );
    }

    #[test]
    fn a_page_read_before_a_change_never_replaces_the_pages_after_it() {
        let pages = Pages::default();
        pages.keep(2, &query(100), page(2));
        pages.keep(1, &query(100), page(1));
        assert_eq!(pages.get(2, &query(100)).map(|p| p.len()), Some(2));
        pages.keep(3, &query(10), page(1));
        assert!(pages.get(2, &query(100)).is_none(), "older pages went");
    }

    #[test]
    fn pages_past_the_limit_make_room_by_dropping_the_others() {
        let pages = Pages::default();
        let per_page = MAX_ACCOUNTS / 4;
        for limit in 1..=4 {
            pages.keep(1, &query(limit), page(per_page));
        }
        assert!(pages.get(1, &query(1)).is_some());
        pages.keep(1, &query(5), page(per_page));
        assert!(pages.get(1, &query(1)).is_none(), "dropped to make room");
        assert!(pages.get(1, &query(5)).is_some());
        pages.keep(1, &query(5), page(per_page));
        assert_eq!(
            pages.0.lock().unwrap().accounts,
            per_page,
            "a replaced page counts once"
        );
    }
}
