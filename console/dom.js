// Small DOM helpers shared by every page: element building, and the loading and error states.

/**
 * Makes an element. `props` are attributes, except `on<event>` (listeners), `class` and
 * boolean values (present when true). Children may be strings, nodes, arrays, or null.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "value" && "value" in el) {
      el.value = value;
    } else if (name === "checked") {
      el.checked = true;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces everything in `el` with `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Replaces what `el` holds as `replace` does, keeping the keyboard's place when a live update
 * re-renders it: the focused element, if it is part of the new content, or else the link
 * with the same address or the control with the same label or text, is focused again.
 */
export function rerender(el, ...children) {
  const focused = el.contains(document.activeElement) ? document.activeElement : null;
  replace(el, ...children);
  if (!focused) return;
  if (focused.isConnected) return focused.focus();
  const key = (node) =>
    node.getAttribute("href") ?? node.getAttribute("aria-label") ?? node.textContent.trim();
  const same =
    key(focused) && [...el.querySelectorAll("a, button")].find((node) => key(node) === key(focused));
  same?.focus();
}

/** A "loading" line that screen readers announce. */
export function loading(what) {
  return h("p", { class: "loading", role: "status" }, `Loading ${what}…`);
}

/** An error as a page shows it: its message and, when the API gave one, its code. */
export function errorBox(error, title = "Something went wrong") {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, title),
    h("p", {}, error.message),
    error.code ? h("p", { class: "code" }, "Code: ", h("code", {}, error.code)) : null,
  );
}

/** A labelled form field: the label names the control, the hint is read after it. */
export function field(label, control, hint) {
  const id = control.id || `f-${++uniqueIds}`;
  control.id = id;
  const hintEl = hint ? h("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  // A checkbox reads best before its label; every other control after it.
  return control.type === "checkbox"
    ? h("div", { class: "check" }, control, h("label", { for: id }, label), hintEl)
    : h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}
let uniqueIds = 0;

/** A date as the console shows it: local time to the second, with the full ISO in a tooltip. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return h("time", { datetime: iso, title: iso }, timeFormat.format(date));
}
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A page heading, focused after navigation so that keyboard and screen reader users land on it. */
export function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

/** Strings from a textarea or input: one per line or comma, blanks dropped. */
export function listOf(text) {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Saves `text` as a file named `name` in the browser's downloads. */
export function download(name, text, type = "text/yaml") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // The click has started the download; the URL is not needed after this turn.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

/**
 * Orders a page's re-reads: each call starts one and gives a function that says whether it
 * is still the latest, so that an answer overtaken by a later re-read is dropped rather than
 * shown over the newer one.
 */
export function rereads() {
  let latest = 0;
  return () => {
    const mine = ++latest;
    return () => mine === latest;
  };
}

/**
 * A button that asks first: it opens a modal dialog (Escape or Cancel closes it) whose
 * confirming button runs `action`; an error it throws shows in `outcome`.
 */
export function confirmButton({ label, title, text, confirm, action, outcome }) {
  const yes = h("button", { type: "button", class: "danger" }, confirm);
  // Focus starts on Cancel, so that Enter on a dialog opened by mistake destroys nothing.
  const no = h("button", { type: "button", autofocus: true }, "Cancel");
  const titleId = `dialog-${++uniqueIds}`;
  const dialog = h(
    "dialog",
    { "aria-labelledby": titleId },
    h("h2", { id: titleId }, title),
    h("p", {}, text),
    h("div", { class: "actions" }, yes, no),
  );
  no.addEventListener("click", () => dialog.close());
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    replace(outcome);
    try {
      await action();
      dialog.close();
    } catch (error) {
      dialog.close();
      replace(outcome, errorBox(error, `${confirm} failed`));
    } finally {
      yes.disabled = false;
    }
  });
  return [h("button", { type: "button", class: "danger", onclick: () => dialog.showModal() }, label), dialog];
}
