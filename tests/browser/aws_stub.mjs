// An HTTP front for moto that checks what moto does not: AssumeRole succeeds only for a role
// that was deployed, with the external ID its trust policy requires; and it answers IAM's
// policy simulator, which moto lacks, allowing every action but those a test denies. All else
// goes to moto as it came. (tests/api/aws_stub.rs does the same for the Rust tests.)

import http from "node:http";

const accessDenied = (role) => `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>
<Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::123456789012:user/orgsync is not
authorized to perform: sts:AssumeRole on resource: ${role}</Message></Error>
<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>`;

const simulation = (
  actions,
  denied,
) => `<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>${actions
  .map(
    (action) => `<member><EvalActionName>${action}</EvalActionName><EvalResourceName>*</EvalResourceName>
<EvalDecision>${denied.has(action) ? "explicitDeny" : "allowed"}</EvalDecision><MatchedStatements/><MissingContextValues/></member>`,
  )
  .join("")}</EvaluationResults></SimulatePrincipalPolicyResult>
<ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000001</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`;

export class AwsStub {
  /** Role ARN → the external IDs its trust policy accepts. */
  #roles = new Map();
  /** Role ARN → actions its simulation denies. */
  #denied = new Map();
  #server;

  constructor(upstream) {
    this.upstream = upstream;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  /** Listens on a free port; resolves to the stub's URL. */
  async start() {
    await new Promise((resolve) => this.#server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${this.#server.address().port}`;
    return this.url;
  }

  stop() {
    this.#server.closeAllConnections();
    this.#server.close();
  }

  /** The roles deployed, as moto_org.py's `deploy` reads them back: `[{arn, externalIds}]`. */
  deployed(roles) {
    for (const role of roles) this.#roles.set(role.arn, new Set(role.externalIds));
  }

  /** Makes the policy simulator deny `actions` to `roleArn`. */
  deny(roleArn, actions) {
    this.#denied.set(roleArn, new Set(actions));
  }

  async #handle(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const form = new URLSearchParams(
      req.headers["content-type"]?.includes("x-www-form-urlencoded") ? body.toString() : "",
    );
    const action = form.get("Action");
    if (action === "AssumeRole") {
      const role = form.get("RoleArn");
      if (!this.#roles.get(role)?.has(form.get("ExternalId"))) {
        res.writeHead(403, { "Content-Type": "text/xml" });
        return res.end(accessDenied(role));
      }
    }
    if (action === "SimulatePrincipalPolicy") {
      const actions = [...form.entries()]
        .filter(([k]) => k.startsWith("ActionNames.member."))
        .map(([, v]) => v);
      res.writeHead(200, { "Content-Type": "text/xml" });
      return res.end(simulation(actions, this.#denied.get(form.get("PolicySourceArn")) ?? new Set()));
    }
    const headers = { ...req.headers };
    // Hop-by-hop headers, which fetch sets itself or refuses.
    for (const name of ["host", "content-length", "connection", "keep-alive", "expect", "transfer-encoding"])
      delete headers[name];
    const answer = await fetch(`${this.upstream}${req.url}`, {
      method: req.method,
      headers,
      body: body.length ? body : undefined,
    });
    const out = {};
    answer.headers.forEach((value, name) => {
      if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(name))
        out[name] = value;
    });
    res.writeHead(answer.status, out);
    res.end(Buffer.from(await answer.arrayBuffer()));
  }
}
