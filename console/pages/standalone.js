// Add an account outside any organization, with its own role in the account itself. orgsync
// assumes the role before it stores anything; an organization registered later that lists
// the account adopts it.

import { request } from "../graphql.js";
import { errorBox, field, h, heading, replace } from "../dom.js";
import { accountRoleFields, markInvalidFields } from "../orgform.js";
import { href, navigate } from "../router.js";
import { isAdmin } from "../session.js";

const ADD = `mutation AddAccount($input: AddAccountInput!) { addAccount(input: $input) { accountId } }`;

export default function standalone(view) {
  if (!isAdmin()) {
    replace(
      view,
      heading("Add a standalone account"),
      h("p", { class: "notice" }, "Adding an account needs an admin token."),
    );
    return;
  }
  const accountId = h("input", {
    name: "account_id",
    required: true,
    pattern: "[0-9]{12}",
    inputmode: "numeric",
    spellcheck: "false",
  });
  const name = h("input", { name: "name", required: true, maxlength: 64 });
  const role = accountRoleFields();
  const outcome = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Add account");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        replace(outcome, h("p", { role: "status" }, "Assuming the role…"));
        try {
          const input = { accountId: accountId.value.trim(), name: name.value.trim(), ...role.read() };
          const { addAccount } = await request(ADD, { input });
          navigate(`/accounts/${addAccount.accountId}`);
        } catch (error) {
          markInvalidFields(form, error);
          replace(outcome, errorBox(error, "The account was not added"));
          button.disabled = false;
        }
      },
    },
    field("Account id", accountId, "12 digits"),
    field("Name", name),
    role.element,
    h("div", { class: "actions" }, button, h("a", { href: href("/accounts") }, "Cancel")),
    outcome,
  );
  replace(
    view,
    heading("Add a standalone account"),
    h(
      "p",
      {},
      "For an account outside any registered organization. Deploy the member-role template in it first (see the onboarding), then give that role here.",
    ),
    form,
  );
}
