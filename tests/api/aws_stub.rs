//! An HTTP front for moto that answers chosen STS calls itself, with AWS's documented error
//! XML, and forwards everything else: the real SDK clients see AWS refusing a role where moto
//! would accept it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Default)]
struct Rules {
    /// Role ARNs whose AssumeRole is denied.
    denied_roles: HashSet<String>,
    /// Every role ARN asked for, in order.
    assumed: Vec<String>,
    /// Actions each role's policies deny in a simulation; every other action is allowed.
    denied_actions: HashMap<String, HashSet<String>>,
    /// Role ARNs simulated, in order.
    simulated: Vec<String>,
    /// Role ARNs whose trust policy requires this external ID.
    external_ids: HashMap<String, String>,
    /// Whether the policy simulator answers 500, as moto does.
    simulator_down: bool,
    /// Of every 100 Organizations calls, how many are throttled and how many answer 500.
    faults: (u64, u64),
    /// Organizations calls seen, to pick faulty ones evenly and repeatably.
    organizations_calls: u64,
    /// Added to every answer.
    latency: std::time::Duration,
    /// The message of an AccessDeniedException every Organizations call gets, when set.
    organizations_denied: Option<String>,
}

/// A running stub; its rules change while the daemon runs.
pub struct AwsStub {
    pub url: String,
    rules: Arc<Mutex<Rules>>,
}

impl AwsStub {
    /// Starts a stub forwarding to `upstream` on a free port.
    pub fn start(upstream: &str) -> Self {
        let rules = Arc::new(Mutex::new(Rules::default()));
        let state = (rules.clone(), upstream.to_owned(), reqwest::Client::new());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::default().limit(16 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("bind stub");
        let url = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        Self { url, rules }
    }

    /// Denies AssumeRole of `role_arn` with AccessDenied.
    pub fn deny_assume_role(&self, role_arn: &str) {
        self.rules
            .lock()
            .unwrap()
            .denied_roles
            .insert(role_arn.to_owned());
    }

    /// Makes `role_arn`'s trust policy require `external_id`, as AWS checks it.
    pub fn require_external_id(&self, role_arn: &str, external_id: &str) {
        self.rules
            .lock()
            .unwrap()
            .external_ids
            .insert(role_arn.to_owned(), external_id.to_owned());
    }

    /// Makes the policy simulator fail with an HTTP 500, as moto's does.
    pub fn break_simulator(&self) {
        self.rules.lock().unwrap().simulator_down = true;
    }

    /// Throttles `throttled`% of Organizations calls (TooManyRequestsException, HTTP 400, as
    /// Organizations answers) and fails `failed`% with HTTP 500.
    pub fn organizations_faults(&self, throttled: u64, failed: u64) {
        self.rules.lock().unwrap().faults = (throttled, failed);
    }

    /// Answers every Organizations call with AccessDeniedException and `message` (AWS quotes
    /// the caller's assumed-role ARN in it); `None` forwards them again.
    pub fn deny_organizations(&self, message: Option<&str>) {
        self.rules.lock().unwrap().organizations_denied = message.map(str::to_owned);
    }

    /// Delays every answer by `latency`, as a distant region would.
    pub fn latency(&self, latency: std::time::Duration) {
        self.rules.lock().unwrap().latency = latency;
    }

    /// Organizations calls seen so far.
    pub fn organizations_calls(&self) -> u64 {
        self.rules.lock().unwrap().organizations_calls
    }

    /// Lets every AssumeRole through again.
    pub fn allow_all(&self) {
        self.rules.lock().unwrap().denied_roles.clear();
    }

    /// Makes IAM's policy simulator deny `actions` to `role_arn` (explicitly).
    pub fn deny_actions(&self, role_arn: &str, actions: &[&str]) {
        self.rules.lock().unwrap().denied_actions.insert(
            role_arn.to_owned(),
            actions.iter().map(|a| (*a).to_owned()).collect(),
        );
    }

    /// Every role ARN whose policies were simulated.
    pub fn simulated(&self) -> Vec<String> {
        self.rules.lock().unwrap().simulated.clone()
    }

    /// Every role ARN the daemon asked to assume.
    pub fn assumed(&self) -> Vec<String> {
        self.rules.lock().unwrap().assumed.clone()
    }
}

type State = (Arc<Mutex<Rules>>, String, reqwest::Client);

/// Every answer closes its connection, as moto's do: each AWS call is then one connection,
/// which a connection-cutting proxy in front can count.
async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let mut response = answer(req, body, state).await;
    response
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    response
}

async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let (rules, upstream, client) = state.get_ref();
    let latency = rules.lock().unwrap().latency;
    tokio::time::sleep(latency).await;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let param = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if param("Action").as_deref() == Some("AssumeRole") {
        let role = param("RoleArn").unwrap_or_default();
        let mut rules = rules.lock().unwrap();
        rules.assumed.push(role.clone());
        let wrong_id = rules
            .external_ids
            .get(&role)
            .is_some_and(|expected| param("ExternalId").as_deref() != Some(expected.as_str()));
        if rules.denied_roles.contains(&role) || wrong_id {
            return HttpResponse::Forbidden()
                .content_type("text/xml")
                .body(format!(
                    "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>\
                 <Type>Sender</Type><Code>AccessDenied</Code><Message>User: \
                 arn:aws:iam::123456789012:user/orgsync is not authorized to perform: \
                 sts:AssumeRole on resource: {role}</Message></Error>\
                 <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
                ));
        }
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).expect("method");
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if target.starts_with("AWSOrganizationsV20161128.") {
        let mut rules = rules.lock().unwrap();
        rules.organizations_calls += 1;
        if let Some(message) = &rules.organizations_denied {
            let body = serde_json::json!({"__type": "AccessDeniedException", "Message": message});
            return HttpResponse::BadRequest()
                .content_type("application/x-amz-json-1.1")
                .insert_header(("x-amzn-ErrorType", "AccessDeniedException"))
                .body(body.to_string());
        }
        // Spread evenly: call n is faulty when its slot in each hundred says so.
        let slot = (rules.organizations_calls * 37) % 100;
        let (throttled, failed) = rules.faults;
        if slot < throttled {
            return HttpResponse::BadRequest()
                .content_type("application/x-amz-json-1.1")
                .insert_header(("x-amzn-ErrorType", "TooManyRequestsException"))
                .body(r#"{"__type":"TooManyRequestsException","Message":"Rate exceeded","Type":"client"}"#);
        }
        if slot < throttled + failed {
            return HttpResponse::InternalServerError()
                .content_type("application/x-amz-json-1.1")
                .body(r#"{"__type":"ServiceException","Message":"internal failure"}"#);
        }
    }
    // moto does not implement the policy simulator: answer as IAM documents it.
    if param("Action").as_deref() == Some("SimulatePrincipalPolicy") {
        let role = param("PolicySourceArn").unwrap_or_default();
        let mut rules = rules.lock().unwrap();
        rules.simulated.push(role.clone());
        if rules.simulator_down {
            return HttpResponse::InternalServerError()
                .content_type("text/html")
                .body("<html>500</html>");
        }
        let denied = rules.denied_actions.get(&role).cloned().unwrap_or_default();
        let results: String = form
            .iter()
            .filter(|(k, _)| k.starts_with("ActionNames.member."))
            .map(|(_, action)| {
                let decision = if denied.contains(action) {
                    "explicitDeny"
                } else {
                    "allowed"
                };
                format!(
                    "<member><EvalActionName>{action}</EvalActionName>\
                     <EvalResourceName>*</EvalResourceName><EvalDecision>{decision}</EvalDecision>\
                     <MatchedStatements/><MissingContextValues/></member>"
                )
            })
            .collect();
        return HttpResponse::Ok().content_type("text/xml").body(format!(
            "<SimulatePrincipalPolicyResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated>\
             <EvaluationResults>{results}</EvaluationResults></SimulatePrincipalPolicyResult>\
             <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId>\
             </ResponseMetadata></SimulatePrincipalPolicyResponse>"
        ));
    }
    let mut forward = client.request(
        method,
        format!(
            "{upstream}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        ),
    );
    for (name, value) in req.headers() {
        if name != "host" && name != "content-length" {
            forward = forward.header(name.as_str(), value.as_bytes());
        }
    }
    match forward.body(body).send().await {
        Ok(answer) => {
            let status =
                actix_web::http::StatusCode::from_u16(answer.status().as_u16()).expect("status");
            let mut response = HttpResponse::build(status);
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response.insert_header((name.as_str(), value.as_bytes()));
                }
            }
            response.body(answer.bytes().await.unwrap_or_default())
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}
