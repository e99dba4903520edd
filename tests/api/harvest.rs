use std::collections::BTreeMap;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::moto::{MotoOrg, Shape, NESTED};
use crate::on_every_store;

on_every_store!(
    listing_follows_moto_through_moves_tag_changes_closures_and_departures,
    i3_harvest_that_saw_nothing_new_appends_no_event,
    r8_listing_cut_partway_changes_nothing,
    r5_scheduler_harvests_when_due,
    organizations_throttling_and_500s_are_ridden_out,
);

fn assert_listing_eq(listing: &BTreeMap<String, Value>, truth: &BTreeMap<String, Value>) {
    let missing: Vec<_> = truth.keys().filter(|k| !listing.contains_key(*k)).collect();
    let extra: Vec<_> = listing.keys().filter(|k| !truth.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (id, expected) in truth {
        assert_eq!(&listing[id], expected, "account {id} differs");
    }
}

async fn listing_follows_moto_through_moves_tag_changes_closures_and_departures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 120,
    })
    .await;
    // Some accounts closed before the first harvest.
    for account in &org.members[..4] {
        org.close(account).await;
    }
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let truth = org.truth().await;
    assert_eq!(truth.len(), 121);
    assert!(truth.values().filter(|a| a["state"] == "SUSPENDED").count() >= 4);
    assert!(
        truth
            .values()
            .any(|a| a["org_path"].as_array().unwrap().len() >= 4),
        "3 levels below the root"
    );
    assert_listing_eq(&app.listing(&org_id).await, &truth);

    let [moved, retagged, untagged, closed, departed] = [
        &org.members[10],
        &org.members[11],
        &org.members[15],
        &org.members[20],
        &org.members[21],
    ];
    org.move_account(moved, &org.ous["Ledger"]).await;
    org.tag(retagged, "env", "changed").await;
    org.untag(untagged, "team").await;
    org.close(closed).await;
    org.remove(departed).await;

    let after = app.harvest(&org_id).await;
    assert_eq!(after["last_harvest"]["outcome"], "completed");
    let truth = org.truth().await;
    assert_eq!(truth.len(), 120);
    assert_eq!(
        truth[moved.as_str()]["org_path"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["name"],
        "Ledger"
    );
    assert_eq!(truth[closed.as_str()]["state"], "SUSPENDED");
    assert_listing_eq(&app.listing(&org_id).await, &truth);
    assert_eq!(after["account_count"], 120);

    let gone = app.get(&format!("/api/v1/accounts/{departed}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let history = app
        .get_json(&format!("/api/v1/accounts/{departed}/events"))
        .await;
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&"AccountDiscovered"));
    assert_eq!(types.last(), Some(&"AccountLeftOrganization"));
    assert_eq!(history["events"][0]["actor"], format!("harvest:{org_id}"));
    app.stop().await;
}

async fn i3_harvest_that_saw_nothing_new_appends_no_event(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: NESTED,
            accounts: 20,
        },
    )
    .await;
    let before = app.event_count().await;
    assert!(before > 21, "the first harvest recorded the accounts");
    let again = app.harvest(&org_id).await;
    assert_eq!(again["last_harvest"]["outcome"], "completed");
    assert_eq!(app.event_count().await, before);

    org.tag(&org.members[3], "env", "new").await;
    app.harvest(&org_id).await;
    // One tag change, and the harvest that saw it.
    assert_eq!(app.event_count().await, before + 2);
    app.stop().await;
}

async fn r8_listing_cut_partway_changes_nothing(backend: Backend) {
    let (app, proxy) = TestApp::spawn_behind_proxy(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 30,
    })
    .await;
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let listing = app.listing(&org_id).await;
    let events = app.event_count().await;

    org.remove(&org.members[0]).await;
    org.tag(&org.members[1], "env", "changed").await;
    org.move_account(&org.members[2], &org.ous["Ledger"]).await;
    // AssumeRole, ListRoots and a few pages pass; the rest of the walk is cut.
    proxy.cut_after(6);
    let failed = app.harvest(&org_id).await;
    assert_eq!(failed["last_harvest"]["outcome"], "failed");
    let error = failed["last_harvest"]["error"].as_str().unwrap();
    assert!(error.contains("organizations:"), "{error}");
    assert_eq!(app.listing(&org_id).await, listing);
    assert_eq!(app.event_count().await, events + 1, "only HarvestFailed");

    proxy.heal();
    let healed = app.harvest(&org_id).await;
    assert_eq!(healed["last_harvest"]["outcome"], "completed");
    assert_eq!(app.listing(&org_id).await, org.truth().await);
    app.stop().await;
}

async fn r5_scheduler_harvests_when_due(backend: Backend) {
    let (app, _, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 2,
        },
    )
    .await;

    let scheduler = app.app.scheduler();
    assert!(
        scheduler.tick(Utc::now()).await.unwrap().is_empty(),
        "harvested just now"
    );
    let interval = chrono::Duration::from_std(app.settings.harvest.interval).unwrap();
    let almost = scheduler
        .tick(Utc::now() + interval * 9 / 10)
        .await
        .unwrap();
    assert!(almost.is_empty(), "not due before the interval");
    let started = scheduler
        .tick(Utc::now() + interval * 11 / 10)
        .await
        .unwrap();
    assert_eq!(
        started.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        vec![org_id.as_str()]
    );
    app.stop().await;
}

async fn organizations_throttling_and_500s_are_ridden_out(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: NESTED,
            accounts: 30,
        },
    )
    .await;
    org.tag(&org.members[4], "env", "throttled").await;
    org.move_account(&org.members[5], &org.ous["Ledger"]).await;
    // 30% of Organizations calls throttled (HTTP 400 TooManyRequestsException) and 5% HTTP 500.
    app.stub.organizations_faults(30, 5);
    app.stub.latency(std::time::Duration::from_millis(10));
    let before = app.stub.organizations_calls();
    let harvested = app.harvest(&org_id).await;
    assert_eq!(
        harvested["last_harvest"]["outcome"], "completed",
        "{harvested}"
    );
    assert!(
        app.stub.organizations_calls() - before > 60,
        "the walk went through the faults"
    );
    app.stub.organizations_faults(0, 0);
    assert_eq!(app.listing(&org_id).await, org.truth().await);
    app.stop().await;
}
