// The console's shell: sign-in, the navigation, and the page the URL names.

import { errorBox, h, heading, replace } from "./dom.js";
import { current, href, match } from "./router.js";
import { isAdmin, session, signOut, token } from "./session.js";
import signInPage, { verify } from "./pages/signin.js";
import onboarding from "./pages/onboarding.js";
import register from "./pages/register.js";
import organizations from "./pages/organizations.js";
import accounts from "./pages/accounts.js";
import account from "./pages/account.js";
import standalone from "./pages/standalone.js";
import units from "./pages/units.js";
import edit from "./pages/edit.js";
import ide from "./pages/ide.js";
import tokens from "./pages/tokens.js";

const ROUTES = [
  ["/", organizations],
  ["/organizations", organizations],
  ["/organizations/new", register],
  ["/organizations/:id/edit", edit],
  ["/organizations/:id/units", units],
  ["/onboarding", onboarding],
  ["/accounts", accounts],
  ["/accounts/new", standalone],
  ["/accounts/:id", account],
  ["/ide", ide],
  ["/tokens", tokens],
];

const main = document.getElementById("main");
const nav = document.getElementById("nav");
// The page on screen stops its requests and subscriptions when another replaces it.
let pageControl = new AbortController();
// Why the last sign-out happened (a refused token), shown on the sign-in page.
let signedOutBecause = null;

document.getElementById("skip").addEventListener("click", () => main.focus());

/** `GET /graphql` serves this page too; there the console is the GraphQL IDE. */
const atIde = () => location.pathname === "/graphql";

function showNav() {
  const links = [
    ["Organizations", "/organizations"],
    ["Accounts", "/accounts"],
    ["Onboarding", "/onboarding"],
    isAdmin() && ["Add organization", "/organizations/new"],
    isAdmin() && ["Tokens", "/tokens"],
  ].filter(Boolean);
  const here = current().path;
  replace(
    nav,
    h(
      "ul",
      {},
      links.map(([label, path]) =>
        h(
          "li",
          {},
          h(
            "a",
            {
              href: atIde() ? `/${href(path)}` : href(path),
              "aria-current": !atIde() && here === path ? "page" : null,
            },
            label,
          ),
        ),
      ),
      h("li", {}, h("a", { href: "/graphql", "aria-current": atIde() ? "page" : null }, "GraphQL IDE")),
    ),
    h("span", { class: "role" }, isAdmin() ? "admin" : "viewer"),
    h("button", { type: "button", onclick: () => signOut() }, "Sign out"),
  );
}

async function show() {
  pageControl.abort();
  pageControl = new AbortController();
  const { signal } = pageControl;
  if (!token()) {
    replace(nav);
    return signInPage(main, { signal, reason: signedOutBecause, done: show });
  }
  showNav();
  const { path, params } = current();
  const found = atIde() ? { page: ide, args: {} } : match(ROUTES, path);
  main.replaceChildren();
  if (!found) {
    replace(
      main,
      heading("Not found"),
      h("p", {}, "No page is at this address. ", h("a", { href: href("/") }, "Organizations")),
    );
    return focusHeading();
  }
  try {
    const rendering = found.page(main, { args: found.args, params, signal });
    focusHeading();
    await rendering;
  } catch (error) {
    if (signal.aborted) return;
    main.append(errorBox(error));
  }
}

function focusHeading() {
  main.querySelector("h1")?.focus();
}

window.addEventListener("hashchange", show);
session.addEventListener("signedout", (event) => {
  signedOutBecause = event.detail.reason;
  show();
});

// A token kept from before a reload is checked again: it may have been revoked since. A
// daemon that cannot be reached keeps the tab signed in, to try again.
async function boot() {
  if (token()) {
    try {
      await verify(token());
    } catch (error) {
      // A refused token has signed the tab out already (request does that).
      if (error.code === "unauthorized") return;
      replace(
        main,
        heading("orgsync"),
        errorBox(error, "Could not check the token"),
        h("button", { type: "button", onclick: boot }, "Try again"),
      );
      return focusHeading();
    }
  }
  show();
}
boot();
