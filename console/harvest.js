// "Harvest now" with a live progress bar, fed by the harvestProgress subscription: whoever
// started the harvest (this button, the scheduler, a registration), its progress shows.

import { request, subscribe } from "./graphql.js";
import { h, replace } from "./dom.js";
import { isAdmin } from "./session.js";

const START = `mutation Start($id: ID!) { startHarvest(id: $id) }`;
const PROGRESS = `subscription Progress($organization: ID!) {
  harvestProgress(organization: $organization) {
    phase accountsListed accountsApplied outcome error
  }
}`;

/**
 * The harvest control of organization `org` (`{id, nickname}`): a button for admins, a
 * progress bar for everyone. `onChange`, when given, runs whenever a harvest may have changed
 * what the page shows: after each harvest ends, and once its progress is being followed, since
 * a harvest that ended just before would otherwise go unseen.
 */
export function harvestControl(org, { signal, onChange }) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `Harvest of ${org.nickname}` });
  const status = h("span", { class: "harvest-status", role: "status" });
  // Until it has something to show, the box keeps its place invisibly, so that the page does
  // not shift under the reader's pointer when a harvest starts.
  const box = h("div", { class: "harvest", "data-phase": "IDLE" }, bar, status);
  const button = isAdmin()
    ? h(
        "button",
        {
          type: "button",
          onclick: async () => {
            button.disabled = true;
            // What the bar showed of an earlier harvest is over; this one's reports follow.
            box.dataset.phase = "REQUESTED";
            delete box.dataset.outcome;
            bar.removeAttribute("value");
            show("starting…");
            try {
              const { startHarvest } = await request(START, { id: org.id }, { signal });
              if (startHarvest === "ALREADY_RUNNING")
                show("a harvest is running already; another follows it");
            } catch (error) {
              if (!signal.aborted) show(`not started: ${error.message}`, "error");
            } finally {
              button.disabled = false;
            }
          },
        },
        "Harvest now",
      )
    : null;

  function show(text, tone = null) {
    box.classList.add("shown");
    status.className = `harvest-status ${tone ?? ""}`;
    replace(status, text);
  }

  subscribe(
    PROGRESS,
    { organization: org.id },
    {
      next({ harvestProgress: p }) {
        box.dataset.phase = p.phase;
        switch (p.phase) {
          // Indeterminate until AWS has listed the accounts: their number is not known before.
          case "STARTED":
            bar.removeAttribute("value");
            show("reading the organization…");
            break;
          case "LISTING":
            bar.removeAttribute("value");
            show(`checking the member roles of ${p.accountsListed} accounts…`);
            break;
          case "APPLYING":
            bar.max = Math.max(p.accountsListed, 1);
            bar.value = p.accountsApplied;
            show(`applying ${p.accountsApplied} of ${p.accountsListed} accounts`);
            break;
          case "FINISHED":
            bar.max = 1;
            bar.value = 1;
            box.dataset.outcome = p.outcome;
            if (p.outcome === "completed") show(`completed: ${p.accountsListed} accounts`, "ok");
            else show(`failed: ${p.error ?? "see the last harvest"}`, "error");
            onChange?.();
            break;
        }
      },
      error(error) {
        show(`progress unavailable: ${error.message}`, "error");
      },
      subscribed() {
        onChange?.();
      },
    },
    signal,
  );
  return h("div", { class: "harvest-control" }, button, box);
}
