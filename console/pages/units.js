// The OU tree of an organization: each OU that holds accounts, with how many are nested below
// it and their states at a glance; each opens the listing of that OU. It follows the
// organization's account events, so a move shows after the harvest that saw it.

import { request } from "../graphql.js";
import { errorBox, h, heading, loading, replace, rereads, rerender } from "../dom.js";
import { harvestControl } from "../harvest.js";
import { followAccounts } from "../live.js";
import { href } from "../router.js";
import { stateLabel } from "../labels.js";

const UNITS = `query Units($id: ID!) {
  organization(id: $id) {
    id nickname
    units { id name parentId accountCount states { state count } }
  }
}`;

export default async function units(view, { args, signal }) {
  const title = heading("OU tree");
  const tree = h("div", {}, loading("the OU tree"));
  replace(
    view,
    h("p", { class: "crumbs" }, h("a", { href: href("/organizations") }, "Organizations")),
    title,
    tree,
  );

  let ready = false;
  const reread = rereads();
  async function refresh() {
    const latest = reread();
    let org;
    try {
      ({ organization: org } = await request(UNITS, { id: args.id }, { signal }));
    } catch (error) {
      if (!signal.aborted && latest()) replace(tree, errorBox(error, "Could not load the OU tree"));
      return;
    }
    if (!latest()) return;
    if (!org) {
      replace(tree, h("p", { class: "empty" }, `No organization ${args.id} is registered.`));
      return;
    }
    if (!ready) {
      ready = true;
      replace(title, `OU tree of ${org.nickname}`);
      tree.before(harvestControl(org, { signal }));
      const onStopped = (error) => tree.before(errorBox(error, "Live updates stopped"));
      followAccounts([org.id], { signal, onChange: refresh, onStopped });
    }
    rerender(
      tree,
      org.units.length ? nest(org.id, org.units) : h("p", { class: "empty" }, "No account is listed yet."),
    );
  }
  await refresh();
}

/** Nests the units (parents come before their children) into lists below their parents. */
function nest(orgId, units) {
  const children = new Map();
  for (const unit of units) {
    const siblings = children.get(unit.parentId ?? null) ?? [];
    siblings.push(unit);
    children.set(unit.parentId ?? null, siblings);
  }
  const known = new Set(units.map((u) => u.id));
  // A parent holds its children's accounts too, so only the root should lack a parent here;
  // a unit whose parent is missing all the same is shown at the top rather than lost.
  const tops = units.filter((u) => !u.parentId || !known.has(u.parentId));
  const list = (level) =>
    h(
      "ul",
      { class: "tree" },
      level.map((unit) =>
        h(
          "li",
          { "data-unit": unit.id },
          h(
            "a",
            { href: href("/accounts", { organization: orgId, ou: unit.id }) },
            h("strong", {}, unit.name),
            " ",
            h("code", {}, unit.id),
          ),
          " ",
          h(
            "span",
            { class: "count", "data-count": unit.accountCount },
            `${unit.accountCount} ${unit.accountCount === 1 ? "account" : "accounts"}`,
          ),
          h(
            "span",
            { class: "states" },
            unit.states.map((s) =>
              h(
                "span",
                { class: `state-count ${s.state.toLowerCase()}` },
                `${s.count} ${stateLabel(s.state)}`,
              ),
            ),
          ),
          children.has(unit.id) ? list(children.get(unit.id)) : null,
        ),
      ),
    );
  return list(tops);
}
