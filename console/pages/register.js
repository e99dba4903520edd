// Add an organization: the seed's form. The daemon checks the org role before it stores
// anything; a refusal shows at the step that failed, with every denied action.

import { request } from "../graphql.js";
import { field, h, heading, replace } from "../dom.js";
import { filterFields, markInvalidFields, queueField, roleFields, validationSteps } from "../orgform.js";
import { href, navigate } from "../router.js";
import { isAdmin } from "../session.js";

const REGISTER = `mutation Register($input: RegisterOrganizationInput!) {
  registerOrganization(input: $input) { id nickname }
}`;

export default function register(view, { params }) {
  if (!isAdmin()) {
    replace(
      view,
      heading("Add an organization"),
      h("p", { class: "notice" }, "Registering an organization needs an admin token."),
    );
    return;
  }
  const nickname = h("input", { name: "nickname", required: true, maxlength: 64 });
  const roles = roleFields({
    required: true,
    memberRoleName: params.get("memberRole") ?? "OrgSync-Member-Role",
  });
  const filters = filterFields();
  const queue = queueField();
  const steps = validationSteps(() => queue.read() !== null);
  const button = h("button", { type: "submit" }, "Add");
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        button.disabled = true;
        steps.checking();
        const { orgRole, memberRole } = roles.read();
        const input = {
          nickname: nickname.value.trim(),
          orgRole,
          memberRole,
          filters: filters.read(),
          eventsQueueUrl: queue.read(),
        };
        try {
          const { registerOrganization: org } = await request(REGISTER, { input });
          steps.passed();
          navigate("/organizations", { registered: org.id });
        } catch (error) {
          if (steps.failed(error) === "fields") markInvalidFields(form, error);
          button.disabled = false;
        }
      },
    },
    field("Nickname", nickname, "Becomes the system.cloud_organization_name badge of every account."),
    roles.element,
    filters.element,
    queue.element,
    h(
      "p",
      { class: "notice" },
      "Registering replaces the credentials of standalone accounts that belong to the organization: they are then managed by it. ",
      "Member roles are not checked now; each harvest tries them and shows failures as the account's access status.",
    ),
    h(
      "div",
      { class: "actions" },
      button,
      h("a", { href: href("/onboarding") }, "Back to the onboarding steps"),
    ),
  );
  replace(view, heading("Add an organization"), form, h("h2", {}, "Role check"), steps.element);
}
