// Edit an organization: its nickname alone, its filters alone, or its credentials as a whole
// (they are stored sealed and never shown, so a change means every field of both roles
// again: the seed's "complete resubmission"); or remove it, after a confirmation.

import { request } from "../graphql.js";
import { confirmButton, errorBox, field, h, heading, loading, replace } from "../dom.js";
import { filterFields, markInvalidFields, queueField, roleFields, validationSteps } from "../orgform.js";
import { href, navigate } from "../router.js";
import { isAdmin } from "../session.js";

const ORGANIZATION = `query Organization($id: ID!) {
  organization(id: $id) {
    id nickname
    filters { excludeNamePrefixes limitScopeOuIds autoRemoveSuspended autoBadge }
    eventsQueue { url }
  }
}`;
const UPDATE = `mutation Update($id: ID!, $input: UpdateOrganizationInput!) {
  updateOrganization(id: $id, input: $input) { id nickname }
}`;
const REMOVE = `mutation Remove($id: ID!) { removeOrganization(id: $id) }`;

export default async function edit(view, { args, signal }) {
  const title = heading(`Edit organization ${args.id}`);
  const crumbs = h("p", { class: "crumbs" }, h("a", { href: href("/organizations") }, "Organizations"));
  if (!isAdmin()) {
    replace(
      view,
      crumbs,
      title,
      h("p", { class: "notice" }, "Editing an organization needs an admin token."),
    );
    return;
  }
  replace(view, crumbs, title, loading("the organization"));
  let org;
  try {
    ({ organization: org } = await request(ORGANIZATION, { id: args.id }, { signal }));
  } catch (error) {
    if (!signal.aborted) view.lastChild.replaceWith(errorBox(error, "Could not load the organization"));
    return;
  }
  if (!org) {
    view.lastChild.replaceWith(h("p", { class: "empty" }, `No organization ${args.id} is registered.`));
    return;
  }
  replace(title, `Edit ${org.nickname} `, h("code", {}, org.id));
  view.lastChild.replaceWith(
    renameForm(org),
    filtersForm(org),
    queueForm(org),
    credentialsForm(org),
    removeSection(org),
  );
}

/** A form that sends one `updateOrganization` and says how it went beside its button. */
function updateForm(org, legend, fields, input, { steps = null } = {}) {
  const outcome = h("div", { class: "outcome", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, legend);
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        replace(outcome);
        steps?.checking();
        try {
          await request(UPDATE, { id: org.id, input: input() });
          steps?.passed();
          replace(outcome, h("p", { class: "ok" }, "Saved."));
        } catch (error) {
          // With steps, the refusal shows at its step; without, beside the button.
          const step = steps ? steps.failed(error) : "fields";
          if (step === "fields") markInvalidFields(form, error);
          if (!steps) replace(outcome, errorBox(error, "Not saved"));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("h2", {}, legend),
    fields,
    h("div", { class: "actions" }, button),
    outcome,
    steps?.element,
  );
  return form;
}

function renameForm(org) {
  const nickname = h("input", { name: "nickname", required: true, maxlength: 64, value: org.nickname });
  return updateForm(org, "Rename", field("Nickname", nickname), () => ({ nickname: nickname.value.trim() }));
}

function filtersForm(org) {
  const filters = filterFields(org.filters);
  return updateForm(org, "Change filters", filters.element, () => ({ filters: filters.read() }));
}

function queueForm(org) {
  const queue = queueField(org.eventsQueue?.url ?? "");
  const note = h(
    "p",
    { class: "hint" },
    "Blank stops following a queue; a new one is read through the org role before it is kept.",
  );
  // null (not left out) is what clears it.
  return updateForm(org, "Change events queue", [queue.element, note], () => ({
    eventsQueueUrl: queue.read(),
  }));
}

function credentialsForm(org) {
  const roles = roleFields({ required: false });
  const steps = validationSteps();
  const fields = [
    h(
      "p",
      { class: "notice" },
      "The roles are stored sealed and are never shown, so they cannot be changed one field at a time: ",
      "replacing them takes every field of both roles again, and a partial set is refused. ",
      "The new org role is checked as at registration before anything is stored.",
    ),
    roles.element,
  ];
  return updateForm(org, "Replace credentials", fields, () => roles.read(), { steps });
}

function removeSection(org) {
  const outcome = h("div", { "aria-live": "polite" });
  const remove = confirmButton({
    label: "Remove organization…",
    title: `Remove ${org.nickname} (${org.id})?`,
    text: "Its accounts leave the listing and harvests stop. Their history stays in the event log.",
    confirm: `Remove ${org.nickname}`,
    action: async () => {
      await request(REMOVE, { id: org.id });
      navigate("/organizations");
    },
    outcome,
  });
  return h("section", { class: "card" }, h("h2", {}, "Remove"), remove, outcome);
}
