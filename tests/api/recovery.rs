use orgsync::projections::Projector;
use orgsync::store::Store;
use sqlx::Row;

use crate::helpers::{Backend, TestApp};
use crate::moto::{MotoOrg, Shape, NESTED};
use crate::on_both_stores;

on_both_stores!(i1_rebuilt_read_tables_equal_the_incremental_ones);
#[cfg(feature = "failpoints")]
on_both_stores!(i2_crash_between_append_and_projection_is_caught_up_on_restart);

/// Every row of every read table, as text, in a fixed order.
async fn read_tables(store: &Store) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    for (sql, columns) in [
        (
            "SELECT account_id, organization_id, name, email, state, org_path, tags, first_seen, \
             updated_at FROM accounts ORDER BY account_id",
            9,
        ),
        (
            "SELECT id, nickname, management_account_id, credentials, filters, registered_at \
             FROM organizations ORDER BY id",
            6,
        ),
    ] {
        for row in sqlx::query(sql)
            .fetch_all(store.pool())
            .await
            .expect("read table")
        {
            rows.push(
                (0..columns)
                    .map(|i| row.try_get::<Option<String>, _>(i).expect("text column"))
                    .collect(),
            );
        }
    }
    rows
}

async fn i1_rebuilt_read_tables_equal_the_incremental_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 30,
    })
    .await;
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    org.tag(&org.members[0], "env", "changed").await;
    org.untag(&org.members[5], "team").await;
    org.move_account(&org.members[1], &org.ous["Ledger"]).await;
    org.close(&org.members[2]).await;
    org.remove(&org.members[3]).await;
    app.harvest(&org_id).await;
    let incremental = read_tables(&app.store).await;
    assert_eq!(incremental.len(), 31 + 1 - 1);

    // The library call…
    let applied = Projector::new(app.store.clone())
        .rebuild()
        .await
        .expect("rebuild");
    assert_eq!(applied as i64, app.event_count().await);
    assert_eq!(read_tables(&app.store).await, incremental);

    // …and the command operators run, configured through the environment.
    let settings = app.settings.clone();
    let _state = app.stop().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"))
        .arg("rebuild-projections")
        .env("ORGSYNC__STORE__URL", &settings.store.url)
        .env("ORGSYNC__STATE__DIR", &settings.state.dir)
        .output()
        .expect("run orgsync");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let store = Store::connect(&settings.store.url, 2).await.unwrap();
    assert_eq!(read_tables(&store).await, incremental);
    store.close().await;
}

#[cfg(feature = "failpoints")]
async fn i2_crash_between_append_and_projection_is_caught_up_on_restart(backend: Backend) {
    use reqwest::StatusCode;

    use crate::helpers::expect_error;

    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 25,
    })
    .await;
    // The registration's own catch-up passes; every later one stops after the appends it
    // follows have committed, as a crash at that instant would.
    fail::cfg("projector-before-apply", "1*off->return").unwrap();
    let org_id = app.register(&org).await;
    let crashed = app
        .post(
            &format!("/api/v1/organizations/{org_id}/harvest?wait=true"),
            &serde_json::Value::Null,
        )
        .await;
    expect_error(crashed, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert!(
        app.event_count().await > 26,
        "the harvest's events were committed"
    );
    assert!(app.listing(&org_id).await.is_empty(), "…but not projected");

    fail::remove("projector-before-apply");
    let app = app.restart().await;
    assert_eq!(app.listing(&org_id).await, org.truth().await);
    let caught_up = read_tables(&app.store).await;
    Projector::new(app.store.clone())
        .rebuild()
        .await
        .expect("rebuild");
    assert_eq!(read_tables(&app.store).await, caught_up);
    app.stop().await;
}
