// Pages that follow account events: each organization's accountChanged subscription, with a
// burst of events (a harvest applies many at once) answered by one re-read.

import { subscribe } from "./graphql.js";

const CHANGES = `subscription Changes($organization: ID!) {
  accountChanged(organization: $organization) { accountId }
}`;
const BURST_MS = 250;

/**
 * Calls `onChange` once after each burst of events of `organizationIds` (of `accountId`
 * alone, when given), and once each subscription is on its way (events before it, since the
 * page's first read or while a dropped socket was down, would be missed otherwise).
 * `onStopped(error)` is told when the daemon refuses the subscription.
 */
export function followAccounts(organizationIds, { signal, onChange, onStopped, accountId = null }) {
  let pending = null;
  const soon = () => {
    clearTimeout(pending);
    pending = setTimeout(onChange, BURST_MS);
  };
  signal.addEventListener("abort", () => clearTimeout(pending));
  for (const organization of organizationIds) {
    subscribe(
      CHANGES,
      { organization },
      {
        next: ({ accountChanged }) =>
          (accountId === null || accountChanged.accountId === accountId) && soon(),
        subscribed: soon,
        error: onStopped,
      },
      signal,
    );
  }
}
