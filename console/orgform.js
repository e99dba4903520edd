// The parts of the organization and account forms that several pages share: the roles'
// fields, the filters, and the role check's steps, each failure shown at its own step.

import { field, h, listOf, replace } from "./dom.js";

// The formats the daemon checks (R3), repeated so that the browser points at a mistyped
// field before a round trip; the daemon stays the judge and its refusals show too.
const ROLE_ARN = String.raw`arn:(aws|aws-us-gov|aws-cn):iam::[0-9]{12}:role/.+`;
const SESSION_NAME = String.raw`[\w+=,.@\-]{2,64}`;
const DURATION = { min: 900, max: 43200, step: 1 };

const roleInput = (name, required, props = {}) =>
  h("input", { name, required, spellcheck: "false", autocomplete: "off", ...props });
// A blank is left out of what is sent, so the daemon says whether a set is complete.
const text = (el) => el.value.trim() || undefined;
const number = (el) => (el.value.trim() === "" ? undefined : Number(el.value));

/**
 * The fields of both roles. With `required`, every field must be filled (a registration);
 * without, blanks are allowed and left out of the answer (an edit, where the daemon says
 * whether the set is complete). `read()` gives `{orgRole, memberRole}` with blanks left out.
 */
export function roleFields({ required, memberRoleName = "" }) {
  const input = (name, props) => roleInput(name, required, props);
  const f = {
    roleArn: input("role_arn", {
      pattern: ROLE_ARN,
      placeholder: "arn:aws:iam::111122223333:role/OrgSync-Org-Role",
      size: 60,
    }),
    orgSession: input("session_name", { pattern: SESSION_NAME, value: required ? "orgsync" : "" }),
    orgDuration: input("duration_seconds", { type: "number", ...DURATION, value: required ? 3600 : "" }),
    roleName: input("role_name", { value: memberRoleName, placeholder: "OrgSync-Member-Role" }),
    memberSession: input("session_name", { pattern: SESSION_NAME, value: required ? "orgsync" : "" }),
    memberDuration: input("duration_seconds", { type: "number", ...DURATION, value: required ? 3600 : "" }),
  };
  const element = [
    h(
      "fieldset",
      { "data-role": "org" },
      h("legend", {}, "Org role (in the management account)"),
      field("Org role ARN", f.roleArn, "The role the org-role stack made: it reads the organization."),
      field(
        "Org role session name",
        f.orgSession,
        "Shows in CloudTrail; 2 to 64 of letters, digits and +=,.@-",
      ),
      field("Org role session duration (seconds)", f.orgDuration, "900 to 43200"),
    ),
    h(
      "fieldset",
      { "data-role": "member" },
      h("legend", {}, "Member role (in every account)"),
      field("Member role name", f.roleName, "The RoleName given to the member-role stack and StackSet."),
      field("Member role session name", f.memberSession),
      field("Member role session duration (seconds)", f.memberDuration, "900 to 43200"),
    ),
  ];
  const read = () => ({
    orgRole: {
      roleArn: text(f.roleArn),
      sessionName: text(f.orgSession),
      durationSeconds: number(f.orgDuration),
    },
    memberRole: {
      roleName: text(f.roleName),
      sessionName: text(f.memberSession),
      durationSeconds: number(f.memberDuration),
    },
  });
  return { element, read };
}

/** The role of a standalone account, in the account itself; `read()` gives an AccountRoleInput. */
export function accountRoleFields() {
  const f = {
    roleArn: roleInput("role_arn", true, {
      pattern: ROLE_ARN,
      placeholder: "arn:aws:iam::777788889999:role/OrgSync-Member-Role",
      size: 60,
    }),
    session: roleInput("session_name", true, { pattern: SESSION_NAME, value: "orgsync" }),
    duration: roleInput("duration_seconds", true, { type: "number", ...DURATION, value: 3600 }),
  };
  const element = h(
    "fieldset",
    {},
    h("legend", {}, "The account's role"),
    field(
      "Role ARN",
      f.roleArn,
      "A role in this account whose trust policy requires the external ID (the member-role template makes one).",
    ),
    field("Session name", f.session, "Shows in CloudTrail; 2 to 64 of letters, digits and +=,.@-"),
    field("Session duration (seconds)", f.duration, "900 to 43200"),
  );
  const read = () => ({
    roleArn: text(f.roleArn),
    sessionName: text(f.session),
    durationSeconds: number(f.duration),
  });
  return { element, read };
}

/** The filters, filled with `filters` (the defaults of a registration when absent). */
export function filterFields(
  filters = { excludeNamePrefixes: [], limitScopeOuIds: [], autoRemoveSuspended: false, autoBadge: true },
) {
  const prefixes = h(
    "textarea",
    { name: "exclude_name_prefixes", rows: 2, spellcheck: "false" },
    filters.excludeNamePrefixes.join("\n"),
  );
  const scope = h(
    "textarea",
    { name: "limit_scope_ou_ids", rows: 2, spellcheck: "false" },
    filters.limitScopeOuIds.join("\n"),
  );
  const suspended = h("input", {
    type: "checkbox",
    name: "auto_remove_suspended",
    checked: filters.autoRemoveSuspended,
  });
  const badge = h("input", { type: "checkbox", name: "auto_badge", checked: filters.autoBadge });
  const element = h(
    "fieldset",
    {},
    h("legend", {}, "Filters"),
    field("Exclude accounts whose name starts with", prefixes, "One prefix a line"),
    field(
      "Limit the scope to these OU or root ids",
      scope,
      "One id a line (ou-… or r-…); accounts nested anywhere below them. Empty: the whole organization.",
    ),
    field(
      "Auto-remove suspended accounts",
      suspended,
      "Suspended and closed accounts leave the listing, at once when switched on.",
    ),
    field("Auto-badge accounts from their tags", badge, "Tag badges follow AWS and cannot be edited here."),
  );
  const read = () => ({
    excludeNamePrefixes: listOf(prefixes.value),
    limitScopeOuIds: listOf(scope.value),
    autoRemoveSuspended: suspended.checked,
    autoBadge: badge.checked,
  });
  return { element, read };
}

/** The events queue (R16), optional: its URL, or null when left blank. */
export function queueField(url = "") {
  const input = h("input", {
    name: "events_queue_url",
    type: "url",
    value: url,
    size: 60,
    spellcheck: "false",
    placeholder: "https://sqs.us-east-1.amazonaws.com/111122223333/orgsync-events",
  });
  const element = field(
    "Events queue URL (optional)",
    input,
    "An SQS queue that Organizations' own events reach through EventBridge: changes then arrive within seconds instead of at the next harvest. It is read through the org role.",
  );
  return { element, read: () => input.value.trim() || null };
}

/** The checks a registration or a credential change goes through, in the daemon's order (R3). */
const STEPS = [
  ["fields", "Check the fields"],
  ["assume", "Assume the org role"],
  ["describe", "Describe the organization"],
  ["simulate", "Simulate the org role's policy"],
  ["queue", "Read the events queue"],
];

/** The step an error of the role check belongs to, from its `extensions`. */
function stepOf(error) {
  const code = error.code;
  if (code === "assume_role_failed") return "assume";
  if (["describe_organization_failed", "not_organization_management", "wrong_organization"].includes(code))
    return "describe";
  if (code === "simulation_failed" || error.extensions.denied_actions) return "simulate";
  if (code === "events_queue_unreachable") return "queue";
  return "fields";
}

/**
 * The steps as a list that shows which passed, which failed and why, and which were not
 * reached. `queued`, for a form with an events queue, says whether one is given (its step is
 * not asked for without); other forms have no queue step.
 */
export function validationSteps(queued = null) {
  const steps = queued ? STEPS : STEPS.filter(([key]) => key !== "queue");
  const given = () => queued?.() ?? false;
  const items = new Map(
    steps.map(([key, label]) => [
      key,
      h(
        "li",
        { "data-step": key, class: "step" },
        h("span", { class: "label" }, label),
        h("span", { class: "state" }),
      ),
    ]),
  );
  const element = h("ol", { class: "steps", "aria-label": "Role check", "aria-live": "polite" }, [
    ...items.values(),
  ]);
  const set = (key, state, text, ...detail) => {
    const item = items.get(key);
    item.dataset.state = state;
    replace(item.querySelector(".state"), text);
    item.querySelector(".detail")?.remove();
    if (detail.length) item.append(h("div", { class: "detail" }, detail));
  };
  return {
    element,
    checking() {
      for (const [key] of steps) set(key, "checking", "checking…");
      if (queued && !given()) set("queue", "skipped", "none given");
    },
    passed() {
      for (const [key] of steps) set(key, "passed", "passed");
      if (queued && !given()) set("queue", "skipped", "none given");
    },
    failed(error) {
      // A refusal of a step this form does not show is shown at the first one.
      const at = Math.max(
        steps.findIndex(([key]) => key === stepOf(error)),
        0,
      );
      steps.forEach(([key], i) => {
        if (i < at) set(key, "passed", "passed");
        else if (i > at) set(key, "skipped", key === "queue" && !given() ? "none given" : "not reached");
      });
      const denied = error.extensions.denied_actions ?? [];
      set(
        steps[at][0],
        "failed",
        "failed",
        h("p", {}, error.message),
        error.code
          ? h(
              "p",
              {},
              "Code: ",
              h("code", {}, error.code),
              error.extensions.aws_error_code
                ? [" · AWS: ", h("code", {}, error.extensions.aws_error_code)]
                : null,
            )
          : null,
        denied.length
          ? [
              h("p", {}, "Denied actions:"),
              h(
                "ul",
                { class: "denied" },
                denied.map((a) => h("li", {}, h("code", {}, a))),
              ),
            ]
          : null,
      );
      return steps[at][0];
    },
  };
}

/** Marks the inputs of `form` that a field error names (`role_arn: expected …`). */
export function markInvalidFields(form, error) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const name = /^([a-z_.]+):/.exec(error.message)?.[1]?.split(".").at(-1);
  if (!name) return;
  const named = [...form.querySelectorAll(`[name="${name}"]`)];
  // Both roles have a session name and a duration: the one whose value the message quotes.
  const quoted = named.filter((el) => error.message.includes(JSON.stringify(el.value)));
  const marked = quoted.length ? quoted : named;
  for (const el of marked) el.setAttribute("aria-invalid", "true");
  marked[0]?.focus();
}
