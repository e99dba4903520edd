//! Prometheus metrics, served at `/metrics`: harvests by organization, AWS calls by operation
//! and outcome (throttles included: every attempt counts), event append latency, HTTP
//! requests by route and status, events queue messages by outcome, and the listing's accounts
//! by state.

use std::sync::LazyLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use aws_sdk_sts::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tracing::Instrument;

/// Every series of the process.
pub struct Metrics {
    registry: Registry,
    /// Harvest wall time, by organization.
    pub harvest_seconds: HistogramVec,
    /// Harvests, by organization and outcome (`completed`, `failed`, `error`).
    pub harvests: IntCounterVec,
    /// AWS call attempts, by operation and outcome (`ok`, AWS's error type, or the status).
    pub aws_calls: IntCounterVec,
    /// Time to append one command's events, or a harvest's batch of accounts' events with
    /// their projection, which commits with them.
    pub append_seconds: Histogram,
    /// HTTP requests, by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// Messages read from organizations' events queues, by organization and what came of
    /// them (`applied`, `ignored`, `unreadable`, `failed`).
    pub queue_messages: IntCounterVec,
    accounts: IntGaugeVec,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let registry =
            Registry::new_custom(Some("orgsync".into()), None).expect("a valid metrics prefix");
        let harvest_seconds = HistogramVec::new(
            HistogramOpts::new("harvest_duration_seconds", "Harvest wall time").buckets(vec![
                0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
            &["organization"],
        )
        .expect("valid metric");
        let harvests = IntCounterVec::new(
            Opts::new("harvests_total", "Harvests by outcome"),
            &["organization", "outcome"],
        )
        .expect("valid metric");
        let aws_calls = IntCounterVec::new(
            Opts::new(
                "aws_calls_total",
                "AWS call attempts by operation and outcome",
            ),
            &["operation", "outcome"],
        )
        .expect("valid metric");
        let append_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "event_append_seconds",
                "Time to append one command's events, or a harvest's batch of accounts' events \
                 with their projection",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let queue_messages = IntCounterVec::new(
            Opts::new(
                "queue_messages_total",
                "Messages read from events queues, by what came of them",
            ),
            &["organization", "outcome"],
        )
        .expect("valid metric");
        let accounts = IntGaugeVec::new(
            Opts::new("accounts", "Accounts in the listing by state"),
            &["state"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(harvest_seconds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(harvests.clone()),
            Box::new(aws_calls.clone()),
            Box::new(append_seconds.clone()),
            Box::new(http_requests.clone()),
            Box::new(queue_messages.clone()),
            Box::new(accounts.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric registers once");
        }
        Self {
            registry,
            harvest_seconds,
            harvests,
            aws_calls,
            append_seconds,
            http_requests,
            queue_messages,
            accounts,
        }
    }

    /// The text exposition, with the listing's counts by state as read just now.
    pub fn render(&self, accounts_by_state: &[(String, i64)]) -> String {
        self.accounts.reset();
        for (state, count) in accounts_by_state {
            self.accounts.with_label_values(&[state]).set(*count);
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory does not fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

/// Counts every AWS call attempt, so retried throttles show as what they are.
#[derive(Debug)]
pub struct AwsCallMetrics;

impl Intercept for AwsCallMetrics {
    fn name(&self) -> &'static str {
        "orgsync-aws-call-metrics"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service().to_lowercase(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        let outcome = match context.response() {
            None => "no_response".to_owned(),
            Some(response) if response.status().is_success() => "ok".to_owned(),
            Some(response) => response
                .headers()
                .get("x-amzn-errortype")
                .map(|t| t.split(':').next().unwrap_or(t).to_owned())
                .unwrap_or_else(|| format!("http_{}", response.status().as_u16())),
        };
        METRICS
            .aws_calls
            .with_label_values(&[&operation, &outcome])
            .inc();
        Ok(())
    }
}

/// Gives every HTTP request an id (the caller's `X-Request-Id`, else a new one), logs it with
/// its route, status and duration, answers it in `X-Request-Id`, and counts the request by
/// route and status, errors included.
pub async fn track_http(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let span = tracing::info_span!("http", %request_id, %method, %route);
    let mut result = next.call(req).instrument(span.clone()).await;
    let status = match &mut result {
        Ok(response) => {
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static("x-request-id"), value);
            }
            response.status()
        }
        Err(e) => e.as_response_error().status_code(),
    };
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            millis = started.elapsed().as_millis() as u64,
            "request"
        )
    });
    METRICS
        .http_requests
        .with_label_values(&[&route, &method, status.as_str()])
        .inc();
    result
}
