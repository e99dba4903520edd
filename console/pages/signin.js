// Sign-in: the operator pastes an API token; its role decides which actions the console offers.

import { GraphQLError, request } from "../graphql.js";
import { errorBox, field, h, heading, replace } from "../dom.js";
import { signIn } from "../session.js";

/**
 * Checks `bearer` and remembers it with its role. Listing tokens is admin-only and cheap, so
 * a `forbidden` answer is a valid viewer token; any other error is a token not accepted.
 */
export async function verify(bearer) {
  let role;
  try {
    await request("query Role { tokens { name } }", {}, { bearer });
    role = "ADMIN";
  } catch (error) {
    if (!(error instanceof GraphQLError) || error.code !== "forbidden") throw error;
    role = "VIEWER";
  }
  signIn(bearer, role);
}

export default function signInPage(view, { reason, done }) {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    spellcheck: "false",
  });
  const problem = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        replace(problem);
        try {
          await verify(input.value.trim());
          done();
        } catch (error) {
          replace(problem, errorBox(error, "That token was not accepted"));
          button.disabled = false;
          input.focus();
        }
      },
    },
    field(
      "API token",
      input,
      "An admin or viewer token, e.g. the one in <state dir>/admin.token. It is kept for this tab only.",
    ),
    button,
  );
  replace(
    view,
    heading("Sign in to orgsync"),
    reason ? h("p", { class: "notice", role: "status" }, `Signed out: ${reason}`) : null,
    form,
    problem,
  );
}
