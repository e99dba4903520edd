//! Every rule of DESIGN §3 that the listing must follow, each in a test named after it, on
//! both stores. Expectations are computed here from moto's own data, not from orgsync's.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::{account_ids, expect_error, expect_json, orgsync_command, Backend, TestApp};
use crate::moto::{MotoOrg, Shape, MEMBER_ROLE, NESTED};
use crate::on_every_store;

on_every_store!(
    r4_member_access_failures_show_on_the_account,
    r15_denied_member_actions_are_warnings_with_the_scp_caveat,
    r6_scope_filters_limit_and_exclude,
    r6_account_moved_out_of_scope_leaves_and_returns_with_history,
    r7_auto_remove_suspended_removes_listed_accounts_at_once,
    r9_system_badges_follow_nickname_and_path,
    r10_badges_mirror_tags,
    r11_resource_tags_are_the_harvested_aws_tags,
    r12_managed_accounts_refuse_credential_edits_and_deletion,
    r12_registration_adopts_standalone_accounts,
    r13_credentials_change_whole_or_not_at_all,
    r14_no_plaintext_secret_in_the_store_before_or_after_rotate_key,
    scenario_listing_and_badges_equal_an_independent_expectation,
    organization_removal_empties_its_listing_and_keeps_history,
    manual_badges_and_search,
);

/// The listing moto's truth should give under `filters` (R6, R7), computed from moto's data.
fn expected_listing(truth: &BTreeMap<String, Value>, filters: &Value) -> BTreeMap<String, Value> {
    let strings = |key: &str| -> Vec<String> {
        filters[key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let (scope, prefixes) = (
        strings("limit_scope_ou_ids"),
        strings("exclude_name_prefixes"),
    );
    let auto_remove = filters["auto_remove_suspended"].as_bool().unwrap_or(false);
    truth
        .iter()
        .filter(|(_, a)| {
            let ids: Vec<&str> = a["org_path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["id"].as_str().unwrap())
                .collect();
            let name = a["name"].as_str().unwrap();
            let in_scope = scope.is_empty() || ids.iter().any(|id| scope.iter().any(|s| s == id));
            let excluded = prefixes.iter().any(|p| name.starts_with(p.as_str()));
            let removed = auto_remove
                && ["SUSPENDED", "PENDING_CLOSURE", "CLOSED"]
                    .contains(&a["state"].as_str().unwrap());
            in_scope && !excluded && !removed
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The badges an account should carry (R9, R10), from moto's data.
fn expected_badges(
    account: &Value,
    org_id: &str,
    nickname: &str,
    auto_badge: bool,
) -> BTreeMap<String, (String, bool)> {
    let path: Vec<&str> = account["org_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    let mut badges = BTreeMap::from([
        (
            "system.cloud_organization".to_owned(),
            (org_id.to_owned(), false),
        ),
        (
            "system.cloud_organization_name".to_owned(),
            (nickname.to_owned(), false),
        ),
        ("cloud_org_path".to_owned(), (path.join("/"), false)),
    ]);
    if auto_badge {
        for (k, v) in account["tags"].as_object().unwrap() {
            if !k.starts_with("system.") && k != "cloud_org_path" {
                badges.insert(k.clone(), (v.as_str().unwrap().to_owned(), true));
            }
        }
    }
    badges
}

async fn register_with(app: &TestApp, org: &MotoOrg, filters: Value) -> String {
    let response = app
        .post(
            "/api/v1/organizations",
            &org.registration_with("prod", filters),
        )
        .await;
    let body = expect_json(response, StatusCode::CREATED).await;
    body["id"].as_str().unwrap().to_owned()
}

async fn r4_member_access_failures_show_on_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stub = &app.stub;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 6,
    })
    .await;
    let (denied, closed) = (&org.members[0], &org.members[1]);
    org.close(closed).await;
    stub.deny_assume_role(&MotoOrg::member_role_arn(denied));
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;

    let view = app.get_json(&format!("/api/v1/accounts/{denied}")).await;
    assert_eq!(view["access"]["status"], "assume_role_failed", "{view}");
    let message = view["access"]["message"].as_str().unwrap();
    assert!(
        message.contains("AccessDenied") && message.contains("sts:AssumeRole"),
        "{message}"
    );
    let suspended = app.get_json(&format!("/api/v1/accounts/{closed}")).await;
    assert_eq!(suspended["access"]["status"], "not_checked");
    assert!(
        !stub.assumed().contains(&MotoOrg::member_role_arn(closed)),
        "suspended accounts are not assumed into"
    );
    let fine = app
        .get_json(&format!("/api/v1/accounts/{}", org.members[2]))
        .await;
    assert_eq!(fine["access"]["status"], "ok");
    assert!(stub
        .assumed()
        .contains(&MotoOrg::member_role_arn(&org.members[2])));

    // The same outcome again is no event; a changed one is exactly one.
    let events = app.event_count().await;
    app.harvest(&org_id).await;
    assert_eq!(app.event_count().await, events);
    stub.allow_all();
    app.harvest(&org_id).await;
    assert_eq!(
        app.event_count().await,
        events + 2,
        "AccountAccessChanged and HarvestCompleted"
    );
    let view = app.get_json(&format!("/api/v1/accounts/{denied}")).await;
    assert_eq!(view["access"]["status"], "ok");
    app.stop().await;
}

async fn r15_denied_member_actions_are_warnings_with_the_scp_caveat(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let stub = &app.stub;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 3,
    })
    .await;
    let restricted = &org.members[0];
    stub.deny_actions(
        &MotoOrg::member_role_arn(restricted),
        &["ec2:DescribeInstances", "s3:ListAllMyBuckets"],
    );
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;

    let view = app
        .get_json(&format!("/api/v1/accounts/{restricted}"))
        .await;
    assert_eq!(view["access"]["status"], "ok");
    let warnings: Vec<&str> = view["access"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("ec2:DescribeInstances is denied")
            && warnings[1].starts_with("s3:ListAllMyBuckets is denied")
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("SCP") && w.contains("global")),
        "{warnings:?}"
    );
    let other = app
        .get_json(&format!("/api/v1/accounts/{}", org.members[1]))
        .await;
    assert_eq!(other["access"]["warnings"], json!([]));
    assert_eq!(other["access"]["permissions_checked"], true);

    // Simulated once per role: a harvest that saw nothing new asks IAM nothing more.
    let member_simulations = || {
        stub.simulated()
            .iter()
            .filter(|r| r.ends_with(MEMBER_ROLE))
            .count()
    };
    assert_eq!(
        member_simulations(),
        4,
        "three members and the management account"
    );
    let events = app.event_count().await;
    app.harvest(&org_id).await;
    assert_eq!(member_simulations(), 4);
    assert_eq!(app.event_count().await, events);
    app.stop().await;
}

async fn r6_scope_filters_limit_and_exclude(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 24,
    })
    .await;
    let filters = json!({
        "limit_scope_ou_ids": [org.ous["Workloads"], org.ous["Security"]],
        "exclude_name_prefixes": ["account-001"],
    });
    let org_id = register_with(&app, &org, filters.clone()).await;
    app.harvest(&org_id).await;
    let expected = expected_listing(&org.truth().await, &filters);
    assert!(
        expected
            .values()
            .any(|a| a["org_path"].as_array().unwrap().len() >= 4),
        "nested below Workloads"
    );
    assert!(expected.len() < 25, "something is out of scope");
    assert_eq!(app.listing(&org_id).await, expected);
    app.stop().await;
}

async fn r6_account_moved_out_of_scope_leaves_and_returns_with_history(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 8,
    })
    .await;
    let filters = json!({"limit_scope_ou_ids": [org.ous["Workloads"]]});
    let org_id = register_with(&app, &org, filters.clone()).await;
    app.harvest(&org_id).await;
    // account-0001 sits in Dev, below Workloads.
    let mover = &org.members[1];
    assert!(app.listing(&org_id).await.contains_key(mover.as_str()));

    org.move_account(mover, &org.ous["Sandbox"]).await;
    app.harvest(&org_id).await;
    assert!(!app.listing(&org_id).await.contains_key(mover.as_str()));
    assert_eq!(
        app.listing(&org_id).await,
        expected_listing(&org.truth().await, &filters)
    );

    org.move_account(mover, &org.ous["Ledger"]).await;
    app.harvest(&org_id).await;
    let listing = app.listing(&org_id).await;
    assert_eq!(
        listing[mover.as_str()]["org_path"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["name"],
        "Ledger"
    );
    let types = app.history_types(mover).await;
    let removed = types
        .iter()
        .position(|t| t == "AccountRemoved")
        .expect("removed as excluded");
    assert_eq!(types[0], "AccountDiscovered");
    assert_eq!(types[removed + 1], "AccountDiscovered", "{types:?}");
    app.stop().await;
}

async fn r7_auto_remove_suspended_removes_listed_accounts_at_once(backend: Backend) {
    let (app, proxy) = TestApp::spawn_behind_proxy(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 6,
    })
    .await;
    for account in &org.members[..2] {
        org.close(account).await;
    }
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let listing = app.listing(&org_id).await;
    assert_eq!(listing[org.members[0].as_str()]["state"], "SUSPENDED");

    // AWS is unreachable from now on: what happens must come from orgsync alone.
    proxy.cut_after(0);
    let response = app
        .patch(
            &format!("/api/v1/organizations/{org_id}"),
            &json!({"filters": {"auto_remove_suspended": true}}),
        )
        .await;
    let body = expect_json(response, StatusCode::OK).await;
    assert_eq!(body["filters"]["auto_remove_suspended"], true);
    assert_eq!(
        body["filters"]["auto_badge"], true,
        "keys left out keep their value"
    );
    let listing = app.listing(&org_id).await;
    assert!(
        !listing.contains_key(org.members[0].as_str())
            && !listing.contains_key(org.members[1].as_str())
    );
    assert_eq!(listing.len(), 5);
    let types = app.history_types(&org.members[0]).await;
    assert_eq!(types.last().map(String::as_str), Some("AccountRemoved"));
    let history = app
        .get_json(&format!("/api/v1/accounts/{}/events", org.members[0]))
        .await;
    assert_eq!(
        history["events"].as_array().unwrap().last().unwrap()["data"]["reason"],
        "suspended"
    );

    proxy.heal();
    app.harvest(&org_id).await;
    assert_eq!(
        app.listing(&org_id).await.len(),
        5,
        "the harvest keeps them out"
    );
    app.stop().await;
}

async fn r9_system_badges_follow_nickname_and_path(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: NESTED,
            accounts: 4,
        },
    )
    .await;
    let account = &org.members[3];
    let truth = org.truth().await;
    let badges = app.badges(account).await;
    assert_eq!(badges["system.cloud_organization"], (org_id.clone(), false));
    assert_eq!(
        badges["system.cloud_organization_name"],
        ("prod".to_owned(), false)
    );
    assert_eq!(
        badges["cloud_org_path"],
        ("Root/Workloads/Prod/Payments".to_owned(), false)
    );
    for id in truth.keys() {
        assert_eq!(app.badges(id).await["system.cloud_organization"].0, org_id);
    }

    let renamed = app
        .patch(
            &format!("/api/v1/organizations/{org_id}"),
            &json!({"nickname": "production"}),
        )
        .await;
    expect_json(renamed, StatusCode::OK).await;
    assert_eq!(
        app.badges(account).await["system.cloud_organization_name"].0,
        "production"
    );
    // Filters find the system badges as the accounts show them.
    let every: Vec<String> = truth.keys().cloned().collect();
    for filter in [
        "system.cloud_organization_name:production".to_owned(),
        format!("system.cloud_organization:{org_id}"),
    ] {
        let page = app
            .get_json(&format!("/api/v1/accounts?badge={filter}"))
            .await;
        assert_eq!(account_ids(&page), every, "{filter}");
    }
    let before_rename = app
        .get_json("/api/v1/accounts?badge=system.cloud_organization_name:prod")
        .await;
    assert!(account_ids(&before_rename).is_empty());

    org.move_account(account, &org.ous["Sandbox"]).await;
    app.harvest(&org_id).await;
    assert_eq!(
        app.badges(account).await["cloud_org_path"].0,
        "Root/Sandbox"
    );
    let moved = app
        .get_json("/api/v1/accounts?badge=cloud_org_path:Root/Sandbox")
        .await;
    assert_eq!(account_ids(&moved), vec![account.clone()]);
    app.stop().await;
}

async fn r10_badges_mirror_tags(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 4,
    })
    .await;
    // account-0003 starts with env=prod, team=blue, cost-center=cc-42.
    let account = &org.members[3];
    org.tag(account, "system.cloud_organization", "forged")
        .await;
    org.tag(account, "cloud_org_path", "Elsewhere").await;
    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let badges = app.badges(account).await;
    // A missing badge is created, autogenerated; reserved keys are never taken from tags.
    assert_eq!(badges["env"], ("prod".to_owned(), true));
    assert_eq!(badges["system.cloud_organization"], (org_id.clone(), false));
    assert_eq!(badges["cloud_org_path"], ("Root".to_owned(), false));

    // A manual badge whose key a tag then takes becomes autogenerated with the tag's value.
    let added = app
        .post(
            &format!("/api/v1/accounts/{account}/badges"),
            &json!({"key": "owner", "value": "ann"}),
        )
        .await;
    expect_json(added, StatusCode::OK).await;
    assert_eq!(
        app.badges(account).await["owner"],
        ("ann".to_owned(), false)
    );
    org.tag(account, "owner", "bob").await;
    // A changed value is updated; a badge whose tag is gone is deleted.
    org.tag(account, "env", "staging").await;
    org.untag(account, "team").await;
    app.harvest(&org_id).await;
    let badges = app.badges(account).await;
    assert_eq!(badges["owner"], ("bob".to_owned(), true));
    assert_eq!(badges["env"], ("staging".to_owned(), true));
    assert!(!badges.contains_key("team"));
    // While tags drive them, tag badges cannot be edited by hand.
    let edit = app
        .post(
            &format!("/api/v1/accounts/{account}/badges"),
            &json!({"key": "env", "value": "x"}),
        )
        .await;
    expect_error(edit, StatusCode::CONFLICT, "badge_mirrors_tag").await;

    // Turning auto-badging off removes the autogenerated tag badges and nothing else.
    let manual = app
        .post(
            &format!("/api/v1/accounts/{account}/badges"),
            &json!({"key": "ticket", "value": "OPS-1"}),
        )
        .await;
    expect_json(manual, StatusCode::OK).await;
    let off = app
        .patch(
            &format!("/api/v1/organizations/{org_id}"),
            &json!({"filters": {"auto_badge": false}}),
        )
        .await;
    expect_json(off, StatusCode::OK).await;
    let badges = app.badges(account).await;
    assert_eq!(
        badges.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "cloud_org_path",
            "system.cloud_organization",
            "system.cloud_organization_name",
            "ticket"
        ]
    );
    // And on again brings them back from the harvested tags.
    let on = app
        .patch(
            &format!("/api/v1/organizations/{org_id}"),
            &json!({"filters": {"auto_badge": true}}),
        )
        .await;
    expect_json(on, StatusCode::OK).await;
    let badges = app.badges(account).await;
    assert_eq!(badges["env"], ("staging".to_owned(), true));
    assert_eq!(badges["cost-center"], ("cc-42".to_owned(), true));
    assert_eq!(badges["ticket"], ("OPS-1".to_owned(), false));
    app.stop().await;
}

async fn r11_resource_tags_are_the_harvested_aws_tags(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 5,
        },
    )
    .await;
    org.tag(&org.members[1], "env", "changed").await;
    org.untag(&org.members[2], "env").await;
    app.harvest(&org_id).await;

    let mut stored: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for row in sqlx::query("SELECT account_id, key, value FROM resource_tags")
        .fetch_all(app.store.pool())
        .await
        .unwrap()
    {
        stored
            .entry(row.get("account_id"))
            .or_default()
            .insert(row.get("key"), row.get("value"));
    }
    let truth = org.truth().await;
    for (id, account) in &truth {
        let tags: BTreeMap<String, String> =
            serde_json::from_value(account["tags"].clone()).unwrap();
        assert_eq!(
            stored.get(id).cloned().unwrap_or_default(),
            tags,
            "account {id}"
        );
    }
    // Tags cannot be written through the API: there is no field for them.
    let write = app
        .patch(
            &format!("/api/v1/accounts/{}", org.members[1]),
            &json!({"tags": {"env": "mine"}}),
        )
        .await;
    expect_error(write, StatusCode::BAD_REQUEST, "invalid_field").await;
    app.stop().await;
}

fn standalone_body(account: &str, name: &str) -> Value {
    json!({
        "account_id": account, "name": name,
        "role_arn": format!("arn:aws:iam::{account}:role/Standalone-Role"),
        "session_name": "orgsync", "duration_seconds": 3600
    })
}

async fn r12_managed_accounts_refuse_credential_edits_and_deletion(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 2,
        },
    )
    .await;
    let managed = &org.members[0];
    let role = json!({"role_arn": format!("arn:aws:iam::{managed}:role/X"), "session_name": "orgsync", "duration_seconds": 3600});
    let edit = app
        .patch(&format!("/api/v1/accounts/{managed}"), &role)
        .await;
    let body = expect_error(edit, StatusCode::CONFLICT, "managed_by_organization").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&org_id),
        "{body}"
    );
    let delete = app.delete(&format!("/api/v1/accounts/{managed}")).await;
    expect_error(delete, StatusCode::CONFLICT, "managed_by_organization").await;
    let add = app
        .post("/api/v1/accounts", &standalone_body(managed, "again"))
        .await;
    expect_error(add, StatusCode::CONFLICT, "managed_by_organization").await;
    assert_eq!(
        app.get_json(&format!("/api/v1/accounts/{managed}")).await["managed"],
        true
    );

    // Standalone accounts, by contrast, are edited and deleted.
    let solo = "123412341234";
    let created = expect_json(
        app.post("/api/v1/accounts", &standalone_body(solo, "solo"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["managed"], false);
    assert_eq!(created["access"]["status"], "ok");
    let new_role = json!({"role_arn": format!("arn:aws:iam::{solo}:role/Other"), "session_name": "orgsync", "duration_seconds": 900});
    expect_json(
        app.patch(&format!("/api/v1/accounts/{solo}"), &new_role)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/accounts/{solo}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&format!("/api/v1/accounts/{solo}")).await.status(),
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

async fn r12_registration_adopts_standalone_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 3,
    })
    .await;
    let member = &org.members[1];
    expect_json(
        app.post("/api/v1/accounts", &standalone_body(member, "was-alone"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let badge = app
        .post(
            &format!("/api/v1/accounts/{member}/badges"),
            &json!({"key": "owner", "value": "ann"}),
        )
        .await;
    expect_json(badge, StatusCode::OK).await;

    let org_id = app.register(&org).await;
    app.harvest(&org_id).await;
    let view = app.get_json(&format!("/api/v1/accounts/{member}")).await;
    assert_eq!(view["managed"], true);
    assert_eq!(view["organization_id"], org_id);
    assert_eq!(
        view["name"], "account-0001",
        "AWS's facts replace the standalone ones"
    );
    assert_eq!(app.badges(member).await["owner"], ("ann".to_owned(), false));
    let credentials: Option<String> =
        sqlx::query("SELECT credentials FROM accounts WHERE account_id = $1")
            .bind(member.as_str())
            .fetch_one(app.store.pool())
            .await
            .unwrap()
            .get("credentials");
    assert_eq!(
        credentials, None,
        "the standalone role was replaced by the organization's"
    );
    let types = app.history_types(member).await;
    assert_eq!(
        &types[..2],
        ["StandaloneAccountAdded", "AccountAccessChanged"]
    );
    assert!(types.contains(&"AccountAdopted".to_owned()), "{types:?}");
    app.stop().await;
}

async fn r13_credentials_change_whole_or_not_at_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 1,
    })
    .await;
    let org_id = app.register(&org).await;
    let path = format!("/api/v1/organizations/{org_id}");
    let sealed = || async {
        sqlx::query("SELECT credentials FROM organizations")
            .fetch_one(app.store.pool())
            .await
            .unwrap()
            .get::<String, _>("credentials")
    };
    let before = sealed().await;

    let partial = app
        .patch(
            &path,
            &json!({"org_role": {"role_arn": org.org_role_arn()}}),
        )
        .await;
    let body = expect_error(partial, StatusCode::BAD_REQUEST, "incomplete_credentials").await;
    let message = body["error"]["message"].as_str().unwrap();
    for missing in [
        "org_role.session_name",
        "org_role.duration_seconds",
        "member_role.role_name",
    ] {
        assert!(message.contains(missing), "{message}");
    }
    assert_eq!(sealed().await, before);

    // Filters and nickname change alone; the sealed credentials stay as they are.
    let alone = app
        .patch(
            &path,
            &json!({"nickname": "renamed", "filters": {"exclude_name_prefixes": ["tmp-"]}}),
        )
        .await;
    let body = expect_json(alone, StatusCode::OK).await;
    assert_eq!(body["nickname"], "renamed");
    assert_eq!(body["filters"]["exclude_name_prefixes"], json!(["tmp-"]));
    assert_eq!(sealed().await, before);

    // A full set replaces them, after the same checks as a registration.
    let full = json!({
        "org_role": {"role_arn": org.org_role_arn(), "session_name": "rotated", "duration_seconds": 7200},
        "member_role": {"role_name": "Other-Member-Role", "session_name": "rotated", "duration_seconds": 7200}
    });
    expect_json(app.patch(&path, &full).await, StatusCode::OK).await;
    assert_ne!(sealed().await, before);
    let elsewhere = json!({
        "org_role": {"role_arn": "arn:aws:iam::210987654321:role/OrgSync-Org-Role", "session_name": "x1", "duration_seconds": 900},
        "member_role": {"role_name": "M", "session_name": "x1", "duration_seconds": 900}
    });
    let refused = app.patch(&path, &elsewhere).await;
    expect_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "describe_organization_failed",
    )
    .await;
    app.stop().await;
}

/// Every byte of the store that could hold a secret, as text: the SQLite files (database and
/// write-ahead log), or PostgreSQL's events and read tables, and the events of the log
/// wherever it is.
async fn raw_store_text(app: &TestApp) -> String {
    match app.backend {
        Backend::Sqlite => {
            // Read by another process: opening and closing the file here would drop the
            // POSIX locks this process's SQLite connections hold on it.
            let mut text = String::new();
            for name in ["orgsync.db", "orgsync.db-wal"] {
                let path = app.state_dir().join(name);
                if path.exists() {
                    let copy = std::process::Command::new("cat")
                        .arg(&path)
                        .output()
                        .unwrap();
                    text.push_str(&String::from_utf8_lossy(&copy.stdout));
                }
            }
            text
        }
        Backend::Postgres | Backend::Kurrent => {
            let mut text = String::new();
            // KurrentDB's events, as the log reads them: payload and metadata.
            for event in app.store.events_after(0, i64::MAX).await.unwrap() {
                text.push_str(&event.payload.to_string());
                text.push_str(&event.metadata.actor);
            }
            for table in [
                "events",
                "organizations",
                "accounts",
                "resource_tags",
                "badges",
                "settings",
                "harvest_runs",
            ] {
                let sql = format!("SELECT CAST(t AS TEXT) AS row FROM {table} t");
                let rows = sqlx::query(&sql).fetch_all(app.store.pool()).await.unwrap();
                for row in rows {
                    text.push_str(&row.get::<String, _>("row"));
                }
            }
            text
        }
    }
}

async fn r14_no_plaintext_secret_in_the_store_before_or_after_rotate_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: &[],
        accounts: 2,
    })
    .await;
    let external_id = app.get_json("/api/v1/external-id").await["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = "r14-secret-session";
    let mut body = org.registration("prod");
    body["org_role"]["session_name"] = json!(session);
    body["member_role"]["session_name"] = json!(session);
    let org_id = expect_json(
        app.post("/api/v1/organizations", &body).await,
        StatusCode::CREATED,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.harvest(&org_id).await;
    let solo = "432143214321";
    expect_json(
        app.post("/api/v1/accounts", &standalone_body(solo, "solo"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let secrets = [
        org.org_role_arn(),
        "OrgSync-Member-Role".to_owned(),
        session.to_owned(),
        external_id.clone(),
        format!("arn:aws:iam::{solo}:role/Standalone-Role"),
    ];
    let check = |text: &str, when: &str| {
        assert!(text.contains("siv1:"), "{when}: sealed values are stored");
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{when}: {secret} is stored in plaintext"
            );
        }
    };
    check(&raw_store_text(&app).await, "before rotate-key");
    let key_file = app.state_dir().join("orgsync.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();

    // Rotated by the command operators run, while the daemon keeps serving.
    let output = orgsync_command(&app.settings, "rotate-key")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    assert_ne!(new_key, old_key);
    if backend == Backend::Kurrent {
        assert_eq!(
            new_key.lines().count(),
            2,
            "the old key is kept for KurrentDB's events, which are never rewritten"
        );
    } else {
        assert_eq!(
            new_key.lines().count(),
            1,
            "the old key was dropped after re-sealing"
        );
    }
    let text = raw_store_text(&app).await;
    check(&text, "after rotate-key");
    // Everything reads under the new key, in the daemon that keeps running…
    assert_eq!(
        app.get_json("/api/v1/external-id").await["external_id"],
        external_id
    );
    let rotated = app.harvest(&org_id).await;
    assert_eq!(rotated["last_harvest"]["outcome"], "completed");
    // …and after a restart that loads only the new key.
    let app = app.restart().await;
    assert_eq!(
        app.get_json("/api/v1/external-id").await["external_id"],
        external_id
    );
    assert_eq!(
        app.harvest(&org_id).await["last_harvest"]["outcome"],
        "completed"
    );
    app.stop().await;
}

async fn scenario_listing_and_badges_equal_an_independent_expectation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts: 40,
    })
    .await;
    let filters = json!({
        "limit_scope_ou_ids": [org.ous["Workloads"], org.ous["Sandbox"]],
        "exclude_name_prefixes": ["account-002"],
        "auto_remove_suspended": false,
        "auto_badge": true
    });
    let org_id = register_with(&app, &org, filters.clone()).await;
    app.harvest(&org_id).await;
    assert_eq!(
        app.listing(&org_id).await,
        expected_listing(&org.truth().await, &filters)
    );

    // In moto: tags change, accounts cross the scope boundary both ways, some close, one goes.
    org.tag(&org.members[1], "env", "scenario").await;
    org.untag(&org.members[5], "team").await;
    org.move_account(&org.members[1], &org.root).await; // Dev → out of scope
    org.move_account(&org.members[6], &org.ous["Dev"]).await; // Security → in scope
    org.close(&org.members[8]).await;
    org.close(&org.members[9]).await;
    org.remove(&org.members[10]).await;
    // Over the API: suspended accounts go, Security joins the scope, badges stay on.
    let filters = json!({
        "limit_scope_ou_ids": [org.ous["Workloads"], org.ous["Sandbox"], org.ous["Security"]],
        "exclude_name_prefixes": ["account-002", "account-0030"],
        "auto_remove_suspended": true,
        "auto_badge": true
    });
    let changed = app
        .patch(
            &format!("/api/v1/organizations/{org_id}"),
            &json!({"filters": filters}),
        )
        .await;
    expect_json(changed, StatusCode::OK).await;
    app.harvest(&org_id).await;

    let truth = org.truth().await;
    let expected = expected_listing(&truth, &filters);
    assert_eq!(app.listing(&org_id).await, expected);
    for (id, account) in &expected {
        assert_eq!(
            app.badges(id).await,
            expected_badges(account, &org_id, "prod", true),
            "badges of {id}"
        );
    }
    app.stop().await;
}

async fn organization_removal_empties_its_listing_and_keeps_history(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 3,
        },
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v1/organizations/{org_id}"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(app.listing(&org_id).await.is_empty());
    let gone = app.get(&format!("/api/v1/organizations/{org_id}")).await;
    expect_error(gone, StatusCode::NOT_FOUND, "not_found").await;
    let history = app
        .get_json(&format!("/api/v1/accounts/{}/events", org.members[0]))
        .await;
    let last = history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "AccountRemoved");
    assert_eq!(last["data"]["reason"], "organization_removed");
    // It can be registered again.
    app.register(&org).await;
    app.harvest(&org_id).await;
    assert_eq!(app.listing(&org_id).await, org.truth().await);
    app.stop().await;
}

async fn manual_badges_and_search(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: &[],
            accounts: 6,
        },
    )
    .await;
    // account-0001 has env=dev; account-0002 has env=test and team=red.
    let [a, b] = [&org.members[1], &org.members[2]];
    for account in [a, b] {
        let added = app
            .post(
                &format!("/api/v1/accounts/{account}/badges"),
                &json!({"key": "owner", "value": "ann"}),
            )
            .await;
        expect_json(added, StatusCode::OK).await;
    }
    let reserved = app
        .post(
            &format!("/api/v1/accounts/{a}/badges"),
            &json!({"key": "system.x", "value": "y"}),
        )
        .await;
    expect_error(reserved, StatusCode::BAD_REQUEST, "reserved_badge").await;
    let reserved = app
        .post(
            &format!("/api/v1/accounts/{a}/badges"),
            &json!({"key": "cloud_org_path", "value": "y"}),
        )
        .await;
    expect_error(reserved, StatusCode::BAD_REQUEST, "reserved_badge").await;

    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(
        account_ids(&app.get_json("/api/v1/accounts?badge=owner:ann").await),
        both
    );
    // Every badge must match.
    assert_eq!(
        account_ids(
            &app.get_json("/api/v1/accounts?badge=owner:ann&badge=env:dev")
                .await
        ),
        vec![a.clone()]
    );
    assert_eq!(
        account_ids(
            &app.get_json(&format!(
                "/api/v1/accounts?badge=system.cloud_organization:{org_id}&q=ACCOUNT-0002"
            ))
            .await
        ),
        vec![b.clone()]
    );
    assert_eq!(
        account_ids(&app.get_json(&format!("/api/v1/accounts?q={a}")).await),
        vec![a.clone()]
    );
    assert_eq!(
        account_ids(&app.get_json("/api/v1/accounts?q=0002@example").await),
        vec![b.clone()]
    );
    assert!(
        account_ids(&app.get_json("/api/v1/accounts?q=%25").await).is_empty(),
        "% is literal"
    );

    assert_eq!(
        app.delete(&format!("/api/v1/accounts/{a}/badges/owner"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let again = app
        .delete(&format!("/api/v1/accounts/{a}/badges/owner"))
        .await;
    expect_error(again, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        account_ids(&app.get_json("/api/v1/accounts?badge=owner:ann").await),
        vec![b.clone()]
    );
    app.stop().await;
}
