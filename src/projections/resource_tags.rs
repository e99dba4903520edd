//! The `resource_tags` table: each account's AWS tags as last harvested (R11). Only
//! harvests change them; nothing here is ever written back to AWS.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::domain::account::Tags;
use crate::store::StoreError;

use super::accounts::{by_account, for_accounts};

/// The tags of each of `ids`.
pub(super) async fn of_accounts(
    conn: &mut AnyConnection,
    ids: &[&str],
) -> Result<HashMap<String, Tags>, StoreError> {
    let rows = for_accounts(
        conn,
        "SELECT account_id, key, value FROM resource_tags WHERE account_id IN ({ids})",
        ids,
    )
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get("account_id")?,
            (row.try_get("key")?, row.try_get("value")?),
        ))
    })
    .collect::<Result<Vec<(String, (String, String))>, sqlx::Error>>()?;
    Ok(by_account(rows)
        .into_iter()
        .map(|(id, pairs)| (id, pairs.into_iter().collect()))
        .collect())
}
