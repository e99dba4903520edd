//! The `resource_tags` table: each account's AWS tags as last harvested (R11). Only
//! harvests change them; nothing here is ever written back to AWS.

use std::collections::HashMap;

use sqlx::{AnyConnection, AnyPool, Row};

use crate::domain::account::{AccountEvent, Tags};
use crate::store::{StoreError, StoredEvent};

use super::accounts::{by_account, for_accounts};

pub(super) async fn apply(
    conn: &mut AnyConnection,
    stored: &StoredEvent,
    event: &AccountEvent,
) -> Result<(), StoreError> {
    let id = stored.aggregate_id.as_str();
    match event {
        AccountEvent::AccountTagsChanged { set, removed, .. } => {
            for key in removed {
                sqlx::query("DELETE FROM resource_tags WHERE account_id = $1 AND key = $2")
                    .bind(id)
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
            for (key, value) in set {
                sqlx::query(
                    "INSERT INTO resource_tags (account_id, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value",
                )
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *conn)
                .await?;
            }
        }
        // A listing starts without tags, and an account that leaves takes its tags along.
        event
            if event.ends_listing() || matches!(event, AccountEvent::AccountDiscovered { .. }) =>
        {
            sqlx::query("DELETE FROM resource_tags WHERE account_id = $1")
                .bind(id)
                .execute(conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}

/// The tags of each of `ids`.
pub(super) async fn of_accounts(
    pool: &AnyPool,
    ids: &[&str],
) -> Result<HashMap<String, Tags>, StoreError> {
    let rows = for_accounts(
        pool,
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
