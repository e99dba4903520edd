//! Drives the test server with the real `eventstore` 4 client (and, for the
//! filtered `$all` read the client cannot make, with a plain tonic client).

use std::future::Future;
use std::time::Duration;

use eventstore::{
    AppendToStreamOptions, BatchAppendOptions, Client, ClientSettings, CurrentRevision,
    DeleteStreamOptions, Error, EventData, ExpectedRevision, Position, ReadAllOptions,
    ReadStreamOptions, RecordedEvent, StreamMetadata, StreamPosition, SubscribeToAllOptions,
    SubscribeToStreamOptions, SubscriptionEvent, SubscriptionFilter, TombstoneStreamOptions,
};
use kurrentdb_test_server::proto::event_store::client::streams::read_req::options::{
    self, all_options, filter_options, AllOptions, FilterOptions, StreamOption,
};
use kurrentdb_test_server::proto::event_store::client::streams::{
    read_req, read_resp, ReadReq, ReadResp,
};
use kurrentdb_test_server::proto::event_store::client::Empty;
use kurrentdb_test_server::TestServer;
use tonic::codegen::http::uri::PathAndQuery;

/// Every wait on the server is bounded by this, so a test fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(10);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} took more than {PATIENCE:?}"))
}

fn client(server: &TestServer) -> Client {
    let settings: ClientSettings = server
        .url()
        .parse()
        .expect("the server's URL is a connection string");
    Client::new(settings).expect("a client for the test server")
}

fn event(n: u32) -> EventData {
    EventData::json("Numbered", &serde_json::json!({ "n": n })).expect("JSON payload")
}

fn number(event: &RecordedEvent) -> u32 {
    event.as_json::<serde_json::Value>().expect("JSON payload")["n"]
        .as_u64()
        .expect("a number") as u32
}

async fn append(
    client: &Client,
    stream: &str,
    expected: ExpectedRevision,
    events: Vec<EventData>,
) -> eventstore::Result<eventstore::WriteResult> {
    let options = AppendToStreamOptions::default().expected_revision(expected);
    within(
        "an append",
        client.append_to_stream(stream, &options, events),
    )
    .await
}

async fn read_stream(
    client: &Client,
    stream: &str,
    options: ReadStreamOptions,
) -> eventstore::Result<Vec<RecordedEvent>> {
    within("a stream read", async {
        let mut read = client.read_stream(stream, &options).await?;
        let mut events = Vec::new();
        while let Some(event) = read.next().await? {
            events.push(event.event.expect("an event"));
        }
        Ok(events)
    })
    .await
}

async fn read_all(client: &Client, options: ReadAllOptions) -> Vec<RecordedEvent> {
    within("a read of $all", async {
        let mut read = client.read_all(&options).await.expect("reading $all");
        let mut events = Vec::new();
        while let Some(event) = read.next().await.expect("reading $all") {
            events.push(event.event.expect("an event"));
        }
        events
    })
    .await
}

fn revisions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.revision).collect()
}

#[tokio::test]
async fn append_honours_each_expected_revision() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);

    let missing = append(
        &client,
        "orders-1",
        ExpectedRevision::StreamExists,
        vec![event(0)],
    )
    .await;
    assert!(
        matches!(
            missing,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::NoStream,
                expected: ExpectedRevision::StreamExists
            })
        ),
        "{missing:?}"
    );
    let exact_on_missing = append(
        &client,
        "orders-1",
        ExpectedRevision::Exact(0),
        vec![event(0)],
    )
    .await;
    assert!(
        matches!(
            exact_on_missing,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::NoStream,
                expected: ExpectedRevision::Exact(0)
            })
        ),
        "{exact_on_missing:?}"
    );

    let first = append(
        &client,
        "orders-1",
        ExpectedRevision::NoStream,
        vec![event(0), event(1)],
    )
    .await
    .unwrap();
    assert_eq!(first.next_expected_version, 1);

    let again = append(
        &client,
        "orders-1",
        ExpectedRevision::NoStream,
        vec![event(2)],
    )
    .await;
    assert!(
        matches!(
            again,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::Current(1),
                expected: ExpectedRevision::NoStream
            })
        ),
        "{again:?}"
    );
    let stale = append(
        &client,
        "orders-1",
        ExpectedRevision::Exact(0),
        vec![event(2)],
    )
    .await;
    assert!(
        matches!(
            stale,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::Current(1),
                expected: ExpectedRevision::Exact(0)
            })
        ),
        "{stale:?}"
    );
    let ahead = append(
        &client,
        "orders-1",
        ExpectedRevision::Exact(7),
        vec![event(2)],
    )
    .await;
    assert!(
        matches!(
            ahead,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::Current(1),
                expected: ExpectedRevision::Exact(7)
            })
        ),
        "{ahead:?}"
    );

    let exact = append(
        &client,
        "orders-1",
        ExpectedRevision::Exact(1),
        vec![event(2)],
    )
    .await
    .unwrap();
    let exists = append(
        &client,
        "orders-1",
        ExpectedRevision::StreamExists,
        vec![event(3)],
    )
    .await
    .unwrap();
    let any = append(&client, "orders-1", ExpectedRevision::Any, vec![event(4)])
        .await
        .unwrap();
    assert_eq!(
        [
            exact.next_expected_version,
            exists.next_expected_version,
            any.next_expected_version
        ],
        [2, 3, 4]
    );
    let positions = [
        first.position,
        exact.position,
        exists.position,
        any.position,
    ];
    assert!(
        positions.windows(2).all(|w| w[0].commit < w[1].commit),
        "{positions:?}"
    );
    assert!(
        positions.iter().all(|p| p.commit == p.prepare),
        "{positions:?}"
    );

    let events = read_stream(&client, "orders-1", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(number).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(
        events[4].position, any.position,
        "an append reports the position of its last event"
    );
    assert!(events
        .iter()
        .all(|e| e.event_type == "Numbered" && e.is_json));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - events[0].created.timestamp()).abs() < 60,
        "created is stamped by the server: {}",
        events[0].created
    );

    server.stop().await;
}

#[tokio::test]
async fn a_retried_append_is_not_written_twice() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    let id = uuid::Uuid::new_v4();

    let first = append(
        &client,
        "retried",
        ExpectedRevision::Any,
        vec![event(0).id(id)],
    )
    .await
    .unwrap();
    let retry = append(
        &client,
        "retried",
        ExpectedRevision::Any,
        vec![event(0).id(id)],
    )
    .await
    .unwrap();
    let retry_exact = append(
        &client,
        "retried",
        ExpectedRevision::NoStream,
        vec![event(0).id(id)],
    )
    .await
    .unwrap();

    for answer in [&retry, &retry_exact] {
        assert_eq!(
            (answer.next_expected_version, answer.position),
            (first.next_expected_version, first.position)
        );
    }
    let events = read_stream(&client, "retried", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, id);
    server.stop().await;
}

#[tokio::test]
async fn batch_append_answers_each_write_by_correlation() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    let batch = within(
        "opening a batch append",
        client.batch_append(&BatchAppendOptions::default()),
    )
    .await
    .expect("the server advertises batch append");

    let a = within(
        "a batch write",
        batch.append_to_stream(
            "batch-a",
            ExpectedRevision::NoStream,
            vec![event(0), event(1)],
        ),
    )
    .await
    .unwrap();
    let b = within(
        "a batch write",
        batch.append_to_stream("batch-b", ExpectedRevision::Any, vec![event(0)]),
    )
    .await
    .unwrap();
    let a2 = within(
        "a batch write",
        batch.append_to_stream("batch-a", ExpectedRevision::Exact(1), vec![event(2)]),
    )
    .await
    .unwrap();
    assert_eq!(
        (a.stream_name(), a.current_revision()),
        ("batch-a", Some(1))
    );
    assert_eq!(
        (b.stream_name(), b.current_revision()),
        ("batch-b", Some(0))
    );
    assert_eq!(a2.current_revision(), Some(2));
    let positions: Vec<Position> = [&a, &b, &a2]
        .iter()
        .map(|r| r.current_position().expect("a position"))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0].commit < w[1].commit),
        "{positions:?}"
    );

    // The client ends its batch session after a failed write, so this comes last.
    let wrong = within(
        "a batch write",
        batch.append_to_stream("batch-a", ExpectedRevision::NoStream, vec![event(3)]),
    )
    .await;
    assert!(
        matches!(&wrong, Err(Error::Grpc { code: tonic::Code::AlreadyExists, message }) if message == "WrongExpectedVersion"),
        "{wrong:?}"
    );

    let events = read_stream(&client, "batch-a", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(events.iter().map(number).collect::<Vec<_>>(), [0, 1, 2]);
    server.stop().await;
}

#[tokio::test]
async fn reads_a_stream_both_ways_and_reports_a_missing_one() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    append(
        &client,
        "letters",
        ExpectedRevision::NoStream,
        (0..5).map(event).collect(),
    )
    .await
    .unwrap();

    let forwards = ReadStreamOptions::default()
        .forwards()
        .position(StreamPosition::Position(1))
        .max_count(3);
    assert_eq!(
        revisions(&read_stream(&client, "letters", forwards).await.unwrap()),
        [1, 2, 3]
    );
    let backwards = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::End)
        .max_count(2);
    assert_eq!(
        revisions(&read_stream(&client, "letters", backwards).await.unwrap()),
        [4, 3]
    );
    let backwards_from = ReadStreamOptions::default()
        .backwards()
        .position(StreamPosition::Position(2));
    assert_eq!(
        revisions(
            &read_stream(&client, "letters", backwards_from)
                .await
                .unwrap()
        ),
        [2, 1, 0]
    );
    let past_the_end = ReadStreamOptions::default()
        .position(StreamPosition::End)
        .forwards();
    assert!(read_stream(&client, "letters", past_the_end)
        .await
        .unwrap()
        .is_empty());

    let missing = read_stream(&client, "no-such-stream", ReadStreamOptions::default()).await;
    assert!(
        matches!(missing, Err(Error::ResourceNotFound)),
        "{missing:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn reads_all_both_ways_from_a_position() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    append(&client, "left-1", ExpectedRevision::Any, vec![event(0)])
        .await
        .unwrap();
    let middle = append(&client, "right-1", ExpectedRevision::Any, vec![event(1)])
        .await
        .unwrap();
    append(&client, "left-2", ExpectedRevision::Any, vec![event(2)])
        .await
        .unwrap();

    let all = read_all(&client, ReadAllOptions::default()).await;
    assert_eq!(
        all.iter().map(number).collect::<Vec<_>>(),
        [0, 1, 2],
        "a fresh server's $all holds no system events"
    );
    assert!(all
        .windows(2)
        .all(|w| w[0].position.commit < w[1].position.commit));

    let from = StreamPosition::Position(middle.position);
    let forwards = read_all(&client, ReadAllOptions::default().forwards().position(from)).await;
    assert_eq!(
        forwards.iter().map(number).collect::<Vec<_>>(),
        [1, 2],
        "forwards includes the position"
    );
    let backwards = read_all(
        &client,
        ReadAllOptions::default().backwards().position(from),
    )
    .await;
    assert_eq!(
        backwards.iter().map(number).collect::<Vec<_>>(),
        [0],
        "backwards excludes the position"
    );
    let last = read_all(
        &client,
        ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1),
    )
    .await;
    assert_eq!(last.iter().map(number).collect::<Vec<_>>(), [2]);
    server.stop().await;
}

/// Reads `$all` with a stream-prefix filter, which the eventstore 4 client
/// cannot ask for, straight over gRPC.
async fn filtered_read_all(
    server: &TestServer,
    prefix: &str,
    from: all_options::AllOption,
    backwards: bool,
) -> Vec<(String, u64)> {
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.port()))
            .unwrap();
    let channel = within("connecting", endpoint.connect()).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    within("a ready channel", grpc.ready()).await.unwrap();
    let request = ReadReq {
        options: Some(read_req::Options {
            stream_option: Some(StreamOption::All(AllOptions {
                all_option: Some(from),
            })),
            read_direction: if backwards {
                options::ReadDirection::Backwards
            } else {
                options::ReadDirection::Forwards
            } as i32,
            resolve_links: false,
            count_option: Some(options::CountOption::Count(100)),
            filter_option: Some(options::FilterOption::Filter(FilterOptions {
                filter: Some(filter_options::Filter::StreamIdentifier(
                    filter_options::Expression {
                        regex: String::new(),
                        prefix: vec![prefix.to_owned()],
                    },
                )),
                window: Some(filter_options::Window::Count(Empty {})),
                checkpoint_interval_multiplier: 1,
            })),
            uuid_option: Some(options::UuidOption {
                content: Some(options::uuid_option::Content::String(Empty {})),
            }),
            control_option: None,
        }),
    };
    let path = PathAndQuery::from_static("/event_store.client.streams.Streams/Read");
    let codec = tonic::codec::ProstCodec::<ReadReq, ReadResp>::default();
    let mut responses = within(
        "a filtered read",
        grpc.server_streaming(tonic::Request::new(request), path, codec),
    )
    .await
    .unwrap()
    .into_inner();
    let mut events = Vec::new();
    while let Some(response) = within("a filtered read", responses.message())
        .await
        .unwrap()
    {
        if let Some(read_resp::Content::Event(e)) = response.content {
            let recorded = e.event.expect("an event");
            let stream =
                String::from_utf8(recorded.stream_identifier.unwrap().stream_name.to_vec())
                    .unwrap();
            events.push((stream, recorded.commit_position));
        }
    }
    events
}

#[tokio::test]
async fn filters_reads_of_all_by_stream_prefix() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    let mut positions = Vec::new();
    for stream in ["left-1", "right-1", "left-2", "right-2", "left-3"] {
        positions.push(
            append(&client, stream, ExpectedRevision::Any, vec![event(0)])
                .await
                .unwrap()
                .position
                .commit,
        );
    }
    let at = |p: u64| {
        all_options::AllOption::Position(options::Position {
            commit_position: p,
            prepare_position: p,
        })
    };

    let forwards = filtered_read_all(&server, "left-", at(positions[1]), false).await;
    assert_eq!(
        forwards,
        [
            ("left-2".to_owned(), positions[2]),
            ("left-3".to_owned(), positions[4])
        ]
    );
    let backwards = filtered_read_all(&server, "left-", at(positions[4]), true).await;
    assert_eq!(
        backwards,
        [
            ("left-2".to_owned(), positions[2]),
            ("left-1".to_owned(), positions[0])
        ]
    );
    let everything = filtered_read_all(
        &server,
        "right-",
        all_options::AllOption::Start(Empty {}),
        false,
    )
    .await;
    assert_eq!(
        everything
            .iter()
            .map(|(s, _)| s.as_str())
            .collect::<Vec<_>>(),
        ["right-1", "right-2"]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_to_all_catches_up_then_goes_live_in_order() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    for n in 0..3 {
        append(
            &client,
            &format!("sub-{n}"),
            ExpectedRevision::Any,
            vec![event(n)],
        )
        .await
        .unwrap();
    }
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;

    let mut received = Vec::new();
    let mut caught_up_after = None;
    let mut confirmed = false;
    let mut live_sent = false;
    while received.len() < 6 {
        match within(
            "the next subscription event",
            subscription.next_subscription_event(),
        )
        .await
        .unwrap()
        {
            SubscriptionEvent::Confirmed(_) => {
                assert!(received.is_empty(), "the confirmation comes first");
                confirmed = true;
            }
            SubscriptionEvent::EventAppeared(e) => received.push(number(e.get_original_event())),
            SubscriptionEvent::CaughtUp => {
                caught_up_after = Some(received.len());
                if !live_sent {
                    live_sent = true;
                    for n in 3..6 {
                        append(
                            &client,
                            &format!("sub-{n}"),
                            ExpectedRevision::Any,
                            vec![event(n)],
                        )
                        .await
                        .unwrap();
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(confirmed);
    assert_eq!(
        caught_up_after,
        Some(3),
        "caught up once, after the old events"
    );
    assert_eq!(received, [0, 1, 2, 3, 4, 5]);

    append(&client, "sub-6", ExpectedRevision::Any, vec![event(6)])
        .await
        .unwrap();
    let next = within("a live event", subscription.next()).await.unwrap();
    assert_eq!(
        number(next.get_original_event()),
        6,
        "no event is sent twice"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_filtered_subscription_sends_matching_events_and_checkpoints() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    let mut last = Position::start();
    for n in 0..6 {
        let stream = if n % 2 == 0 {
            format!("even-{n}")
        } else {
            format!("odd-{n}")
        };
        last = append(&client, &stream, ExpectedRevision::Any, vec![event(n)])
            .await
            .unwrap()
            .position;
    }
    let filter = SubscriptionFilter::on_stream_name()
        .add_prefix("even-")
        .max(2);
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter))
        .await;

    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    loop {
        match within(
            "the next subscription event",
            subscription.next_subscription_event(),
        )
        .await
        .unwrap()
        {
            SubscriptionEvent::EventAppeared(e) => events.push(number(e.get_original_event())),
            SubscriptionEvent::Checkpoint(p) => checkpoints.push(p),
            SubscriptionEvent::CaughtUp => break,
            SubscriptionEvent::Confirmed(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(events, [0, 2, 4]);
    assert!(
        checkpoints.len() >= 3,
        "one every two records considered: {checkpoints:?}"
    );
    assert_eq!(
        checkpoints.last(),
        Some(&last),
        "the last checkpoint is where catch-up ended"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_subscription_to_a_stream_starts_after_its_revision() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    append(
        &client,
        "watched",
        ExpectedRevision::NoStream,
        (0..3).map(event).collect(),
    )
    .await
    .unwrap();
    append(
        &client,
        "unwatched",
        ExpectedRevision::NoStream,
        vec![event(100)],
    )
    .await
    .unwrap();

    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Position(0));
    let mut subscription = client.subscribe_to_stream("watched", &options).await;
    let first = within("an event", subscription.next()).await.unwrap();
    let second = within("an event", subscription.next()).await.unwrap();
    append(
        &client,
        "unwatched",
        ExpectedRevision::Any,
        vec![event(101)],
    )
    .await
    .unwrap();
    append(
        &client,
        "watched",
        ExpectedRevision::Exact(2),
        vec![event(3)],
    )
    .await
    .unwrap();
    let live = within("a live event", subscription.next()).await.unwrap();
    assert_eq!(
        [first, second, live]
            .iter()
            .map(|e| e.get_original_event().revision)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );

    within(
        "a tombstone",
        client.tombstone_stream("watched", &TombstoneStreamOptions::default()),
    )
    .await
    .unwrap();
    let deleted = within("the end of the subscription", subscription.next()).await;
    assert!(
        matches!(deleted, Err(Error::ResourceDeleted)),
        "{deleted:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn soft_delete_hides_and_recreates_tombstone_forbids() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    append(
        &client,
        "soft",
        ExpectedRevision::NoStream,
        vec![event(0), event(1)],
    )
    .await
    .unwrap();

    let wrong = within(
        "a delete",
        client.delete_stream(
            "soft",
            &DeleteStreamOptions::default().expected_revision(ExpectedRevision::Exact(0)),
        ),
    )
    .await;
    assert!(
        matches!(
            wrong,
            Err(Error::Grpc {
                code: tonic::Code::FailedPrecondition,
                ..
            })
        ),
        "{wrong:?}"
    );
    within(
        "a delete",
        client.delete_stream(
            "soft",
            &DeleteStreamOptions::default().expected_revision(ExpectedRevision::Exact(1)),
        ),
    )
    .await
    .unwrap();
    let gone = read_stream(&client, "soft", ReadStreamOptions::default()).await;
    assert!(matches!(gone, Err(Error::ResourceNotFound)), "{gone:?}");

    let recreated = append(&client, "soft", ExpectedRevision::NoStream, vec![event(2)])
        .await
        .unwrap();
    assert_eq!(
        recreated.next_expected_version, 2,
        "revisions go on after a soft delete"
    );
    let events = read_stream(&client, "soft", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(events.iter().map(number).collect::<Vec<_>>(), [2]);

    within(
        "a tombstone",
        client.tombstone_stream("soft", &TombstoneStreamOptions::default()),
    )
    .await
    .unwrap();
    let read = read_stream(&client, "soft", ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceDeleted)), "{read:?}");
    let write = append(&client, "soft", ExpectedRevision::Any, vec![event(3)]).await;
    assert!(matches!(write, Err(Error::ResourceDeleted)), "{write:?}");
    server.stop().await;
}

#[tokio::test]
async fn stream_metadata_truncates_reads() {
    let server = TestServer::start(0, None).await.unwrap();
    let client = client(&server);
    append(
        &client,
        "sealed",
        ExpectedRevision::NoStream,
        (0..5).map(event).collect(),
    )
    .await
    .unwrap();

    let metadata: StreamMetadata = StreamMetadata::builder().truncate_before(3).build();
    within(
        "setting metadata",
        client.set_stream_metadata("sealed", &AppendToStreamOptions::default(), &metadata),
    )
    .await
    .unwrap();
    let events = read_stream(&client, "sealed", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(revisions(&events), [3, 4]);

    let metadata = StreamMetadata::builder().max_count(1).build();
    within(
        "setting metadata",
        client.set_stream_metadata("sealed", &AppendToStreamOptions::default(), &metadata),
    )
    .await
    .unwrap();
    let events = read_stream(&client, "sealed", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(revisions(&events), [4]);
    let all = read_all(&client, ReadAllOptions::default()).await;
    assert_eq!(
        all.iter().filter(|e| e.stream_id == "sealed").count(),
        5,
        "$all still shows every event"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_restart_on_the_same_data_keeps_every_event_and_clients_reconnect() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(0, Some(data.path().to_owned()))
        .await
        .unwrap();
    let port = server.port();
    let client = client(&server);
    let written = append(
        &client,
        "durable",
        ExpectedRevision::NoStream,
        (0..3).map(event).collect(),
    )
    .await
    .unwrap();
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default())
        .await;
    assert!(matches!(
        within("a confirmation", subscription.next_subscription_event()).await,
        Ok(SubscriptionEvent::Confirmed(_))
    ));

    server.stop().await;
    let dropped = within("the subscription to end", async {
        loop {
            match subscription.next_subscription_event().await {
                Err(e) => break e,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(matches!(dropped, Error::ServerError(_)), "{dropped:?}");
    let down = append(&client, "durable", ExpectedRevision::Any, vec![event(99)]).await;
    assert!(down.is_err(), "a stopped server takes no writes: {down:?}");

    let server = TestServer::start(port, Some(data.path().to_owned()))
        .await
        .unwrap();
    // The same client object reconnects by itself; its first call may still
    // meet the connection the old server closed.
    let again = within("a write after the restart", async {
        loop {
            if let Ok(written) = client
                .append_to_stream(
                    "durable",
                    &AppendToStreamOptions::default().expected_revision(ExpectedRevision::Exact(2)),
                    vec![event(3)],
                )
                .await
            {
                break written;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(again.next_expected_version, 3);
    assert!(again.position.commit > written.position.commit);

    let events = read_stream(&client, "durable", ReadStreamOptions::default())
        .await
        .unwrap();
    assert_eq!(events.iter().map(number).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let before_restart = read_all(
        &client,
        ReadAllOptions::default().position(StreamPosition::Position(written.position)),
    )
    .await;
    assert_eq!(
        before_restart[0].position, written.position,
        "positions survive the restart"
    );
    server.stop().await;
}
