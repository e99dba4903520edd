//! Changes from Organizations' own events (R16): the change is made in moto, then the event
//! AWS documents for that call is put on the organization's queue, as EventBridge would, and
//! the listing follows within seconds. Redelivery, duplicates, out-of-order arrivals, poison
//! messages and a queue deleted under its poller change nothing they should not.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::moto::{MotoOrg, Shape, NESTED};
use crate::on_every_store;

/// The CloudTrail event AWS documents for `name`, forwarded by EventBridge, with its
/// placeholders (`$ACCOUNT_ID`, `$OU_ID`…) filled in from `values` and a fresh event id.
fn fixture(name: &str, org: &MotoOrg, values: &[(&str, &str)]) -> (String, String) {
    let path = format!(
        "{}/tests/api/fixtures/cloudtrail/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event_id = uuid::Uuid::new_v4().to_string();
    let mut body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (key, value) in values.iter().copied().chain([
        ("EVENT_ID", event_id.as_str()),
        ("MANAGEMENT", org.management_account.as_str()),
        ("ORG_ID", org.id.as_str()),
    ]) {
        body = body.replace(&format!("${key}"), value);
    }
    assert!(
        !body.contains('$'),
        "{name}: a placeholder is left in {body}"
    );
    (body, event_id)
}

/// Polls `check` every 50 ms until it answers something, for up to 20 s.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A daemon on `backend` polling the queue of a harvested moto organization; answers it, the
/// organization, its id and the queue.
async fn following(backend: Backend, accounts: usize) -> (TestApp, MotoOrg, String, String) {
    following_with(backend, accounts, Duration::from_secs(1)).await
}

/// [`following`], each read of the queue waiting up to `queue_wait`.
async fn following_with(
    backend: Backend,
    accounts: usize,
    queue_wait: Duration,
) -> (TestApp, MotoOrg, String, String) {
    let app = TestApp::spawn_tuned(backend, |settings| {
        settings.harvest.tick = Duration::from_millis(200);
        settings.harvest.queue_wait = queue_wait;
    })
    .await;
    let org = MotoOrg::create(Shape {
        ous: NESTED,
        accounts,
    })
    .await;
    let queue = org.create_queue("orgsync-events", 1).await;
    let mut registration = org.registration("prod");
    registration["events_queue_url"] = json!(queue);
    let registered = app.post("/api/v1/organizations", &registration).await;
    let registered = crate::helpers::expect_json(registered, StatusCode::CREATED).await;
    assert_eq!(
        registered["events_queue"]["url"],
        queue.as_str(),
        "{registered}"
    );
    let org_id = registered["id"].as_str().unwrap().to_owned();
    app.harvest(&org_id).await;
    // The poller has read the queue once.
    eventually("the first read of the queue", || async {
        let org = app
            .get_json(&format!("/api/v1/organizations/{org_id}"))
            .await;
        org["events_queue"]["polled_at"].is_string().then_some(())
    })
    .await;
    (app, org, org_id, queue)
}

/// The account as REST shows it, once `done` holds of it.
async fn account_once(app: &TestApp, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually(what, || async {
        let response = app.get(&format!("/api/v1/accounts/{id}")).await;
        let account: Value = response.json().await.unwrap();
        done(&account).then_some(account)
    })
    .await
}

/// The last event of an account's history.
async fn last_event(app: &TestApp, id: &str) -> Value {
    let history = app
        .get_json(&format!("/api/v1/accounts/{id}/events?limit=1000"))
        .await;
    history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone()
}

/// Whether an account, as REST shows it, sits directly in `unit`.
fn sits_in(account: &Value, unit: &str) -> bool {
    account["org_path"]
        .as_array()
        .and_then(|path| path.last())
        .is_some_and(|last| last["id"] == unit)
}

/// The MoveAccount event of `account` from `from` to `to`.
fn move_event(org: &MotoOrg, account: &str, from: &str, to: &str) -> (String, String) {
    fixture(
        "MoveAccount",
        org,
        &[
            ("ACCOUNT_ID", account),
            ("SOURCE", from),
            ("DESTINATION", to),
        ],
    )
}

/// How many messages of `org_id`'s queue came out so, by `/metrics`.
async fn counted(app: &TestApp, org_id: &str, outcome: &str) -> u64 {
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let series =
        format!("orgsync_queue_messages_total{{organization=\"{org_id}\",outcome=\"{outcome}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

on_every_store!(each_kind_of_change_arrives_from_the_events_queue);

async fn each_kind_of_change_arrives_from_the_events_queue(backend: Backend) {
    let (app, org, org_id, queue) = following(backend, 4).await;
    let prod = org.ous["Prod"].clone();

    // CreateAccountResult: a new account, read from AWS with its place and tags.
    let created = org.create_account("account-new", Vec::new()).await;
    org.move_account(&created, &prod).await;
    let (body, event_id) = fixture("CreateAccountResult", &org, &[("ACCOUNT_ID", &created)]);
    org.send(&queue, &body).await;
    let account = account_once(&app, &created, "the created account", |a| {
        a["account_id"] == created.as_str()
    })
    .await;
    let path: Vec<&str> = account["org_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["Root", "Workloads", "Prod"]);
    assert_eq!(
        account["access"]["status"], "ok",
        "its member role was tried: {account}"
    );
    let discovered = &app
        .get_json(&format!("/api/v1/accounts/{created}/events"))
        .await["events"][0];
    assert_eq!(discovered["type"], "AccountDiscovered");
    assert_eq!(discovered["actor"], "event:CreateAccountResult");
    assert_eq!(discovered["cloudtrail_event_id"], event_id.as_str());

    // MoveAccount: its new path.
    let sandbox = org.ous["Sandbox"].clone();
    org.move_account(&created, &sandbox).await;
    let (body, event_id) = move_event(&org, &created, &prod, &sandbox);
    org.send(&queue, &body).await;
    account_once(&app, &created, "the move", |a| sits_in(a, &sandbox)).await;
    let moved = last_event(&app, &created).await;
    assert_eq!(moved["type"], "AccountMoved");
    assert_eq!(moved["actor"], "event:MoveAccount");
    assert_eq!(moved["cloudtrail_event_id"], event_id.as_str());
    let caller = format!(
        "arn:aws:sts::{}:assumed-role/Admin/alice",
        org.management_account
    );
    assert_eq!(moved["caller_arn"], caller.as_str());

    // TagResource and UntagResource: its tags and badges.
    org.tag(&created, "team", "payments").await;
    let (body, _) = fixture(
        "TagResource",
        &org,
        &[
            ("ACCOUNT_ID", &created),
            ("TAG_KEY", "team"),
            ("TAG_VALUE", "payments"),
        ],
    );
    org.send(&queue, &body).await;
    account_once(&app, &created, "the tag", |a| {
        a["tags"]["team"] == "payments"
    })
    .await;
    assert!(app.badges(&created).await.contains_key("team"));
    org.untag(&created, "team").await;
    let (body, _) = fixture(
        "UntagResource",
        &org,
        &[("ACCOUNT_ID", &created), ("TAG_KEY", "team")],
    );
    org.send(&queue, &body).await;
    account_once(&app, &created, "the untag", |a| {
        a["tags"].get("team").is_none()
    })
    .await;

    // UpdateOrganizationalUnit: the path of every account below the OU.
    let workloads = org.ous["Workloads"].clone();
    org.rename_ou(&workloads, "Apps").await;
    let (body, _) = fixture(
        "UpdateOrganizationalUnit",
        &org,
        &[("OU_ID", &workloads), ("OU_NAME", "Apps")],
    );
    org.send(&queue, &body).await;
    let below = org
        .truth()
        .await
        .into_iter()
        .filter(|(_, a)| {
            a["org_path"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["id"] == workloads.as_str())
        })
        .map(|(id, _)| id)
        .collect::<Vec<_>>();
    assert!(!below.is_empty());
    for id in &below {
        account_once(&app, id, "the rename", |a| {
            a["org_path"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["name"] == "Apps")
        })
        .await;
    }

    // CloseAccount: its state.
    let closing = org.members[0].clone();
    org.close(&closing).await;
    let (body, _) = fixture("CloseAccount", &org, &[("ACCOUNT_ID", &closing)]);
    org.send(&queue, &body).await;
    account_once(&app, &closing, "the closure", |a| a["state"] == "SUSPENDED").await;

    // RemoveAccountFromOrganization: it leaves.
    let leaving = org.members[1].clone();
    org.remove(&leaving).await;
    let (body, _) = fixture(
        "RemoveAccountFromOrganization",
        &org,
        &[("ACCOUNT_ID", &leaving)],
    );
    org.send(&queue, &body).await;
    eventually("the departure", || async {
        (app.get(&format!("/api/v1/accounts/{leaving}"))
            .await
            .status()
            == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    assert_eq!(
        last_event(&app, &leaving).await["type"],
        "AccountLeftOrganization"
    );

    // Anything else is deleted and counted, without a call to AWS.
    let calls = app.stub.organizations_calls();
    let (body, _) = fixture("CreatePolicy", &org, &[]);
    org.send(&queue, &body).await;
    eventually("the ignored event", || async {
        (counted(&app, &org_id, "ignored").await == 1).then_some(())
    })
    .await;
    assert_eq!(
        app.stub.organizations_calls(),
        calls,
        "an ignored event calls AWS"
    );
    eventually("an empty queue", || async {
        (org.queued(&queue).await == 0).then_some(())
    })
    .await;
    assert_eq!(counted(&app, &org_id, "applied").await, 7);
    app.stop().await;
}

/// How many events an account's history holds.
async fn history_length(app: &TestApp, id: &str) -> usize {
    app.history_types(id).await.len()
}

on_every_store!(redelivery_duplicates_disorder_and_poison_change_nothing);

async fn redelivery_duplicates_disorder_and_poison_change_nothing(backend: Backend) {
    let (app, org, org_id, queue) = following(backend, 3).await;
    let (prod, sandbox) = (org.ous["Prod"].clone(), org.ous["Sandbox"].clone());
    let root = org.root.clone();

    // A MoveAccount before the CreateAccountResult of its account: the account comes in
    // with the first, and the second changes nothing.
    let created = org.create_account("account-early", Vec::new()).await;
    org.move_account(&created, &prod).await;
    let (moved, _) = move_event(&org, &created, &root, &prod);
    org.send(&queue, &moved).await;
    account_once(&app, &created, "the early move", |a| sits_in(a, &prod)).await;
    let length = history_length(&app, &created).await;
    assert_eq!(app.history_types(&created).await[0], "AccountDiscovered");
    let (body, _) = fixture("CreateAccountResult", &org, &[("ACCOUNT_ID", &created)]);
    org.send(&queue, &body).await;
    eventually("the late creation", || async {
        (counted(&app, &org_id, "applied").await == 2).then_some(())
    })
    .await;
    assert_eq!(history_length(&app, &created).await, length);

    // The same message twice.
    org.send(&queue, &moved).await;
    eventually("the duplicate", || async {
        (counted(&app, &org_id, "applied").await == 3).then_some(())
    })
    .await;
    assert_eq!(history_length(&app, &created).await, length);

    // A crash between the commit and the delete, twice: the message comes again after its
    // visibility timeout, changes nothing, and is deleted at the third delivery.
    fail::cfg("events-before-delete", "2*return").unwrap();
    org.move_account(&created, &sandbox).await;
    let (body, _) = move_event(&org, &created, &prod, &sandbox);
    org.send(&queue, &body).await;
    // Committed, yet still on the queue: the delete did not happen.
    account_once(&app, &created, "the move before the crash", |a| {
        sits_in(a, &sandbox)
    })
    .await;
    assert_eq!(org.queued(&queue).await, 1, "the message was deleted");
    assert_eq!(counted(&app, &org_id, "applied").await, 3);
    eventually("the redelivered move", || async {
        (counted(&app, &org_id, "applied").await == 4).then_some(())
    })
    .await;
    fail::remove("events-before-delete");
    let types = app.history_types(&created).await;
    assert_eq!(
        types.len(),
        length + 1,
        "one move, however often delivered: {types:?}"
    );
    assert_eq!(types.last().unwrap(), "AccountMoved");
    let account = app.get_json(&format!("/api/v1/accounts/{created}")).await;
    assert!(sits_in(&account, &sandbox), "{account}");

    // A message that is no Organizations event: deleted and counted.
    org.send(&queue, "{\"not\": \"an event\"}").await;
    org.send(&queue, "\u{1}binary\u{0}").await;
    eventually("the poison", || async {
        (counted(&app, &org_id, "unreadable").await == 2).then_some(())
    })
    .await;
    eventually("an empty queue", || async {
        (org.queued(&queue).await == 0).then_some(())
    })
    .await;
    app.stop().await;
}

on_every_store!(a_queue_deleted_under_its_poller_shows_on_the_organization_alone);

async fn a_queue_deleted_under_its_poller_shows_on_the_organization_alone(backend: Backend) {
    let (app, org, org_id, queue) = following(backend, 2).await;
    org.delete_queue(&queue).await;
    let error = eventually("the queue's error", || async {
        let org = app
            .get_json(&format!("/api/v1/organizations/{org_id}"))
            .await;
        org["events_queue"]["error"].as_str().map(str::to_owned)
    })
    .await;
    assert!(error.contains("sqs:ReceiveMessage"), "{error}");
    assert!(
        !error.contains("OrgSync-Org-Role"),
        "the sealed role shows: {error}"
    );
    // Nothing else stops: a harvest completes, the API answers.
    let harvested = app.harvest(&org_id).await;
    assert_eq!(
        harvested["last_harvest"]["outcome"], "completed",
        "{harvested}"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    app.stop().await;
}

on_every_store!(the_events_queue_is_checked_through_the_org_role_before_it_is_stored);

async fn the_events_queue_is_checked_through_the_org_role_before_it_is_stored(backend: Backend) {
    let (app, org, org_id) = TestApp::harvested(
        backend,
        Shape {
            ous: NESTED,
            accounts: 1,
        },
    )
    .await;
    let path = format!("/api/v1/organizations/{org_id}");
    let missing = format!(
        "{}/{}/nowhere",
        crate::moto::moto_url(),
        org.management_account
    );
    let refused = app
        .patch(&path, &json!({"events_queue_url": missing}))
        .await;
    let refused = crate::helpers::expect_error(
        refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "events_queue_unreachable",
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sqs:GetQueueAttributes"),
        "{refused}"
    );
    let malformed = app
        .patch(&path, &json!({"events_queue_url": "ftp://example.com/q"}))
        .await;
    crate::helpers::expect_error(malformed, StatusCode::BAD_REQUEST, "invalid_field").await;
    assert_eq!(app.get_json(&path).await["events_queue"], Value::Null);

    // Set over GraphQL, then cleared over REST.
    let queue = org.create_queue("orgsync-events", 30).await;
    let set = crate::graphql::data(
        &app,
        "mutation($id: ID!, $url: String) { updateOrganization(id: $id, input: {eventsQueueUrl: $url}) { eventsQueue { url } } }",
        json!({"id": org_id, "url": queue}),
    )
    .await;
    assert_eq!(
        set["updateOrganization"]["eventsQueue"]["url"],
        queue.as_str()
    );
    let cleared = app.patch(&path, &json!({"events_queue_url": null})).await;
    let cleared = crate::helpers::expect_json(cleared, StatusCode::OK).await;
    assert_eq!(cleared["events_queue"], Value::Null, "{cleared}");
    let types: Vec<String> = app.get_json("/api/v1/events?limit=1000").await["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "EventsQueueChanged")
        .map(|e| e["data"]["url"].to_string())
        .collect();
    assert_eq!(types, [format!("\"{queue}\""), "null".to_owned()]);
    app.stop().await;
}

on_every_store!(paths_spare_the_walk_up_the_parents_where_aws_gives_them);

/// moto's DescribeAccount answers no `Paths`: the refresh walks up the parents to a unit the
/// listing knows. Where AWS gives them (the stub adds them, as AWS answers), it walks
/// nothing: DescribeAccount and ListTagsForResource are the change's only Organizations calls.
async fn paths_spare_the_walk_up_the_parents_where_aws_gives_them(backend: Backend) {
    let (app, org, org_id, queue) = following(backend, 2).await;
    // The listing knows Workloads (its second account is in Dev, below it), not Fresh.
    let fresh = org.create_ou("Fresh", &org.ous["Workloads"]).await;
    let expected = ["Root", "Workloads", "Fresh"];
    let path_names = |account: &Value| -> Vec<String> {
        account["org_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|unit| unit["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let calls = |app: &TestApp| {
        (
            app.stub.organizations_calls(),
            app.stub.operation_calls("ListParents"),
        )
    };

    // Walked: the account's parent is new to the listing, its parent is known.
    let walked = org.create_account("account-walked", Vec::new()).await;
    org.move_account(&walked, &fresh).await;
    let before = calls(&app);
    let (body, _) = fixture("CreateAccountResult", &org, &[("ACCOUNT_ID", &walked)]);
    org.send(&queue, &body).await;
    let account = account_once(&app, &walked, "the walked account", |a| {
        a["account_id"] == walked.as_str()
    })
    .await;
    assert_eq!(path_names(&account), expected);
    let after = calls(&app);
    assert_eq!(
        after.1 - before.1,
        2,
        "ListParents of the account, then of Fresh"
    );
    // DescribeAccount, two ListParents, DescribeOrganizationalUnit of Fresh, ListTags.
    assert_eq!(after.0 - before.0, 5);
    eventually("the walked one applied", || async {
        (counted(&app, &org_id, "applied").await == 1).then_some(())
    })
    .await;

    // Given: no parent is asked for.
    app.stub.serve_paths();
    let given = org.create_account("account-given", Vec::new()).await;
    org.move_account(&given, &fresh).await;
    let before = calls(&app);
    let (body, _) = fixture("CreateAccountResult", &org, &[("ACCOUNT_ID", &given)]);
    org.send(&queue, &body).await;
    let account = account_once(&app, &given, "the given account", |a| {
        a["account_id"] == given.as_str()
    })
    .await;
    assert_eq!(path_names(&account), expected);
    let after = calls(&app);
    assert_eq!(after.1 - before.1, 0, "no ListParents");
    assert_eq!(
        after.0 - before.0,
        2,
        "DescribeAccount and ListTagsForResource"
    );
    app.stop().await;
}

/// `scripts/bench`'s events table: in a moto organization of 1000 accounts, 50 changes of each
/// kind, each timed from the message's arrival on the queue until the REST listing shows it,
/// with the Organizations calls its refresh made, beside a full harvest's time and calls.
/// Each queue read waits up to 20 s, the default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: scripts/bench runs it"]
async fn events_bench() {
    const CHANGES: usize = 50;
    let (app, org, org_id, queue) =
        following_with(Backend::Sqlite, 1000, Duration::from_secs(20)).await;
    let (prod, sandbox, workloads) = (
        org.ous["Prod"].clone(),
        org.ous["Sandbox"].clone(),
        org.ous["Workloads"].clone(),
    );
    let calls_before = app.stub.organizations_calls();
    let started = Instant::now();
    let harvested = app.harvest(&org_id).await;
    let harvest_seconds = started.elapsed().as_secs_f64();
    let harvest_calls = app.stub.organizations_calls() - calls_before;
    assert_eq!(harvested["account_count"], 1001);

    // Each change: made in moto, its event put on the queue, then the listing polled.
    let mut applied = counted(&app, &org_id, "applied").await;
    let mut rows = Vec::new();
    let mut members = org.members.iter().cloned();
    let measure = |name: &'static str| (name, Vec::new(), Vec::new());
    let account_shows = |id: String, done: Box<dyn Fn(&Value) -> bool>| {
        let app = &app;
        async move {
            loop {
                let response = app.get(&format!("/api/v1/accounts/{id}")).await;
                let account: Value = response.json().await.unwrap();
                if done(&account) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    macro_rules! timed {
        ($row:expr, $body:expr, $shown:expr) => {{
            let calls = app.stub.operations();
            let sent = Instant::now();
            org.send(&queue, &$body).await;
            $shown.await;
            $row.1.push(sent.elapsed().as_secs_f64() * 1000.0);
            // Its calls once its message is done with, not before.
            applied += 1;
            eventually("the message handled", || async {
                (counted(&app, &org_id, "applied").await == applied).then_some(())
            })
            .await;
            let mut made: Vec<(String, u64)> = app
                .stub
                .operations()
                .into_iter()
                .map(|(op, n)| {
                    let before = calls.get(&op).copied().unwrap_or(0);
                    (op, n - before)
                })
                .filter(|(_, n)| *n > 0)
                .collect();
            made.sort();
            $row.2.push(made);
        }};
    }
    let mut created = measure("CreateAccountResult (new account)");
    for i in 0..CHANGES {
        let id = org
            .create_account(&format!("bench-new-{i:03}"), Vec::new())
            .await;
        let (body, _) = fixture("CreateAccountResult", &org, &[("ACCOUNT_ID", &id)]);
        timed!(
            created,
            body,
            account_shows(
                id.clone(),
                Box::new(move |a| a["account_id"] == id.as_str())
            )
        );
    }
    rows.push(created);
    let mut moved = measure("MoveAccount");
    // Accounts that are not in Sandbox yet, so that each moves.
    let truth = org.truth().await;
    let movers: Vec<String> = members
        .by_ref()
        .filter(|id| !sits_in(&truth[id], &sandbox))
        .take(CHANGES)
        .collect();
    for id in &movers {
        org.move_account(id, &sandbox).await;
        let (body, _) = move_event(&org, id, &prod, &sandbox);
        let target = sandbox.clone();
        timed!(
            moved,
            body,
            account_shows(id.clone(), Box::new(move |a| sits_in(a, &target)))
        );
    }
    rows.push(moved);
    let mut tagged = measure("TagResource");
    for id in &movers {
        org.tag(id, "bench", "on").await;
        let (body, _) = fixture(
            "TagResource",
            &org,
            &[
                ("ACCOUNT_ID", id),
                ("TAG_KEY", "bench"),
                ("TAG_VALUE", "on"),
            ],
        );
        timed!(
            tagged,
            body,
            account_shows(id.clone(), Box::new(|a| a["tags"]["bench"] == "on"))
        );
    }
    rows.push(tagged);
    let mut untagged = measure("UntagResource");
    for id in &movers {
        org.untag(id, "bench").await;
        let (body, _) = fixture(
            "UntagResource",
            &org,
            &[("ACCOUNT_ID", id), ("TAG_KEY", "bench")],
        );
        timed!(
            untagged,
            body,
            account_shows(id.clone(), Box::new(|a| a["tags"].get("bench").is_none()))
        );
    }
    rows.push(untagged);
    let mut closed = measure("CloseAccount");
    for id in members.by_ref().take(CHANGES) {
        org.close(&id).await;
        let (body, _) = fixture("CloseAccount", &org, &[("ACCOUNT_ID", &id)]);
        timed!(
            closed,
            body,
            account_shows(id.clone(), Box::new(|a| a["state"] == "SUSPENDED"))
        );
    }
    rows.push(closed);
    let mut removed = measure("RemoveAccountFromOrganization");
    for id in members.by_ref().take(CHANGES) {
        org.remove(&id).await;
        let (body, _) = fixture(
            "RemoveAccountFromOrganization",
            &org,
            &[("ACCOUNT_ID", &id)],
        );
        timed!(
            removed,
            body,
            account_shows(id.clone(), Box::new(|a| a["error"]["code"] == "not_found"))
        );
    }
    rows.push(removed);
    let below = org
        .truth()
        .await
        .into_iter()
        .find(|(_, a)| sits_in(a, &workloads))
        .map(|(id, _)| id)
        .expect("an account in Workloads");
    let mut renamed = measure("UpdateOrganizationalUnit (Workloads, every account below)");
    for i in 0..CHANGES {
        let name = format!("Workloads-{i}");
        org.rename_ou(&workloads, &name).await;
        let (body, _) = fixture(
            "UpdateOrganizationalUnit",
            &org,
            &[("OU_ID", &workloads), ("OU_NAME", &name)],
        );
        timed!(
            renamed,
            body,
            account_shows(
                below.clone(),
                Box::new(move |a| a["org_path"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|u| u["name"] == name.as_str()))
            )
        );
    }
    rows.push(renamed);

    println!("#### Changes from the events queue (1000-account moto organization, SQLite)");
    println!("| change | n | median (ms) | p99 (ms) | Organizations calls per change (max) |");
    println!("|---|---|---|---|---|");
    for (name, mut latencies, calls) in rows {
        latencies.sort_by(f64::total_cmp);
        let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
        let total = |made: &Vec<(String, u64)>| made.iter().map(|(_, n)| n).sum::<u64>();
        let worst = calls.iter().max_by_key(|made| total(made)).unwrap();
        let breakdown: Vec<String> = worst.iter().map(|(op, n)| format!("{op} {n}")).collect();
        println!(
            "| {name} | {} | {:.0} | {:.0} | {} ({}) |",
            latencies.len(),
            latencies[latencies.len() / 2],
            p99,
            total(worst),
            breakdown.join(", ")
        );
    }
    println!(
        "| a full harvest, for comparison | 1 | {:.0} | | {harvest_calls} in all |",
        harvest_seconds * 1000.0
    );
    app.stop().await;
}
