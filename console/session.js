// The signed-in token and its role. The token lives in sessionStorage: it stays with this
// tab (and survives its reloads) but no other tab or later visit sees it.

const TOKEN_KEY = "orgsync.token";

/** Fires `signedout` (with `detail.reason`) when the token is dropped or refused. */
export const session = new EventTarget();

/** The role of the signed-in token, set at sign-in: "ADMIN" or "VIEWER". */
let role = null;

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function isAdmin() {
  return role === "ADMIN";
}

export function signIn(newToken, newRole) {
  sessionStorage.setItem(TOKEN_KEY, newToken);
  role = newRole;
}

export function signOut(reason = null) {
  sessionStorage.removeItem(TOKEN_KEY);
  role = null;
  session.dispatchEvent(new CustomEvent("signedout", { detail: { reason } }));
}
