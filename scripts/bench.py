"""Harvest benchmark: orgsync against a plain boto3 client on the same moto organization.

Builds an organization of --accounts accounts (nested OUs, 4 tags each) in moto's default
account, then, in one run on one machine:
  floor    ../shared/bench/floor_harvest.py --threads 16 (ListRoots, the OU and account
           pages of every parent, ListTagsForResource per account), --runs times, alone
           and followed by one sts:AssumeRole per account (what orgsync adds for R4);
  first    orgsync's first harvest of the organization on a fresh SQLite store, --runs
           times (each a fresh daemon), timed by the daemon's own last_harvest stamps;
  again    a harvest with nothing changed in moto, --runs times on the last daemon.
Prints medians, and each median as a ratio of the floor's.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import datetime
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT.parent / "shared" / "bench" / "floor_harvest.py"
OUS = [("Workloads", None), ("Prod", "Workloads"), ("Payments", "Prod"), ("Ledger", "Payments"),
       ("Dev", "Workloads"), ("Sandbox", None), ("Security", None)]
CREDS = dict(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: {url} did not answer")


def build_org(endpoint, accounts):
    c = boto3.client("organizations", endpoint_url=endpoint, **CREDS)
    c.create_organization(FeatureSet="ALL")
    root = c.list_roots()["Roots"][0]["Id"]
    ids, paths = {}, {root: "/"}
    for name, parent in OUS:
        pid = ids[parent] if parent else root
        ids[name] = c.create_organizational_unit(ParentId=pid, Name=name)["OrganizationalUnit"]["Id"]
        paths[ids[name]] = f"{paths[pid]}{name}/"
    parents = [root] + [ids[n] for n, _ in OUS]
    manifest = []
    for i in range(accounts):
        tags = {"env": ["prod", "dev", "test"][i % 3], "team": ["red", "blue"][i % 2],
                "cost-center": f"cc-{i % 7}", "owner": f"owner-{i % 11}"}
        status = c.create_account(AccountName=f"account-{i:05}", Email=f"account-{i:05}@example.com",
                                  Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["CreateAccountStatus"]
        aid, dest = status["AccountId"], parents[i % len(parents)]
        if dest != root:
            c.move_account(AccountId=aid, SourceParentId=root, DestinationParentId=dest)
        manifest.append({"id": aid, "status": "ACTIVE", "tags": tags, "ou_path": paths[dest]})
    return {"accounts": manifest}


class PolicySimulator(BaseHTTPRequestHandler):
    """IAM's SimulatePrincipalPolicy, which moto lacks: every action allowed."""

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        actions = [v[0] for k, v in sorted(form.items()) if k.startswith("ActionNames.member.")]
        results = "".join(f"<member><EvalActionName>{a}</EvalActionName><EvalResourceName>*</EvalResourceName>"
                          f"<EvalDecision>allowed</EvalDecision></member>" for a in actions)
        body = (f'<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">'
                f"<SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>{results}"
                f"</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>1</RequestId>"
                f"</ResponseMetadata></SimulatePrincipalPolicyResponse>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_simulator():
    server = ThreadingHTTPServer(("127.0.0.1", 0), PolicySimulator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


class Daemon:
    def __init__(self, binary, endpoint, iam_endpoint):
        self.dir = tempfile.mkdtemp(prefix="orgsync-bench-")
        self.port = free_port()
        # Every AWS API at moto, but IAM (the policy simulation) at the simulator above: the
        # SDK's service-specific endpoint variables, so the harvest's calls go to moto directly.
        env = dict(os.environ, ORGSYNC__SERVER__LISTEN=f"127.0.0.1:{self.port}",
                   ORGSYNC__STATE__DIR=self.dir, AWS_ENDPOINT_URL=endpoint,
                   AWS_ENDPOINT_URL_IAM=iam_endpoint,
                   ORGSYNC__LOG__LEVEL="warn", AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
        self.proc = subprocess.Popen([binary, "serve"], env=env, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/readyz")
        self.token = Path(self.dir, "admin.token").read_text().strip()

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v1{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def assume_each(endpoint, accounts, threads=16):
    """One sts:AssumeRole into each account's member role, 16 at a time: what a harvest adds
    to the listing calls to check member access (R4). Returns wall seconds."""
    from concurrent.futures import ThreadPoolExecutor
    sts = boto3.client("sts", endpoint_url=endpoint, **CREDS)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda a: sts.assume_role(RoleArn=f"arn:aws:iam::{a}:role/OrgSync-Member-Role",
                                                RoleSessionName="orgsync", ExternalId="bench"), accounts))
    return time.perf_counter() - t0


def harvest_seconds(org):
    h = org["last_harvest"]
    assert h["outcome"] == "completed", h
    t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (t(h["finished_at"]) - t(h["started_at"])).total_seconds()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not FLOOR.is_file():
        sys.exit(f"scripts/bench.py: the floor client {FLOOR} is missing: clone orgsync beside "
                 "the shared directory that holds bench/floor_harvest.py")
    binary = str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "orgsync")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen([str(ROOT / ".venv" / "bin" / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"{endpoint}/moto-api/")
        t0 = time.monotonic()
        manifest = build_org(endpoint, a.accounts)
        manifest_file = Path(tempfile.mkdtemp()) / "org.json"
        manifest_file.write_text(json.dumps(manifest))
        print(f"built a {a.accounts}-account organization in moto in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        floor, floor_assume = [], []
        member_ids = [m["id"] for m in manifest["accounts"]]
        for _ in range(a.runs):
            out = subprocess.run([sys.executable, str(FLOOR), "--endpoint", endpoint, "--threads", "16",
                                  "--manifest", str(manifest_file)], check=True, capture_output=True, text=True)
            result = json.loads(out.stdout)
            assert result["verify"]["mismatches"] == 0, result["verify"]
            floor.append(result["wall_seconds"])
            floor_assume.append(result["wall_seconds"] + assume_each(endpoint, member_ids))

        mgmt = boto3.client("organizations", endpoint_url=endpoint, **CREDS).describe_organization()["Organization"]
        registration = {"nickname": "bench",
                        "org_role": {"role_arn": f"arn:aws:iam::{mgmt['MasterAccountId']}:role/OrgSync-Org-Role",
                                     "session_name": "orgsync", "duration_seconds": 3600},
                        "member_role": {"role_name": "OrgSync-Member-Role", "session_name": "orgsync",
                                        "duration_seconds": 3600}}
        iam_endpoint = start_simulator()
        first, again = [], []
        for run in range(a.runs):
            daemon = Daemon(binary, endpoint, iam_endpoint)
            try:
                org = daemon.call("POST", "/organizations", registration)
                while not (org["last_harvest"] or {}).get("finished_at"):
                    time.sleep(0.05)
                    org = daemon.call("GET", f"/organizations/{org['id']}")
                assert org["account_count"] == a.accounts + 1, org
                first.append(harvest_seconds(org))
                if run == a.runs - 1:
                    again = [harvest_seconds(daemon.call("POST", f"/organizations/{org['id']}/harvest?wait=true"))
                             for _ in range(a.runs)]
            finally:
                daemon.stop()
    finally:
        moto.terminate()
        moto.wait()

    f = statistics.median(floor)
    rows = [("floor_harvest.py --threads 16", floor),
            ("floor + sts:AssumeRole per account (16 threads)", floor_assume),
            ("orgsync first harvest", first), ("orgsync no-change harvest", again)]
    print(f"\nHarvest of a {a.accounts}-account moto organization, median of {a.runs} runs\n")
    fa = statistics.median(floor_assume)
    print("| what | median s | runs s | ratio to floor | ratio to floor + AssumeRole |")
    print("|---|---:|---|---:|---:|")
    for name, xs in rows:
        m = statistics.median(xs)
        print(f"| {name} | {m:.3f} | {', '.join(f'{x:.3f}' for x in xs)} | {m / f:.2f}x | {m / fa:.2f}x |")


if __name__ == "__main__":
    main()
