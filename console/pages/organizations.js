// Organizations: each with its last harvest, its account count leading to its accounts, its
// OU tree, and "Harvest now" with live progress. Counts follow the accounts' events.

import { request } from "../graphql.js";
import { errorBox, h, heading, loading, replace, rereads, rerender, when } from "../dom.js";
import { harvestControl } from "../harvest.js";
import { followAccounts } from "../live.js";
import { href } from "../router.js";
import { isAdmin } from "../session.js";

const ORGANIZATIONS = `query Organizations {
  organizations {
    id nickname managementAccountId accountCount
    lastHarvest { startedAt finishedAt outcome accountsSeen error }
    eventsQueue { url polledAt error }
  }
}`;

export default async function organizations(view, { params, signal }) {
  const body = h("div", {}, loading("organizations"));
  const registered = params.get("registered");
  replace(
    view,
    heading("Organizations"),
    registered
      ? h(
          "p",
          { class: "notice ok", role: "status" },
          `Registered ${registered}; its first harvest has started.`,
        )
      : null,
    isAdmin()
      ? h("p", {}, h("a", { class: "button", href: href("/organizations/new") }, "Add organization"))
      : null,
    body,
  );
  // Each organization's harvest control lives across re-reads of the table, so its
  // subscription and the progress it shows are not lost when a harvest ends.
  const controls = new Map();
  const reread = rereads();
  async function refresh() {
    const latest = reread();
    let data;
    try {
      data = await request(ORGANIZATIONS, {}, { signal });
    } catch (error) {
      if (!signal.aborted && latest()) replace(body, errorBox(error, "Could not load the organizations"));
      return;
    }
    if (!latest()) return;
    if (data.organizations.length === 0) {
      replace(
        body,
        h(
          "p",
          {},
          "No organization is registered yet. ",
          isAdmin() ? h("a", { href: href("/onboarding") }, "Start the onboarding") : null,
        ),
      );
      return;
    }
    const control = (org) => {
      if (!controls.has(org.id)) {
        controls.set(org.id, harvestControl(org, { signal, onChange: refreshSoon }));
        followAccounts([org.id], {
          signal,
          onChange: refreshSoon,
          onStopped: (error) => body.before(errorBox(error, "Live updates stopped")),
        });
      }
      return controls.get(org.id);
    };
    rerender(
      body,
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, "Registered organizations"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Organization", "Management account", "Accounts", "Last harvest", "Harvest"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          data.organizations.map((org) =>
            h(
              "tr",
              { "data-organization": org.id },
              h(
                "td",
                {},
                h("strong", {}, org.nickname),
                h("br"),
                h("code", {}, org.id),
                h(
                  "div",
                  { class: "row-links" },
                  h("a", { href: href(`/organizations/${org.id}/units`) }, "OU tree"),
                  isAdmin() ? h("a", { href: href(`/organizations/${org.id}/edit`) }, "Edit") : null,
                ),
              ),
              h("td", {}, h("code", {}, org.managementAccountId)),
              h(
                "td",
                {},
                h(
                  "a",
                  {
                    class: "count",
                    href: href("/accounts", { organization: org.id }),
                    "aria-label": `${org.accountCount} accounts of ${org.nickname}`,
                  },
                  String(org.accountCount),
                ),
              ),
              h("td", { class: "last-harvest" }, lastHarvest(org.lastHarvest), eventsQueue(org.eventsQueue)),
              h("td", {}, control(org)),
            ),
          ),
        ),
      ),
    );
  }
  // The controls' subscriptions start together (one socket message each, in one turn); one
  // re-read answers all of them.
  let queued = false;
  function refreshSoon() {
    if (queued) return;
    queued = true;
    queueMicrotask(() => {
      queued = false;
      refresh();
    });
  }
  await refresh();
}

/** Whether the organization's own events arrive, when it follows a queue (R16). */
function eventsQueue(queue) {
  if (!queue) return null;
  return h(
    "div",
    { class: "queue" },
    "Events queue: ",
    queue.error
      ? h("span", { class: "error-text" }, queue.error)
      : queue.polledAt
        ? ["read ", when(queue.polledAt)]
        : "not read yet",
  );
}

function lastHarvest(harvest) {
  if (!harvest) return "none yet";
  return [
    h("span", { class: `outcome ${harvest.outcome}` }, harvest.outcome),
    " ",
    when(harvest.finishedAt ?? harvest.startedAt),
    harvest.accountsSeen !== null ? h("div", {}, `${harvest.accountsSeen} accounts seen`) : null,
    harvest.error ? h("div", { class: "error-text" }, harvest.error) : null,
  ];
}
