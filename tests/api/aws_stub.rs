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
    /// Every role ARN asked for, in order, with the region its request was signed for.
    assumed: Vec<(String, String)>,
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
    /// Organizations calls seen, by operation (`ListParents`…).
    operations: HashMap<String, u64>,
    /// The account of each access key moto handed out for an AssumeRole.
    key_accounts: HashMap<String, String>,
    /// Member accounts and the management account of their organization, as DescribeOrganization
    /// told them.
    managed_by: HashMap<String, String>,
    /// Member accounts the delegation policy allows to read their organization, with the
    /// management account's credentials (access key, session token) to answer them with.
    delegated: HashMap<String, (String, String)>,
    /// Whether DescribeAccount answers carry `Paths`, as AWS's now do and moto's do not.
    paths: bool,
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

    /// Organizations calls of `operation` (`ListParents`…) seen so far.
    pub fn operation_calls(&self, operation: &str) -> u64 {
        let rules = self.rules.lock().unwrap();
        rules.operations.get(operation).copied().unwrap_or(0)
    }

    /// Organizations calls seen so far, by operation.
    pub fn operations(&self) -> HashMap<String, u64> {
        self.rules.lock().unwrap().operations.clone()
    }

    /// The organization's delegation policy allows `account`, a member, to read it (R17):
    /// its Organizations calls are answered as the management account's, whose moto
    /// credentials are `management` (access key, session token). Without this, AWS refuses
    /// a member's calls other than DescribeOrganization, and so does the stub.
    pub fn delegate(&self, account: &str, management: (String, String)) {
        self.rules
            .lock()
            .unwrap()
            .delegated
            .insert(account.to_owned(), management);
    }

    /// Makes DescribeAccount answer `Paths` (`o-…/r-…/ou-…/<account>/`), read from moto's
    /// parents, as AWS does.
    pub fn serve_paths(&self) {
        self.rules.lock().unwrap().paths = true;
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
        let rules = self.rules.lock().unwrap();
        rules.assumed.iter().map(|(role, _)| role.clone()).collect()
    }

    /// Every role ARN the daemon asked to assume, with the region of the STS it asked.
    pub fn assumed_in(&self) -> Vec<(String, String)> {
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
        rules
            .assumed
            .push((role.clone(), signed_region(&req).unwrap_or_default()));
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
    let caller_key = access_key(&req);
    let mut swapped: Option<(String, String)> = None;
    if let Some(operation) = target.strip_prefix("AWSOrganizationsV20161128.") {
        let mut rules = rules.lock().unwrap();
        rules.organizations_calls += 1;
        *rules.operations.entry(operation.to_owned()).or_default() += 1;
        // A member account may describe its organization; anything else needs the
        // delegation policy (R17).
        let member = caller_key
            .as_ref()
            .and_then(|key| rules.key_accounts.get(key))
            .filter(|account| rules.managed_by.contains_key(*account))
            .cloned();
        if let Some(member) = member.filter(|_| operation != "DescribeOrganization") {
            match rules.delegated.get(&member) {
                Some(management) => swapped = Some(management.clone()),
                None => {
                    let body = serde_json::json!({"__type": "AccessDeniedException",
                        "Message": "You don't have permissions to access this resource."});
                    return HttpResponse::BadRequest()
                        .content_type("application/x-amz-json-1.1")
                        .insert_header(("x-amzn-ErrorType", "AccessDeniedException"))
                        .body(body.to_string());
                }
            }
        }
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
    let headers = forward_headers(&req, &swapped, caller_key.as_deref());
    let mut forward = client.request(
        method,
        format!(
            "{upstream}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        ),
    );
    for (name, value) in &headers {
        forward = forward.header(name.as_str(), value.as_slice());
    }
    let assumed_account = (param("Action").as_deref() == Some("AssumeRole"))
        .then(|| param("RoleArn").and_then(|arn| arn.split(':').nth(4).map(str::to_owned)))
        .flatten();
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
            let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
            learn(
                rules,
                &target,
                caller_key.as_deref(),
                assumed_account,
                &bytes,
            );
            let paths = rules.lock().unwrap().paths;
            if paths && target.ends_with(".DescribeAccount") && status.is_success() {
                bytes = with_paths(client, upstream, &headers, &bytes).await;
            }
            response.body(bytes)
        }
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

/// The headers to send moto: the request's, but for a delegated administrator's call, which
/// goes on as the management account's (moto reads the account from the access key and
/// checks no signature).
fn forward_headers(
    req: &HttpRequest,
    swapped: &Option<(String, String)>,
    caller_key: Option<&str>,
) -> Vec<(String, Vec<u8>)> {
    req.headers()
        .iter()
        .filter(|(name, _)| *name != "host" && *name != "content-length")
        .map(|(name, value)| {
            let value = match (swapped, name.as_str()) {
                (Some((key, _)), "authorization") => value
                    .to_str()
                    .unwrap_or_default()
                    .replace(caller_key.unwrap_or_default(), key)
                    .into_bytes(),
                (Some((_, token)), "x-amz-security-token") => token.clone().into_bytes(),
                _ => value.as_bytes().to_vec(),
            };
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// A DescribeAccount answer with the account's `Paths`, walked up through moto's ListParents
/// with the same credentials.
async fn with_paths(
    client: &reqwest::Client,
    upstream: &str,
    headers: &[(String, Vec<u8>)],
    answer: &[u8],
) -> Vec<u8> {
    let mut answer: serde_json::Value = serde_json::from_slice(answer).expect("JSON answer");
    let account = answer["Account"]["Id"]
        .as_str()
        .expect("account id")
        .to_owned();
    let arn = answer["Account"]["Arn"]
        .as_str()
        .expect("account ARN")
        .to_owned();
    let org = arn
        .split('/')
        .nth(1)
        .expect("organization in the ARN")
        .to_owned();
    let mut units = Vec::new();
    let mut child = account.clone();
    loop {
        let mut request = client.post(upstream);
        for (name, value) in headers {
            if name != "x-amz-target" {
                request = request.header(name.as_str(), value.as_slice());
            }
        }
        let parents: serde_json::Value = request
            .header("x-amz-target", "AWSOrganizationsV20161128.ListParents")
            .body(serde_json::json!({"ChildId": child}).to_string())
            .send()
            .await
            .expect("moto answers")
            .json()
            .await
            .expect("JSON parents");
        let parent = parents["Parents"][0]["Id"]
            .as_str()
            .expect("a parent")
            .to_owned();
        units.push(parent.clone());
        if parent.starts_with("r-") {
            break;
        }
        child = parent;
    }
    units.reverse();
    let path = format!("{org}/{}/{account}/", units.join("/"));
    answer["Account"]["Paths"] = serde_json::json!([path]);
    answer.to_string().into_bytes()
}

/// The region a request is signed for, from its SigV4 credential scope
/// (`Credential=<key>/<date>/<region>/<service>/aws4_request`).
fn signed_region(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let credential = header.split("Credential=").nth(1)?;
    Some(credential.split('/').nth(2)?.to_owned())
}

/// The access key a request is signed with, from its SigV4 `Authorization` header.
fn access_key(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let credential = header.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_owned())
}

/// What moto's answers tell of accounts: whose access key an AssumeRole handed out, and which
/// accounts are members managed by another.
fn learn(
    rules: &Mutex<Rules>,
    target: &str,
    caller_key: Option<&str>,
    assumed_account: Option<String>,
    answer: &[u8],
) {
    let text = String::from_utf8_lossy(answer);
    let mut rules = rules.lock().unwrap();
    if let Some(account) = assumed_account {
        let key = text
            .split("<AccessKeyId>")
            .nth(1)
            .and_then(|rest| rest.split("</AccessKeyId>").next());
        if let Some(key) = key {
            rules.key_accounts.insert(key.to_owned(), account);
        }
    }
    if target == "AWSOrganizationsV20161128.DescribeOrganization" {
        let caller = caller_key
            .and_then(|key| rules.key_accounts.get(key))
            .cloned();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let management = answer["Organization"]["MasterAccountId"].as_str();
        if let (Some(caller), Some(management)) = (caller, management) {
            if caller != management {
                rules.managed_by.insert(caller, management.to_owned());
            }
        }
    }
}
