// A GraphQL IDE that needs nothing outside the daemon: a query, its variables, the result,
// and the schema's types from an introspection query. Subscriptions run over the console's
// socket until stopped.

import { request, subscribe } from "../graphql.js";
import { errorBox, field, h, heading, loading, replace } from "../dom.js";

const EXAMPLE = `query Organizations {
  organizations {
    id
    nickname
    accountCount
    lastHarvest { outcome finishedAt accountsSeen }
  }
}`;
const TYPES = `query Types {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types {
      name kind description
      fields { name description args { name type { ...Ref } } type { ...Ref } }
      inputFields { name description type { ...Ref } }
      enumValues { name description }
    }
  }
}
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

export default async function ide(view, { signal }) {
  const query = h("textarea", { name: "query", rows: 16, spellcheck: "false", class: "code" }, EXAMPLE);
  const variables = h("textarea", { name: "variables", rows: 4, spellcheck: "false", class: "code" }, "{}");
  const result = h("pre", { class: "result", "aria-live": "polite", tabindex: "0" });
  const resultBox = h("section", { "aria-label": "Result" }, h("h2", {}, "Result"), result);
  const run = h("button", { type: "submit" }, "Run");
  const stop = h("button", { type: "button", hidden: true }, "Stop subscription");
  let subscription = null;

  const endSubscription = () => {
    subscription?.abort();
    subscription = null;
    stop.hidden = true;
  };
  stop.addEventListener("click", endSubscription);
  signal.addEventListener("abort", endSubscription);

  const form = h(
    "form",
    {
      class: "ide",
      onsubmit: async (event) => {
        event.preventDefault();
        endSubscription();
        let vars;
        try {
          vars = JSON.parse(variables.value || "{}");
        } catch (error) {
          replace(result, `Variables are not JSON: ${error.message}`);
          return;
        }
        // A subscription goes over the socket; comments may come before its keyword.
        if (/^\s*subscription\b/.test(query.value.replace(/#.*$/gm, ""))) {
          subscription = new AbortController();
          stop.hidden = false;
          replace(result, "Subscribing…\n");
          const show = (value) => result.append(`${JSON.stringify(value, null, 2)}\n`);
          const sink = {
            subscribed: () => result.append("Subscribed; results appear as they come.\n"),
            next: (data) => show({ data }),
            error: (e) => show({ errors: e.errors }),
          };
          subscribe(query.value, vars, sink, subscription.signal);
          return;
        }
        run.disabled = true;
        replace(result, "Running…");
        try {
          replace(result, JSON.stringify({ data: await request(query.value, vars, { signal }) }, null, 2));
        } catch (error) {
          if (!signal.aborted)
            replace(result, JSON.stringify({ data: error.data, errors: error.errors }, null, 2));
        } finally {
          run.disabled = false;
        }
      },
    },
    field("Query", query, "Ctrl+Enter runs it."),
    field("Variables (JSON)", variables),
    h("div", { class: "actions" }, run, stop),
  );
  query.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  const types = h(
    "section",
    { class: "types", "aria-label": "Schema" },
    h("h2", {}, "Schema"),
    loading("the schema"),
  );
  replace(
    view,
    heading("GraphQL IDE"),
    h("div", { class: "ide-layout" }, h("div", {}, form, resultBox), types),
  );

  try {
    const { __schema: schema } = await request(TYPES, {}, { signal });
    types.lastChild.replaceWith(schemaView(schema));
  } catch (error) {
    if (!signal.aborted) types.lastChild.replaceWith(errorBox(error, "Could not read the schema"));
  }
}

/** `[Account!]!` from an introspected type reference. */
function typeName(ref) {
  if (ref.kind === "NON_NULL") return `${typeName(ref.ofType)}!`;
  if (ref.kind === "LIST") return `[${typeName(ref.ofType)}]`;
  return ref.name;
}

function schemaView(schema) {
  const roots = [schema.queryType, schema.mutationType, schema.subscriptionType]
    .filter(Boolean)
    .map((t) => t.name);
  const own = schema.types.filter((t) => !t.name.startsWith("__"));
  // The roots first, query before mutation before subscription; then every type by name.
  const rank = (type) => (roots.includes(type.name) ? roots.indexOf(type.name) : roots.length);
  own.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  return h(
    "div",
    {},
    own.map((type) =>
      h(
        "details",
        { open: roots.includes(type.name) },
        h("summary", {}, h("code", {}, type.name), " ", h("small", {}, type.kind.toLowerCase())),
        type.description ? h("p", { class: "hint" }, type.description) : null,
        members(type),
      ),
    ),
  );
}

function members(type) {
  const rows = type.fields ?? type.inputFields ?? [];
  if (type.enumValues)
    return h(
      "ul",
      {},
      type.enumValues.map((v) =>
        h("li", {}, h("code", {}, v.name), v.description ? ` — ${v.description}` : ""),
      ),
    );
  return h(
    "ul",
    {},
    rows.map((f) =>
      h(
        "li",
        {},
        h(
          "code",
          {},
          f.name,
          f.args?.length ? `(${f.args.map((a) => `${a.name}: ${typeName(a.type)}`).join(", ")})` : "",
          `: ${typeName(f.type)}`,
        ),
        f.description ? h("div", { class: "hint" }, f.description) : null,
      ),
    ),
  );
}
