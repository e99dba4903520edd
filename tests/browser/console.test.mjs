// The web console in headless Chromium against `orgsync serve` on moto, as an operator
// onboards an organization: sign in, copy the external ID, deploy the downloaded templates,
// register (and see wrong roles refused at their step), watch the harvest, browse, page and
// filter the accounts, edit badges, see a move arrive live, edit the organization, add a
// standalone account, use the GraphQL IDE, make a viewer token, look around as that viewer,
// and revoke it under the viewer's open tab.
//
// Needs ORGSYNC_TEST_MOTO_URL (scripts/test sets it) and a built target/debug/orgsync
// (ORGSYNC_BIN overrides it). Each page's screenshot goes to target/screenshots/<page>.png.
// Any browser console error, uncaught exception or failed request fails the run.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";
import { AwsStub } from "./aws_stub.mjs";

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const binary = process.env.ORGSYNC_BIN ?? path.join(root, "target/debug/orgsync");
const python = path.join(root, ".venv/bin/python");
const screenshots = path.join(root, "target/screenshots");
const motoUrl = process.env.ORGSYNC_TEST_MOTO_URL;
// The principal the daemon runs as, which the templates it serves must trust.
const PRINCIPAL = "arn:aws:iam::123456789012:role/orgsync-daemon";
// What a role without the org template's policy lacks; the stub's simulator denies it.
const ORGANIZATIONS_ACTIONS = [
  "organizations:ListRoots",
  "organizations:ListAccountsForParent",
  "organizations:ListTagsForResource",
];
// What the simulator reports denied to one account's member role.
const SCP_DENIED = ["s3:GetBucketPolicy", "kms:ListKeys"];
// Long enough for a debug daemon's harvest on a loaded CI machine, short of hiding a hang.
const WAIT = { timeout: 20_000 };

let stub, daemon, scratch, base, adminToken, browser, admin, org;
// The viewer's tab and token, once the admin has made one.
let viewer, viewerToken;
const problems = [];

/** Runs moto_org.py and gives its JSON. */
async function motoOrg(...args) {
  const { stdout } = await run(python, [path.join(here, "moto_org.py"), motoUrl, ...args]);
  return JSON.parse(stdout);
}

/** A page of a fresh browser context (its own sessionStorage), every problem recorded. */
async function newPage(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const page = await context.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`${name}: console error: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`${name}: uncaught: ${e.message}`));
  // An aborted request is the console dropping a page's reads as it leaves it.
  page.on(
    "requestfailed",
    (r) =>
      r.failure()?.errorText !== "net::ERR_ABORTED" &&
      problems.push(`${name}: ${r.url()} failed: ${r.failure()?.errorText}`),
  );
  page.on(
    "response",
    (r) => r.status() >= 400 && problems.push(`${name}: ${r.url()} answered ${r.status()}`),
  );
  return page;
}

/**
 * Checks that every control on `page` has a label and every button a name (each page is
 * used by keyboard and screen reader), then writes its screenshot.
 */
async function shot(page, name) {
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll("input, select, textarea, button")]
      .filter((el) => !el.closest("[hidden]") && el.type !== "hidden")
      .filter((el) =>
        el.tagName === "BUTTON"
          ? !el.textContent.trim() && !el.getAttribute("aria-label")
          : el.labels.length === 0 && !el.getAttribute("aria-label"),
      )
      .map((el) => el.outerHTML),
  );
  assert.deepEqual(unnamed, [], `${name}: every control is labelled`);
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

/** Signs in by keyboard alone: the token pasted into the focused field, then Enter. */
async function signIn(page, token) {
  await page.goto(base + "/");
  await page.getByLabel("API token").focus();
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(ring, "none", "the focused field shows its focus");
  await page.keyboard.insertText(token);
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Organizations" }).waitFor(WAIT);
}

/** The account ids the listing on `page` shows, once it is not loading. */
async function listedIds(page) {
  await page.locator(".listing[aria-busy=false]").waitFor(WAIT);
  return page.locator("tr[data-account]").evaluateAll((rows) => rows.map((r) => r.dataset.account).sort());
}

/** Runs `action`, which leaves the listing on `page` for another, and waits until it has. */
async function replacesListing(page, action) {
  const old = await page.locator(".listing").elementHandle();
  await action();
  await page.waitForFunction((listing) => !listing.isConnected, old, WAIT);
}

const idsNamed = (...names) =>
  org.accounts
    .filter((a) => names.includes(a.name))
    .map((a) => a.id)
    .sort();

before(async () => {
  assert.ok(motoUrl, "ORGSYNC_TEST_MOTO_URL is not set: run scripts/test");
  await mkdir(screenshots, { recursive: true });
  org = await motoOrg("org");
  stub = new AwsStub(motoUrl);
  await stub.start();
  // The daemon's state directory, and the templates the operator downloads.
  scratch = await mkdtemp(path.join(tmpdir(), "orgsync-browser-"));
  const stateDir = path.join(scratch, "state");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  daemon = spawn(binary, ["serve"], {
    env: {
      ...process.env,
      ORGSYNC__SERVER__LISTEN: `127.0.0.1:${port}`,
      ORGSYNC__STATE__DIR: stateDir,
      ORGSYNC__AWS__ENDPOINT_URL: stub.url,
      ORGSYNC__AWS__TRUSTED_PRINCIPAL_ARN: PRINCIPAL,
      ORGSYNC__LOG__LEVEL: "warn",
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
      AWS_REGION: "us-east-1",
      AWS_EC2_METADATA_DISABLED: "true",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  await until(
    async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok,
    "the daemon answers /readyz",
  );
  adminToken = (await readFile(path.join(stateDir, "admin.token"), "utf8")).trim();
  // Chromium's sandbox cannot start as root, which CI is.
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"],
  });
  admin = await newPage("admin");
});

after(async () => {
  await browser?.close();
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((resolve) => daemon.once("exit", resolve));
    daemon.kill("SIGTERM");
    await exited;
  }
  stub?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `condition` until it holds, for the daemon's start (no browser to wait in yet). */
async function until(condition, what, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The steps build on each other: after a failure, the later ones are skipped rather than
// each waiting out its timeouts.
let failed = false;
function step(name, fn) {
  test(name, async (t) => {
    if (failed) return t.skip("an earlier step failed");
    try {
      await fn(t);
    } catch (error) {
      failed = true;
      // What each tab showed, for the failure's report; a screenshot that fails adds nothing.
      for (const [who, page] of [
        ["admin", admin],
        ["viewer", viewer],
      ]) {
        await page
          ?.screenshot({ path: path.join(screenshots, `failure-${who}.png`), fullPage: true })
          .catch(() => {});
      }
      throw error;
    }
  });
}

step("signs in with the admin token", async () => {
  await signIn(admin, adminToken);
  await admin.locator(".role", { hasText: "admin" }).waitFor();
  await shot(admin, "organizations-empty");
});

let templates;
step(
  "onboarding copies the external ID and downloads both templates with it and the principal filled in",
  async () => {
    await admin.getByRole("link", { name: "Onboarding", exact: true }).click();
    await admin.getByRole("heading", { name: "Onboarding an AWS Organization" }).waitFor();
    await admin.getByRole("button", { name: "Copy external ID" }).click();
    await admin.getByText("Copied to the clipboard.").waitFor();
    const copied = await admin.evaluate(() => navigator.clipboard.readText());
    const rest = await fetch(`${base}/api/v1/external-id`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    assert.equal(copied, (await rest.json()).external_id, "the copied ID is the installation's");
    assert.ok(copied.length >= 32);

    const dir = path.join(scratch, "templates");
    await mkdir(dir);
    templates = {};
    for (const [key, label] of [
      ["org", "Download the org-role template"],
      ["member", "Download the member-role template"],
    ]) {
      const [download] = await Promise.all([
        admin.waitForEvent("download"),
        admin.getByRole("button", { name: label }).click(),
      ]);
      templates[key] = path.join(dir, download.suggestedFilename());
      await download.saveAs(templates[key]);
      const yaml = await readFile(templates[key], "utf8");
      assert.ok(yaml.includes(JSON.stringify(copied)), `${key} template carries the external ID`);
      assert.ok(yaml.includes(JSON.stringify(PRINCIPAL)), `${key} template trusts the daemon's principal`);
    }
    await shot(admin, "onboarding");
  },
);

step("the downloaded templates deploy as stacks, the member role everywhere but one account", async () => {
  const bob = org.accounts.find((a) => a.name === "sandbox-bob").id;
  const roles = await motoOrg("deploy", org.management, templates.org, templates.member, bob);
  assert.equal(
    roles.length,
    1 + org.accounts.length,
    "the org role, and the member role in every account but one",
  );
  stub.deployed(roles);
  // The member role has no Organizations permissions: the simulator says so.
  stub.deny(`arn:aws:iam::${org.management}:role/OrgSync-Member-Role`, ORGANIZATIONS_ACTIONS);
  // In one account, the simulator reports read actions denied, as an SCP with conditions on
  // global keys can make it do.
  stub.deny(`arn:aws:iam::${idsNamed("ledger-prod")[0]}:role/OrgSync-Member-Role`, SCP_DENIED);
});

async function submitRegistration(roleArn) {
  await admin.goto(`${base}/#/organizations/new`);
  await admin.getByLabel("Nickname").fill("prod");
  await admin.getByLabel("Org role ARN").fill(roleArn);
  await admin.getByRole("button", { name: "Add", exact: true }).click();
}

const checkStep = (name) => admin.locator(`.step[data-step=${name}]`);

step("a registration with an org role that does not exist is refused at the assume-role step", async () => {
  await submitRegistration(`arn:aws:iam::${org.management}:role/OrgSync-Missing-Role`);
  await checkStep("assume").and(admin.locator("[data-state=failed]")).waitFor(WAIT);
  assert.equal(await checkStep("fields").getAttribute("data-state"), "passed");
  assert.equal(await checkStep("describe").getAttribute("data-state"), "skipped");
  assert.equal(await checkStep("simulate").getAttribute("data-state"), "skipped");
  assert.match(await checkStep("assume").innerText(), /assume_role_failed[\s\S]*AccessDenied/);
  await shot(admin, "register-refused-assume-role");
});

step(
  "the member role given as the org role is refused at the simulation step, each denied action listed",
  async () => {
    await submitRegistration(`arn:aws:iam::${org.management}:role/OrgSync-Member-Role`);
    await checkStep("simulate").and(admin.locator("[data-state=failed]")).waitFor(WAIT);
    assert.equal(await checkStep("describe").getAttribute("data-state"), "passed");
    const denied = await checkStep("simulate").locator(".denied li").allInnerTexts();
    assert.deepEqual(denied.sort(), [...ORGANIZATIONS_ACTIONS].sort());
    await shot(admin, "register-refused-simulation");
  },
);

step("registers the organization; Harvest now's progress bar reaches the end", async () => {
  await submitRegistration(`arn:aws:iam::${org.management}:role/OrgSync-Org-Role`);
  await admin.getByRole("heading", { name: "Organizations" }).waitFor(WAIT);
  const row = admin.locator(`tr[data-organization="${org.id}"]`);
  await row.waitFor(WAIT);
  // The first harvest, which the registration started, ends before another is asked for, so
  // that this one starts at once and none is left running into the later steps.
  await row.locator(".last-harvest .outcome.completed").waitFor(WAIT);
  await row.getByRole("button", { name: "Harvest now" }).click();
  const bar = row.locator(".harvest[data-phase=FINISHED][data-outcome=completed]");
  await bar.waitFor(WAIT);
  const { value, max } = await bar.locator("progress").evaluate((p) => ({ value: p.value, max: p.max }));
  assert.equal(value, max, "the bar is full");
  await row.getByText(`completed: ${org.accounts.length + 1} accounts`).waitFor();
  await row.getByText(`${org.accounts.length + 1} accounts seen`).waitFor(WAIT);
  await shot(admin, "organizations");
});

step("the account count opens the organization's accounts, every one of them", async () => {
  // The count is the listing's, which may still be catching up with the harvest: the
  // listing it opens is what must hold every account.
  await admin.getByRole("link", { name: /accounts of prod$/ }).click();
  await admin.getByRole("heading", { name: "Accounts" }).waitFor();
  assert.equal(new URL(admin.url()).hash, `#/accounts?organization=${org.id}`);
  assert.deepEqual(await listedIds(admin), [org.management, ...org.accounts.map((a) => a.id)].sort());
  await shot(admin, "accounts");
});

step("pages through the listing, forward and back", async () => {
  await replacesListing(admin, () => admin.goto(`${base}/#/accounts?organization=${org.id}&first=3`));
  const pages = [await listedIds(admin)];
  const next = admin.getByRole("link", { name: "Next page →" });
  while (await next.count()) {
    await replacesListing(admin, () => next.click());
    pages.push(await listedIds(admin));
  }
  assert.deepEqual(
    pages.map((p) => p.length),
    [3, 3, 1],
  );
  assert.deepEqual(
    pages.flat().sort(),
    [org.management, ...org.accounts.map((a) => a.id)].sort(),
    "each account once",
  );
  await replacesListing(admin, () => admin.getByRole("link", { name: "← Previous page" }).click());
  assert.deepEqual(await listedIds(admin), pages[1]);
  await replacesListing(admin, () => admin.goBack());
  assert.deepEqual(await listedIds(admin), pages[2], "back returns to the last page");
  await shot(admin, "accounts-paged");
  await replacesListing(admin, () => admin.goto(`${base}/#/accounts?organization=${org.id}`));
});

step("filters the listing by a badge and by access status", async () => {
  await admin.getByLabel("Badges").fill("team:red");
  await replacesListing(admin, () => admin.getByRole("button", { name: "Filter" }).click());
  assert.match(admin.url(), /badge=team%3Ared/);
  assert.deepEqual(await listedIds(admin), idsNamed("payments-prod", "web-dev"));
  await shot(admin, "accounts-by-badge");

  await admin.getByLabel("Badges").fill("");
  await admin.getByLabel("Access").selectOption({ label: "assume role failed" });
  await replacesListing(admin, () => admin.getByRole("button", { name: "Filter" }).click());
  assert.match(admin.url(), /access=ASSUME_ROLE_FAILED/);
  assert.deepEqual(await listedIds(admin), idsNamed("sandbox-bob"), "the account the StackSet missed");
  await shot(admin, "accounts-by-access");
  await replacesListing(admin, () => admin.goBack());
  assert.match(admin.url(), /badge=team%3Ared/);
  assert.deepEqual(
    await listedIds(admin),
    idsNamed("payments-prod", "web-dev"),
    "back returns to the badge filter",
  );
});

step(
  "an account shows its history with who caused each change; a manual badge is added and removed",
  async () => {
    const payments = org.accounts.find((a) => a.name === "payments-prod");
    await admin.getByRole("link", { name: "payments-prod" }).click();
    await admin.locator(".timeline[aria-busy=false]").waitFor(WAIT);
    const first = admin.locator(".timeline li").first();
    assert.equal(await first.getAttribute("data-type"), "AccountDiscovered");
    assert.equal(await first.locator(".actor").innerText(), `harvest:${org.id}`);
    assert.match(await admin.locator(".ou-path").innerText(), /^Root\/Workloads\/Prod$/);
    await admin.locator('[data-badge="team"]', { hasText: "follows the AWS tag" }).waitFor();
    assert.equal(
      await admin.locator('[data-badge="team"] button').count(),
      0,
      "a tag badge cannot be removed",
    );

    await admin.getByLabel("Badge key").fill("owner");
    await admin.getByLabel("Badge value").fill("ann");
    await admin.getByRole("button", { name: "Add badge" }).click();
    await admin.locator('[data-badge="owner"]', { hasText: "owner:ann" }).waitFor(WAIT);
    await admin.locator(".timeline li .actor", { hasText: "token:initial-admin" }).first().waitFor(WAIT);
    await shot(admin, "account");
    await admin.getByRole("button", { name: "Remove badge owner" }).click();
    await admin.locator('[data-badge="owner"]').waitFor({ state: "detached", ...WAIT });
    const listed = await fetch(`${base}/api/v1/accounts/${payments.id}`, {
      headers: { Authorization: `Bearer ${adminToken}` },
    });
    assert.ok(
      !(await listed.json()).badges.some((b) => b.key === "owner"),
      "the daemon has no owner badge either",
    );
  },
);

step("an account's permission warnings come with the SCP caveat", async () => {
  await admin.goto(`${base}/#/accounts/${idsNamed("ledger-prod")[0]}`);
  const warnings = admin.locator(".warnings li");
  await warnings.first().waitFor(WAIT);
  const listed = await warnings.allInnerTexts();
  for (const action of SCP_DENIED)
    assert.ok(
      listed.some((w) => w.includes(action)),
      `${action} is among the warnings: ${listed}`,
    );
  await admin.locator(".notice", { hasText: "global keys such as aws:PrincipalArn" }).waitFor();
  await shot(admin, "account-warnings");
});

step("an account moved in moto shows in its new OU after Harvest now, without a reload", async () => {
  const web = org.accounts.find((a) => a.name === "web-dev");
  await admin.goto(`${base}/#/accounts?organization=${org.id}`);
  await admin.getByLabel("OU", { exact: true }).selectOption({ label: `Root/Sandbox (${org.ous.Sandbox})` });
  await replacesListing(admin, () => admin.getByRole("button", { name: "Filter" }).click());
  assert.deepEqual(await listedIds(admin), idsNamed("sandbox-ann", "sandbox-bob"));
  // A reload would lose this mark.
  await admin.evaluate(() => (window.notReloaded = true));
  await motoOrg("move", org.management, web.id, org.ous.Sandbox);
  // By keyboard: the button takes focus and Enter presses it.
  await admin.getByRole("button", { name: "Harvest now" }).focus();
  await admin.keyboard.press("Enter");
  await admin.locator(`tr[data-account="${web.id}"] .ou-path`, { hasText: "Root/Sandbox" }).waitFor(WAIT);
  assert.ok(await admin.evaluate(() => window.notReloaded), "the page was not reloaded");
  await shot(admin, "accounts-live-move");

  await admin.goto(`${base}/#/organizations/${org.id}/units`);
  const count = (ou) => admin.locator(`[data-unit="${org.ous[ou]}"] > .count`).getAttribute("data-count");
  await admin.locator(`[data-unit="${org.ous.Sandbox}"]`).waitFor(WAIT);
  assert.equal(await count("Sandbox"), "3");
  assert.equal(await count("Dev"), "1");
  assert.equal(await count("Workloads"), "3");
  await shot(admin, "units");
  await admin.locator(`[data-unit="${org.ous.Dev}"] > a`).click();
  await admin.getByRole("heading", { name: "Accounts" }).waitFor();
  assert.match(admin.url(), new RegExp(`ou=${org.ous.Dev}`));
  assert.deepEqual(await listedIds(admin), idsNamed("data-dev"));
});

step("a standalone account is added with its own role, its role replaced, and deleted", async () => {
  const role = await motoOrg("standalone", templates.member);
  stub.deployed([role]);
  await admin.goto(`${base}/#/accounts`);
  await admin.getByRole("link", { name: "Add a standalone account" }).click();
  await admin.getByLabel("Account id").fill(role.account);
  await admin.getByLabel("Name", { exact: true }).fill("legacy");
  await admin.getByLabel("Role ARN").fill(role.arn);
  await admin.getByRole("button", { name: "Add account" }).click();
  await admin.getByRole("heading", { name: `legacy ${role.account}` }).waitFor(WAIT);
  await admin.getByText("A standalone account").waitFor();

  const replace = admin.locator("form", { has: admin.getByRole("button", { name: "Replace role" }) });
  await replace.getByLabel("Role ARN").fill(`arn:aws:iam::${role.account}:role/Not-Deployed`);
  await replace.getByRole("button", { name: "Replace role" }).click();
  await admin.locator(".error", { hasText: "assume_role_failed" }).waitFor(WAIT);
  await replace.getByLabel("Role ARN").fill(role.arn);
  await replace.getByRole("button", { name: "Replace role" }).click();
  await admin.getByText("Role replaced.").waitFor(WAIT);
  await shot(admin, "account-standalone");

  await admin.getByRole("button", { name: "Delete account…" }).click();
  await admin.getByRole("dialog").getByRole("button", { name: "Delete legacy" }).click();
  await admin.getByRole("heading", { name: "Accounts" }).waitFor(WAIT);
  const gone = await fetch(`${base}/api/v1/accounts/${role.account}`, {
    headers: { Authorization: `Bearer ${adminToken}` },
  });
  assert.equal(gone.status, 404, "the account left the listing");
});

step("editing: a partial credential set is refused with its reason; the nickname changes alone", async () => {
  await admin.goto(`${base}/#/organizations/${org.id}/edit`);
  const credentials = admin.locator("form", {
    has: admin.getByRole("heading", { name: "Replace credentials" }),
  });
  await credentials.getByLabel("Org role ARN").fill(`arn:aws:iam::${org.management}:role/OrgSync-Org-Role`);
  await credentials.getByRole("button", { name: "Replace credentials" }).click();
  const fields = credentials.locator(".step[data-step=fields][data-state=failed]");
  await fields.waitFor(WAIT);
  assert.match(await fields.innerText(), /incomplete_credentials/);
  assert.match(await fields.innerText(), /member_role\.role_name/);
  await shot(admin, "edit");

  // A queue the org role cannot read is refused, and none is kept.
  const queue = admin.locator("form", { has: admin.getByRole("heading", { name: "Change events queue" }) });
  await queue
    .getByLabel("Events queue URL (optional)")
    .fill(`https://sqs.us-east-1.amazonaws.com/${org.management}/no-such-queue`);
  await queue.getByRole("button", { name: "Change events queue" }).click();
  await queue.locator(".error", { hasText: "events_queue_unreachable" }).waitFor(WAIT);

  const rename = admin.locator("form", { has: admin.getByRole("heading", { name: "Rename" }) });
  await rename.getByLabel("Nickname").fill("production");
  await rename.getByRole("button", { name: "Rename" }).click();
  await rename.getByText("Saved.").waitFor(WAIT);
  await admin.getByRole("link", { name: "Organizations" }).first().click();
  await admin.locator(`tr[data-organization="${org.id}"]`, { hasText: "production" }).waitFor(WAIT);
});

step("the GraphQL IDE at /graphql runs a query and lists the schema's types", async () => {
  await admin.goto(`${base}/graphql`);
  await admin.getByRole("heading", { name: "GraphQL IDE" }).waitFor(WAIT);
  assert.equal(
    await admin.getByRole("button", { name: "Stop subscription" }).isVisible(),
    false,
    "no subscription runs yet",
  );
  await admin.getByRole("button", { name: "Run" }).click();
  await admin.locator(".result", { hasText: '"nickname": "production"' }).waitFor(WAIT);
  await admin.locator(".types summary", { hasText: "OrganizationalUnit" }).waitFor(WAIT);
  await shot(admin, "ide");

  // A subscription runs over the socket until stopped.
  await admin
    .getByLabel("Query")
    .fill(`subscription { harvestProgress(organization: "${org.id}") { phase outcome } }`);
  await admin.getByRole("button", { name: "Run" }).click();
  await admin.locator(".result", { hasText: "Subscribed" }).waitFor();
  const started = await fetch(`${base}/api/v1/organizations/${org.id}/harvest`, {
    method: "POST",
    headers: { Authorization: `Bearer ${adminToken}` },
  });
  assert.equal(started.status, 202);
  await admin.locator(".result", { hasText: '"phase": "FINISHED"' }).waitFor(WAIT);
  await admin.getByRole("button", { name: "Stop subscription" }).click();
});

step("an admin makes a viewer token in the console, its secret shown once", async () => {
  await admin.goto(`${base}/#/tokens`);
  await admin.getByLabel("Name", { exact: true }).fill("browser-viewer");
  await admin.getByLabel("Role").selectOption("VIEWER");
  await admin.getByRole("button", { name: "Create token" }).click();
  viewerToken = await admin.locator('code[data-token="browser-viewer"]').innerText(WAIT);
  await admin.locator('tr[data-token="browser-viewer"]', { hasText: "valid" }).waitFor(WAIT);
  await shot(admin, "tokens");
});

step("a viewer sees the same pages without any admin action", async () => {
  viewer = await newPage("viewer");
  await signIn(viewer, viewerToken);
  await viewer.locator(".role", { hasText: "viewer" }).waitFor();
  const row = viewer.locator(`tr[data-organization="${org.id}"]`);
  await row.waitFor(WAIT);
  const none = async (locator, what) => assert.equal(await locator.count(), 0, `a viewer sees no ${what}`);
  await none(viewer.getByRole("button", { name: "Harvest now" }), "Harvest now");
  await none(viewer.getByRole("link", { name: "Add organization" }), "Add organization");
  await none(viewer.getByRole("link", { name: "Tokens" }), "tokens link");
  await none(row.getByRole("link", { name: "Edit" }), "edit link");
  await shot(viewer, "viewer-organizations");

  await viewer.getByRole("link", { name: "Onboarding", exact: true }).click();
  await viewer.getByText("shown to admins only", { exact: false }).first().waitFor();
  await none(viewer.getByRole("button", { name: "Copy external ID" }), "external ID");
  await none(viewer.getByRole("button", { name: /Download/ }), "template download");
  await viewer.goBack();
  await row.waitFor(WAIT);

  await row.getByRole("link", { name: `${org.accounts.length + 1} accounts of production` }).click();
  assert.equal((await listedIds(viewer)).length, org.accounts.length + 1);
  await none(viewer.getByRole("link", { name: "Add a standalone account" }), "Add a standalone account");
  await viewer.getByRole("link", { name: "payments-prod" }).click();
  await viewer.locator(".timeline[aria-busy=false]").waitFor(WAIT);
  await none(viewer.getByRole("button", { name: "Add badge" }), "Add badge");
  await none(viewer.locator(".badge-list button"), "badge button");
  await shot(viewer, "viewer-account");
});

step("a token revoked in the console signs its open tab out, unasked", async () => {
  // The viewer's account page holds a subscription: the daemon closes its socket (4403).
  await admin.getByRole("button", { name: "Revoke browser-viewer…" }).click();
  await admin.getByRole("dialog").getByRole("button", { name: "Revoke browser-viewer" }).click();
  await admin.locator('tr[data-token="browser-viewer"]', { hasText: "revoked" }).waitFor(WAIT);
  await viewer.getByRole("heading", { name: "Sign in to orgsync" }).waitFor(WAIT);
  // Whichever noticed first, the socket or a read, the reason is shown.
  const reason = await viewer.locator(".notice", { hasText: "Signed out:" }).innerText();
  assert.match(reason, /refused or revoked|valid bearer token/);
  assert.equal(await viewer.evaluate(() => sessionStorage.length), 0, "the token left the tab");
});

step("signing out forgets the token", async () => {
  await admin.getByRole("button", { name: "Sign out" }).click();
  await admin.getByRole("heading", { name: "Sign in to orgsync" }).waitFor();
  assert.equal(await admin.evaluate(() => sessionStorage.length), 0, "the token left the tab");
});

test("no page logged an error, threw, or had a request fail", () => {
  assert.deepEqual(problems, []);
});
