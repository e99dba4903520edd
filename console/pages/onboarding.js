// Onboarding, as the seed's flow goes: copy the external ID, deploy the org role as a stack in
// the management account, the member role as a stack there and as a StackSet over the member
// accounts, then register the organization.

import { request } from "../graphql.js";
import { errorBox, field, h, heading, loading, replace, download } from "../dom.js";
import { href } from "../router.js";
import { isAdmin } from "../session.js";

const EXTERNAL_ID = `query ExternalId { externalId }`;
const TEMPLATE = `query Template($name: TemplateName!) { roleTemplate(name: $name) }`;

export default async function onboarding(view, { signal }) {
  const idBox = h("div", {}, loading("the external ID"));
  const names = {
    orgRole: h("input", { name: "org_role_name", value: "OrgSync-Org-Role", spellcheck: "false" }),
    memberRole: h("input", { name: "member_role_name", value: "OrgSync-Member-Role", spellcheck: "false" }),
    memberPolicy: h("input", {
      name: "member_policy_name",
      value: "OrgSync-Member-Policy",
      spellcheck: "false",
    }),
  };
  // The steps name the roles as typed above, so what the operator deploys matches what they
  // then give orgsync.
  const named = (key) => {
    const el = h("code", { "data-name": key }, names[key].value);
    names[key].addEventListener("input", () => (el.textContent = names[key].value || "(empty)"));
    return el;
  };
  const registerLink = h(
    "a",
    { class: "button", href: href("/organizations/new", { memberRole: names.memberRole.value }) },
    "Add the organization",
  );
  names.memberRole.addEventListener(
    "input",
    () => (registerLink.href = href("/organizations/new", { memberRole: names.memberRole.value })),
  );

  replace(
    view,
    heading("Onboarding an AWS Organization"),
    h(
      "p",
      {},
      "The external ID, then two CloudFormation stacks and a StackSet in AWS, then the organization in orgsync.",
    ),
    isAdmin()
      ? null
      : h(
          "p",
          { class: "notice" },
          "The external ID and the templates are shown to admins only; sign in with an admin token to deploy.",
        ),
    h(
      "ol",
      { class: "onboarding" },
      h(
        "li",
        {},
        h("h2", {}, "Copy the external ID"),
        h(
          "p",
          {},
          "Every role orgsync assumes requires this ID in its trust policy, against the confused-deputy problem. It is the same for every organization and account of this installation.",
        ),
        idBox,
      ),
      h(
        "li",
        {},
        h("h2", {}, "Name the roles"),
        h(
          "p",
          {},
          "The templates default to these names; change them here if you change them in CloudFormation, so the steps below and the registration form agree.",
        ),
        h(
          "div",
          { class: "grid" },
          field("Org role name", names.orgRole),
          field("Member role name", names.memberRole),
          field("Member policy name", names.memberPolicy),
        ),
      ),
      h(
        "li",
        {},
        h("h2", {}, "The org role: a stack in the management account"),
        templateButton("ORG_ROLE", "orgsync-org-role.yaml", "Download the org-role template", signal),
        h(
          "ol",
          {},
          h(
            "li",
            {},
            "Sign in to the organization's management account as an admin and open CloudFormation → Stacks → Create stack → With new resources (standard).",
          ),
          h(
            "li",
            {},
            "Choose “Template is ready”, “Upload a template file”, and the downloaded orgsync-org-role.yaml.",
          ),
          h(
            "li",
            {},
            "Name the stack (e.g. orgsync-org-role). Keep RoleName as ",
            named("orgRole"),
            "; ExternalId is filled in; TrustedPrincipalArn is the role or user orgsync runs as (filled in when the daemon's aws.trusted_principal_arn is set).",
          ),
          h(
            "li",
            {},
            "Acknowledge that the stack creates IAM resources, create it, and note the RoleArn output: it is the org role ARN of the registration.",
          ),
        ),
        h(
          "p",
          { class: "hint" },
          "The role may list and describe the organization, its OUs, accounts and tags, and simulate its own policy, which orgsync does at registration.",
        ),
      ),
      h(
        "li",
        {},
        h("h2", {}, "The member role: a stack in the management account"),
        templateButton(
          "MEMBER_ROLE",
          "orgsync-member-role.yaml",
          "Download the member-role template",
          signal,
        ),
        h(
          "ol",
          {},
          h(
            "li",
            {},
            "In the same account, create another stack with the downloaded orgsync-member-role.yaml: the management account is harvested like every member account.",
          ),
          h(
            "li",
            {},
            "Set RoleName to ",
            named("memberRole"),
            " and PolicyName to ",
            named("memberPolicy"),
            "; ExternalId and TrustedPrincipalArn as before.",
          ),
          h("li", {}, "Acknowledge the IAM resources and create the stack."),
        ),
      ),
      h(
        "li",
        {},
        h("h2", {}, "The member role everywhere: a StackSet to the member accounts"),
        h(
          "ol",
          {},
          h(
            "li",
            {},
            "Still in the management account, open CloudFormation → StackSets → Create StackSet, and upload the same orgsync-member-role.yaml.",
          ),
          h(
            "li",
            {},
            "Use the same parameters as the stack above: RoleName ",
            named("memberRole"),
            ", PolicyName ",
            named("memberPolicy"),
            ", the same ExternalId and TrustedPrincipalArn.",
          ),
          h(
            "li",
            {},
            "Deploy new stacks to the member accounts or to OUs (a comma-separated list, or a CSV file).",
          ),
          h(
            "li",
            {},
            "Deploy to the region ",
            h("strong", {}, "us-east-1"),
            " only: IAM roles are global, so one region is enough.",
          ),
          h(
            "li",
            {},
            "Acknowledge the IAM resources, submit, and check that every stack instance succeeded. Reuse this StackSet when the template changes.",
          ),
        ),
      ),
      h(
        "li",
        {},
        h("h2", {}, "Add the organization to orgsync"),
        h(
          "p",
          {},
          "Give the org role's ARN and the member role's name. orgsync assumes the org role, reads the organization and simulates the role's policy before it stores anything; member roles are tried at each harvest.",
        ),
        isAdmin() ? registerLink : null,
      ),
    ),
    h(
      "p",
      { class: "notice" },
      "Service control policies can block what the roles grant. And when an SCP has conditions on global keys such as aws:PrincipalArn, ",
      "IAM's policy simulator can report actions as denied that are in fact allowed: such permission warnings on an account may be false.",
    ),
  );

  if (!isAdmin()) {
    replace(idBox, h("p", { class: "empty" }, "Shown to admins only."));
    return;
  }
  try {
    const { externalId } = await request(EXTERNAL_ID, {}, { signal });
    replace(idBox, externalIdBox(externalId));
  } catch (error) {
    if (!signal.aborted) replace(idBox, errorBox(error, "Could not load the external ID"));
  }
}

function externalIdBox(externalId) {
  const status = h("span", { role: "status", class: "copy-status" });
  const value = h("code", { id: "external-id", class: "secret" }, externalId);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(externalId);
      replace(status, "Copied to the clipboard.");
    } catch (error) {
      replace(status, `Could not copy (${error.message}); select the ID and copy it by hand.`);
    }
  };
  return h(
    "div",
    { class: "copy" },
    h("span", { class: "visually-hidden" }, "External ID: "),
    value,
    " ",
    h("button", { type: "button", onclick: copy }, "Copy external ID"),
    " ",
    status,
  );
}

function templateButton(name, fileName, label, signal) {
  if (!isAdmin()) return null;
  const status = h("span", { role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        button.disabled = true;
        replace(status);
        try {
          const { roleTemplate } = await request(TEMPLATE, { name }, { signal });
          download(fileName, roleTemplate);
          replace(status, `Saved ${fileName}.`);
        } catch (error) {
          if (!signal.aborted) replace(status, errorBox(error, "Could not get the template"));
        } finally {
          button.disabled = false;
        }
      },
    },
    label,
  );
  return h("p", {}, button, " ", status);
}
