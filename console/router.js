// Hash routing: every page is `#/path?query`, so each has a URL of its own, reloads keep it,
// and the browser's back and forward buttons move between pages without a server round trip.

/** The href of `path` with the query `params` (an object; empty values left out). */
export function href(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const v of [value].flat()) if (v !== undefined && v !== null && v !== "") query.append(key, v);
  }
  const search = query.toString();
  return `#${path}${search ? `?${search}` : ""}`;
}

/** Goes to `path` with `params`, as a new entry of the browser's history. */
export function navigate(path, params = {}) {
  location.hash = href(path, params);
}

/** The current route: its path and its query. */
export function current() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?", 2);
  return { path: path || "/", params: new URLSearchParams(search) };
}

/**
 * Matches `path` against `routes` (patterns such as `/accounts/:id`) and gives the page with
 * its decoded path arguments, or null.
 */
export function match(routes, path) {
  for (const [pattern, page] of routes) {
    const names = [];
    const source = pattern.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    });
    const found = new RegExp(`^${source}$`).exec(path);
    if (found) {
      try {
        const args = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
        return { page, args };
      } catch {
        return null; // a malformed %-escape names no page
      }
    }
  }
  return null;
}
