// API tokens (admins only): every token with its role, use and expiry, never a secret; a new
// one, whose secret is shown this once; and revocation, which every instance honours within
// a second.

import { request } from "../graphql.js";
import { confirmButton, errorBox, field, h, heading, loading, replace, when } from "../dom.js";
import { isAdmin } from "../session.js";

const TOKENS = `query Tokens {
  tokens { name role createdAt lastUsedAt expiresAt revokedAt valid }
}`;
const CREATE = `mutation Create($name: String!, $role: Role!, $expiresInSeconds: Int) {
  createToken(name: $name, role: $role, expiresInSeconds: $expiresInSeconds) { token info { name } }
}`;
const REVOKE = `mutation Revoke($name: String!) { revokeToken(name: $name) }`;

const DAY = 24 * 60 * 60;
const LIFETIMES = [
  ["", "never"],
  [String(DAY), "1 day"],
  [String(30 * DAY), "30 days"],
  [String(90 * DAY), "90 days"],
  [String(365 * DAY), "1 year"],
];

export default async function tokens(view, { signal }) {
  if (!isAdmin()) {
    replace(
      view,
      heading("API tokens"),
      h("p", { class: "notice" }, "Tokens are managed with an admin token."),
    );
    return;
  }
  const list = h("div", {}, loading("the tokens"));
  const created = h("div", { "aria-live": "polite" });
  replace(
    view,
    heading("API tokens"),
    createForm(created, () => refresh()),
    created,
    h("h2", {}, "Tokens"),
    list,
  );

  async function refresh() {
    let data;
    try {
      data = await request(TOKENS, {}, { signal });
    } catch (error) {
      if (!signal.aborted) replace(list, errorBox(error, "Could not load the tokens"));
      return;
    }
    replace(list, tokenTable(data.tokens, refresh));
  }
  await refresh();
}

function createForm(created, refresh) {
  const name = h("input", { name: "name", required: true, maxlength: 64, spellcheck: "false" });
  const role = h(
    "select",
    { name: "role" },
    h("option", { value: "VIEWER" }, "viewer: reads"),
    h("option", { value: "ADMIN" }, "admin: reads and changes"),
  );
  const lifetime = h(
    "select",
    { name: "expires_in" },
    LIFETIMES.map(([value, label]) => h("option", { value, selected: label === "90 days" }, label)),
  );
  const button = h("button", { type: "submit" }, "Create token");
  return h(
    "form",
    {
      class: "card inline",
      "aria-label": "Create a token",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        replace(created);
        try {
          const variables = {
            name: name.value.trim(),
            role: role.value,
            expiresInSeconds: lifetime.value ? Number(lifetime.value) : null,
          };
          const { createToken } = await request(CREATE, variables);
          replace(created, secretBox(createToken));
          event.target.reset();
          await refresh();
        } catch (error) {
          replace(created, errorBox(error, "No token was made"));
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Name", name, "Unique for good: events the token causes carry it"),
    field("Role", role),
    field("Expires after", lifetime),
    button,
  );
}

/** A new token's secret, which the daemon keeps only as a hash: shown this once. */
function secretBox({ token, info }) {
  const status = h("span", { role: "status" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token);
      replace(status, "Copied to the clipboard.");
    } catch (error) {
      replace(status, `Could not copy (${error.message}); select the token and copy it by hand.`);
    }
  };
  return h(
    "div",
    { class: "notice ok" },
    h("p", {}, `Token ${info.name} made. Its secret is shown this once: keep it now.`),
    h(
      "div",
      { class: "copy" },
      h("code", { class: "secret", "data-token": info.name }, token),
      h("button", { type: "button", onclick: copy }, "Copy token"),
      status,
    ),
  );
}

function tokenTable(all, refresh) {
  const outcome = h("div", { "aria-live": "polite" });
  return [
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, "API tokens"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Name", "Role", "Created", "Last used", "Expires", "State", ""].map((t) =>
            h("th", { scope: "col" }, t),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        all.map((t) =>
          h(
            "tr",
            { "data-token": t.name },
            h("td", {}, h("code", {}, t.name)),
            h("td", {}, t.role.toLowerCase()),
            h("td", {}, when(t.createdAt)),
            h("td", {}, t.lastUsedAt ? when(t.lastUsedAt) : "never"),
            h("td", {}, t.expiresAt ? when(t.expiresAt) : "never"),
            h(
              "td",
              { class: t.valid ? "ok" : "error-text" },
              t.valid ? "valid" : t.revokedAt ? "revoked" : "expired",
            ),
            h(
              "td",
              {},
              t.valid
                ? confirmButton({
                    label: `Revoke ${t.name}…`,
                    title: `Revoke ${t.name}?`,
                    text: "It is refused at once here and by every other instance within a second, for good: its name is never given again.",
                    confirm: `Revoke ${t.name}`,
                    action: async () => {
                      await request(REVOKE, { name: t.name });
                      await refresh();
                    },
                    outcome,
                  })
                : null,
            ),
          ),
        ),
      ),
    ),
    outcome,
  ];
}
