//! CloudFormation templates for the two roles, with the installation's external ID and, when
//! configured, the trusted principal filled in. The org policy grants exactly the harvest
//! actions of [`actions::ORGANIZATION_HARVEST`], plus the policy simulation R3 runs on the
//! role itself.
//!
//! The org-role template covers both set-ups of R17 through its `Deployment` parameter: the
//! role in the management account, or the role in a delegated administrator account and, in
//! the management account, the organization's delegation policy allowing that account the
//! same actions. Its optional events part (`EventsQueue`, R16) makes the queue EventBridge
//! fills with Organizations' events and lets the org role, and it alone, read it.

use std::fmt::Write;

use crate::aws::actions;

/// Which template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The role that reads the organization, in its management account or a delegated
    /// administrator account, or the management account's delegation policy for the latter.
    OrgRole,
    /// The role in every member account.
    MemberRole,
}

impl Template {
    /// The template named in a URL (`org-role`, `member-role`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "org-role" => Some(Self::OrgRole),
            "member-role" => Some(Self::MemberRole),
            _ => None,
        }
    }
}

/// YAML's double-quoted scalar: JSON's string syntax is a subset of it.
fn quoted(value: &str) -> String {
    serde_json::to_string(value).expect("strings serialize")
}

/// One YAML sequence item per action, each line indented by `indent` spaces.
fn action_items(out: &mut String, indent: usize, list: &[&str]) {
    for action in list {
        writeln!(out, "{:indent$}- {action}", "").expect("writing to a String");
    }
}

fn parameters(
    out: &mut String,
    role: &str,
    policy: &str,
    external_id: &str,
    principal: Option<&str>,
) {
    let principal_default = principal
        .map(|p| format!("\n    Default: {}", quoted(p)))
        .unwrap_or_default();
    write!(
        out,
        r#"Parameters:
  RoleName:
    Type: String
    Default: {role}
    Description: Name of the role orgsync assumes.
  PolicyName:
    Type: String
    Default: {policy}
    Description: Name of the role's inline policy.
  TrustedPrincipalArn:
    Type: String{principal_default}
    Description: ARN of the IAM role or user orgsync runs as (its own credentials).
  ExternalId:
    Type: String
    NoEcho: true
    Default: {external_id}
    Description: The external ID of this orgsync installation (confused-deputy protection).
"#,
        external_id = quoted(external_id),
    )
    .expect("writing to a String");
}

fn trust_policy(out: &mut String) {
    out.push_str(
        r#"      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              AWS: !Ref TrustedPrincipalArn
            Action: sts:AssumeRole
            Condition:
              StringEquals:
                sts:ExternalId: !Ref ExternalId
"#,
    );
}

const SIMULATE_SELF: &str = r#"              - Sid: SimulateOwnPolicies
                Effect: Allow
                Action: iam:SimulatePrincipalPolicy
                Resource: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"
"#;

/// The org template's own parameters: where it is deployed (R17) and the events part (R16).
/// Account ids may be empty because only some deployments need them; `ORG_RULES` says which.
const ORG_PARAMETERS: &str = r#"  Deployment:
    Type: String
    Default: ManagementAccount
    AllowedValues:
      - ManagementAccount
      - DelegatedAdministratorAccount
      - DelegationPolicyOnly
    Description: >-
      ManagementAccount: the org role, in the organization's management account.
      DelegatedAdministratorAccount: the org role, in a delegated administrator account; the
      management account then needs this template deployed as DelegationPolicyOnly.
      DelegationPolicyOnly: in the management account, no role, only the organization's
      delegation policy letting DelegatedAdministratorAccountId read the organization (and,
      with EventsQueue Enabled, the events queue, read by RoleName in that account).
  DelegatedAdministratorAccountId:
    Type: String
    Default: ""
    AllowedPattern: "^([0-9]{12})?$"
    ConstraintDescription: a 12-digit AWS account id
    Description: With DelegationPolicyOnly, the account the org role is in.
  ManagementAccountId:
    Type: String
    Default: ""
    AllowedPattern: "^([0-9]{12})?$"
    ConstraintDescription: a 12-digit AWS account id
    Description: >-
      With DelegatedAdministratorAccount and EventsQueue Enabled, the management account,
      whose stack holds the events queue the role reads.
  EventsQueue:
    Type: String
    Default: Disabled
    AllowedValues:
      - Disabled
      - Enabled
    Description: >-
      Enabled: an SQS queue that EventBridge fills with the organization's events, read by
      the org role, so that orgsync follows changes within seconds. The queue lives in the
      management account and, there, needs the stack in us-east-1.
  EventsQueueName:
    Type: String
    Default: OrgSync-Organizations-Events
    AllowedPattern: "^[A-Za-z0-9_-]{1,80}$"
    ConstraintDescription: 1 to 80 letters, digits, hyphens or underscores
    Description: >-
      Name of the events queue; the same in the management account's stack and the delegated
      administrator account's.
"#;

/// Refuses, before anything is created, the parameter sets that would deploy something that
/// cannot work.
const ORG_RULES: &str = r#"Rules:
  EventsQueueInUsEast1:
    RuleCondition: !And
      - !Equals [!Ref EventsQueue, Enabled]
      - !Not [!Equals [!Ref Deployment, DelegatedAdministratorAccount]]
    Assertions:
      - Assert: !Equals [!Ref "AWS::Region", us-east-1]
        AssertDescription: >-
          AWS Organizations sends its events to EventBridge in us-east-1 only: deploy this
          stack in us-east-1 to create the events queue (the role itself is global).
  DelegationPolicyNamesItsAccount:
    RuleCondition: !Equals [!Ref Deployment, DelegationPolicyOnly]
    Assertions:
      - Assert: !Not [!Equals [!Ref DelegatedAdministratorAccountId, ""]]
        AssertDescription: >-
          DelegationPolicyOnly needs DelegatedAdministratorAccountId, the account the org role
          is in.
  DelegatedRoleNamesTheQueueAccount:
    RuleCondition: !And
      - !Equals [!Ref EventsQueue, Enabled]
      - !Equals [!Ref Deployment, DelegatedAdministratorAccount]
    Assertions:
      - Assert: !Not [!Equals [!Ref ManagementAccountId, ""]]
        AssertDescription: >-
          With a delegated administrator, the events queue is in the management account (where
          Organizations' events are): give its id as ManagementAccountId.
"#;

/// Each condition spelled out from the parameters, none naming another: moto, which the test
/// suite deploys these templates on, takes a `Condition` inside a condition for false.
const ORG_CONDITIONS: &str = r#"Conditions:
  HasRole: !Not [!Equals [!Ref Deployment, DelegationPolicyOnly]]
  HasDelegationPolicy: !Equals [!Ref Deployment, DelegationPolicyOnly]
  InDelegatedAccount: !Equals [!Ref Deployment, DelegatedAdministratorAccount]
  # Organizations' events reach EventBridge in the management account only.
  HasQueue: !And
    - !Equals [!Ref EventsQueue, Enabled]
    - !Not [!Equals [!Ref Deployment, DelegatedAdministratorAccount]]
  RoleReadsQueue: !And
    - !Equals [!Ref EventsQueue, Enabled]
    - !Not [!Equals [!Ref Deployment, DelegationPolicyOnly]]
  DelegatedRoleReadsQueue: !And
    - !Equals [!Ref EventsQueue, Enabled]
    - !Equals [!Ref Deployment, DelegationPolicyOnly]
"#;

/// The org role's access to the events queue, gone when the part is disabled. A role in the
/// delegated administrator account names the management account's queue by its ARN, which
/// its name and `ORG_RULES`' region make known before that queue exists.
const READ_EVENTS_QUEUE: &str = r#"              - !If
                - RoleReadsQueue
                - Sid: ReadEventsQueue
                  Effect: Allow
                  Action:
{actions}                  Resource: !If
                    - InDelegatedAccount
                    - !Sub "arn:${AWS::Partition}:sqs:us-east-1:${ManagementAccountId}:${EventsQueueName}"
                    - !GetAtt OrgEventsQueue.Arn
                - !Ref AWS::NoValue
"#;

/// The queue, the rule filling it and the queue policy, in the management account.
const EVENTS_RESOURCES: &str = r#"  OrgEventsQueue:
    Type: AWS::SQS::Queue
    Condition: HasQueue
    Properties:
      QueueName: !Ref EventsQueueName
      SqsManagedSseEnabled: true
      # Four days: a daemon stopped over a weekend still finds what changed. Older events
      # add nothing, since the periodic harvest has read the whole organization since.
      MessageRetentionPeriod: 345600
      # orgsync deletes a message once its refresh committed, a few AWS calls per message
      # for batches of ten; one that takes longer (waiting for a running harvest) comes back,
      # which R16 makes harmless.
      VisibilityTimeout: 300
  OrgEventsRule:
    Type: AWS::Events::Rule
    Condition: HasQueue
    Properties:
      Description: AWS Organizations' CloudTrail events, for orgsync.
      EventBusName: default
      EventPattern:
        source:
          - aws.organizations
        detail-type:
          - AWS API Call via CloudTrail
          - AWS Service Event via CloudTrail
      State: ENABLED
      Targets:
        - Id: OrgSyncEventsQueue
          Arn: !GetAtt OrgEventsQueue.Arn
  OrgEventsQueuePolicy:
    Type: AWS::SQS::QueuePolicy
    Condition: HasQueue
    Properties:
      Queues:
        - !Ref OrgEventsQueue
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Sid: EventsFromTheRuleOnly
            Effect: Allow
            Principal:
              Service: events.amazonaws.com
            Action: sqs:SendMessage
            Resource: !GetAtt OrgEventsQueue.Arn
            Condition:
              ArnEquals:
                aws:SourceArn: !GetAtt OrgEventsRule.Arn
          # The account as principal (its id stands for its root, whatever the partition),
          # narrowed to the role by aws:PrincipalArn, so that the policy is valid before the
          # role exists in the other account's stack.
          - !If
            - DelegatedRoleReadsQueue
            - Sid: DelegatedAdministratorRoleReads
              Effect: Allow
              Principal:
                AWS: !Ref DelegatedAdministratorAccountId
              Action:
{actions}              Resource: !GetAtt OrgEventsQueue.Arn
              Condition:
                ArnEquals:
                  aws:PrincipalArn: !Sub "arn:${AWS::Partition}:iam::${DelegatedAdministratorAccountId}:role/${RoleName}"
            - !Ref AWS::NoValue
"#;

const ORG_OUTPUTS: &str = r#"Outputs:
  RoleArn:
    Condition: HasRole
    Description: The org role to register in orgsync.
    Value: !GetAtt OrgRole.Arn
  EventsQueueUrl:
    Condition: HasQueue
    Description: The events_queue_url to give orgsync.
    Value: !Ref OrgEventsQueue
"#;

/// Fills `{actions}` in `block` with `list`, one item per line at `indent` spaces.
fn with_actions(out: &mut String, block: &str, indent: usize, list: &[&str]) {
    let mut items = String::new();
    action_items(&mut items, indent, list);
    out.push_str(&block.replace("{actions}", &items));
}

fn org_role(out: &mut String, external_id: &str, principal: Option<&str>) {
    out.push_str(
        "Description: orgsync's org role, which reads the organization's accounts, OUs and \
         tags, in the management account or a delegated administrator account (Deployment); \
         or the management account's delegation policy for the latter; optionally the queue \
         of the organization's events (EventsQueue).\n",
    );
    parameters(
        out,
        "OrgSync-Org-Role",
        "OrgSync-Org-Policy",
        external_id,
        principal,
    );
    out.push_str(ORG_PARAMETERS);
    out.push_str(ORG_RULES);
    out.push_str(ORG_CONDITIONS);
    out.push_str(
        "Resources:\n  OrgRole:\n    Type: AWS::IAM::Role\n    Condition: HasRole\n    \
         Properties:\n      RoleName: !Ref RoleName\n",
    );
    trust_policy(out);
    out.push_str(
        r#"      Policies:
        - PolicyName: !Ref PolicyName
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Sid: HarvestOrganization
                Effect: Allow
                Action:
"#,
    );
    action_items(out, 18, actions::ORGANIZATION_HARVEST);
    out.push_str("                Resource: \"*\"\n");
    out.push_str(SIMULATE_SELF);
    with_actions(out, READ_EVENTS_QUEUE, 20, actions::EVENTS_QUEUE);
    // An organization has one delegation policy; its statement grants the delegated account
    // what the role's own policy grants the role, so neither side allows more than the other.
    out.push_str(
        r#"  DelegationPolicy:
    Type: AWS::Organizations::ResourcePolicy
    Condition: HasDelegationPolicy
    Properties:
      Content:
        Version: "2012-10-17"
        Statement:
          - Sid: OrgSyncReadsTheOrganization
            Effect: Allow
            Principal:
              AWS: !Sub "arn:${AWS::Partition}:iam::${DelegatedAdministratorAccountId}:root"
            Action:
"#,
    );
    action_items(out, 14, actions::ORGANIZATION_HARVEST);
    out.push_str("            Resource: \"*\"\n");
    with_actions(out, EVENTS_RESOURCES, 16, actions::EVENTS_QUEUE);
    out.push_str(ORG_OUTPUTS);
}

fn member_role(out: &mut String, external_id: &str, principal: Option<&str>) {
    out.push_str(
        "Description: Role orgsync assumes in each member account to check access and \
         harvest with AWS's read-only managed policies.\n",
    );
    parameters(
        out,
        "OrgSync-Member-Role",
        "OrgSync-Member-Policy",
        external_id,
        principal,
    );
    out.push_str(
        r#"  HarvestPolicies:
    Type: String
    Default: ReadOnlyAccess and SecurityAudit
    AllowedValues:
      - ReadOnlyAccess and SecurityAudit
      - SecurityAudit only
    Description: AWS managed policies attached to the role.
Conditions:
  WithReadOnlyAccess: !Equals [!Ref HarvestPolicies, ReadOnlyAccess and SecurityAudit]
Resources:
  MemberRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Ref RoleName
"#,
    );
    trust_policy(out);
    out.push_str(
        r#"      ManagedPolicyArns: !If
        - WithReadOnlyAccess
        - - !Sub "arn:${AWS::Partition}:iam::aws:policy/SecurityAudit"
          - !Sub "arn:${AWS::Partition}:iam::aws:policy/ReadOnlyAccess"
        - - !Sub "arn:${AWS::Partition}:iam::aws:policy/SecurityAudit"
      Policies:
        - PolicyName: !Ref PolicyName
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
"#,
    );
    out.push_str(SIMULATE_SELF);
    out.push_str("Outputs:\n  RoleArn:\n    Value: !GetAtt MemberRole.Arn\n");
}

/// The template as CloudFormation YAML.
pub fn render(template: Template, external_id: &str, principal: Option<&str>) -> String {
    let mut out = String::from("AWSTemplateFormatVersion: \"2010-09-09\"\n");
    match template {
        Template::OrgRole => org_role(&mut out, external_id, principal),
        Template::MemberRole => member_role(&mut out, external_id, principal),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINCIPAL: &str = "arn:aws:iam::111122223333:role/orgsync";

    fn indent(line: &str) -> usize {
        line.len() - line.trim_start().len()
    }

    /// The lines nested below the line `header` (its exact text, indentation included).
    fn block<'a>(yaml: &'a str, header: &str) -> Vec<&'a str> {
        let mut lines = yaml.lines().skip_while(|l| *l != header);
        let start = lines
            .next()
            .unwrap_or_else(|| panic!("no {header:?} in\n{yaml}"));
        lines
            .take_while(|l| l.trim().is_empty() || indent(l) > indent(start))
            .collect()
    }

    /// The items of the YAML sequence at the top of `lines` (under the key before them).
    fn items<'a>(lines: &[&'a str], key: &str) -> Vec<&'a str> {
        let at = lines
            .iter()
            .position(|l| l.trim() == key)
            .unwrap_or_else(|| panic!("no {key} in {lines:#?}"));
        let depth = indent(lines[at]);
        lines[at + 1..]
            .iter()
            .take_while(|l| {
                indent(l) > depth || (indent(l) == depth && l.trim_start().starts_with("- "))
            })
            .filter_map(|l| l.trim().strip_prefix("- "))
            .collect()
    }

    fn org() -> String {
        render(Template::OrgRole, "abc\"def", Some(PRINCIPAL))
    }

    #[test]
    fn org_template_grants_exactly_the_harvest_actions_and_fills_in_the_external_id() {
        let yaml = org();
        let harvest = block(&yaml, "              - Sid: HarvestOrganization");
        assert_eq!(items(&harvest, "Action:"), actions::ORGANIZATION_HARVEST);
        assert!(harvest.contains(&"                Resource: \"*\""));
        let granted = yaml
            .lines()
            .filter(|l| l.trim_start().starts_with("- organizations:"))
            .count();
        assert_eq!(
            granted,
            2 * actions::ORGANIZATION_HARVEST.len(),
            "the role's policy and the delegation policy, nothing else"
        );
        assert!(
            yaml.contains(r#"Default: "abc\"def""#),
            "quoted external ID"
        );
        assert!(yaml.contains(&format!("Default: {}", quoted(PRINCIPAL))));
        assert!(yaml.contains("sts:ExternalId: !Ref ExternalId"));
    }

    #[test]
    fn events_part_is_off_by_default_and_all_of_it_hangs_on_its_condition() {
        let yaml = org();
        let parameter = block(&yaml, "  EventsQueue:");
        assert!(
            parameter.contains(&"    Default: Disabled"),
            "{parameter:#?}"
        );
        assert_eq!(items(&parameter, "AllowedValues:"), ["Disabled", "Enabled"]);
        for condition in ["HasQueue", "RoleReadsQueue", "DelegatedRoleReadsQueue"] {
            let terms = block(&yaml, &format!("  {condition}: !And"));
            assert_eq!(
                terms[0], "    - !Equals [!Ref EventsQueue, Enabled]",
                "{condition}"
            );
        }
        for resource in ["OrgEventsQueue", "OrgEventsRule", "OrgEventsQueuePolicy"] {
            let lines = block(&yaml, &format!("  {resource}:"));
            assert_eq!(lines[1], "    Condition: HasQueue", "{resource}");
        }
        let output = block(&yaml, "  EventsQueueUrl:");
        assert_eq!(output[0], "    Condition: HasQueue");
        assert!(output.contains(&"    Value: !Ref OrgEventsQueue"));
        // The role's statement on the queue is an Fn::If whose other branch removes it.
        let statement = block(&yaml, "              - !If");
        assert_eq!(statement[0].trim(), "- RoleReadsQueue");
        assert_eq!(statement.last().unwrap().trim(), "- !Ref AWS::NoValue");
        assert_eq!(
            yaml.matches("sqs:ReceiveMessage").count(),
            2,
            "role and queue policy"
        );
    }

    #[test]
    fn org_role_reads_its_events_queue_alone_with_three_actions() {
        let yaml = org();
        let statement = block(&yaml, "                - Sid: ReadEventsQueue");
        assert_eq!(items(&statement, "Action:"), actions::EVENTS_QUEUE);
        assert_eq!(
            actions::EVENTS_QUEUE,
            [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes"
            ]
        );
        let resource = block(&yaml, "                  Resource: !If");
        assert_eq!(
            resource.iter().map(|l| l.trim()).collect::<Vec<_>>(),
            [
                "- InDelegatedAccount",
                "- !Sub \"arn:${AWS::Partition}:sqs:us-east-1:${ManagementAccountId}:${EventsQueueName}\"",
                "- !GetAtt OrgEventsQueue.Arn",
            ]
        );
        assert_eq!(
            yaml.lines()
                .filter(|l| l.trim() == "Resource: \"*\"")
                .count(),
            2,
            "only the harvest's Organizations actions, in the role's and the delegation policy"
        );
    }

    #[test]
    fn events_queue_is_filled_by_its_rule_alone_with_organizations_events() {
        let yaml = org();
        let queue = block(&yaml, "  OrgEventsQueue:");
        assert!(queue.contains(&"      SqsManagedSseEnabled: true"));
        let seconds = |key: &str| -> u32 {
            let line = queue.iter().find(|l| l.trim().starts_with(key)).unwrap();
            line.trim()[key.len()..].trim().parse().unwrap()
        };
        assert!(seconds("VisibilityTimeout:") >= 60);
        assert!((60..=1_209_600).contains(&seconds("MessageRetentionPeriod:")));

        let rule = block(&yaml, "  OrgEventsRule:");
        assert!(rule.contains(&"      EventBusName: default"));
        assert_eq!(items(&rule, "source:"), ["aws.organizations"]);
        assert_eq!(
            items(&rule, "detail-type:"),
            [
                "AWS API Call via CloudTrail",
                "AWS Service Event via CloudTrail"
            ]
        );
        assert!(rule.contains(&"          Arn: !GetAtt OrgEventsQueue.Arn"));

        let send = block(&yaml, "          - Sid: EventsFromTheRuleOnly");
        assert!(send.contains(&"              Service: events.amazonaws.com"));
        assert!(send.contains(&"            Action: sqs:SendMessage"));
        assert!(send.contains(&"                aws:SourceArn: !GetAtt OrgEventsRule.Arn"));
        // The delegated administrator's role reads a management account's queue only with the
        // delegation policy, narrowed to that role.
        let delegated = block(&yaml, "            - Sid: DelegatedAdministratorRoleReads");
        assert_eq!(items(&delegated, "Action:"), actions::EVENTS_QUEUE);
        assert!(delegated.contains(&"                AWS: !Ref DelegatedAdministratorAccountId"));
        assert!(delegated.iter().any(|l| l.contains(
            "aws:PrincipalArn: !Sub \"arn:${AWS::Partition}:iam::${DelegatedAdministratorAccountId}:role/${RoleName}\""
        )));
        assert_eq!(
            block(&yaml, "  DelegatedRoleReadsQueue: !And")[1],
            "    - !Equals [!Ref Deployment, DelegationPolicyOnly]"
        );
    }

    #[test]
    fn the_queue_needs_us_east_1_where_it_is_made() {
        let yaml = org();
        let rule = block(&yaml, "  EventsQueueInUsEast1:");
        assert_eq!(
            rule[..3].iter().map(|l| l.trim()).collect::<Vec<_>>(),
            [
                "RuleCondition: !And",
                "- !Equals [!Ref EventsQueue, Enabled]",
                "- !Not [!Equals [!Ref Deployment, DelegatedAdministratorAccount]]",
            ]
        );
        assert!(rule.contains(&"      - Assert: !Equals [!Ref \"AWS::Region\", us-east-1]"));
        assert!(rule.iter().any(|l| l.contains("AssertDescription:")));
        // The queue is made exactly where the rule above asks for us-east-1.
        let trimmed = |lines: &[&str]| {
            lines
                .iter()
                .map(|l| l.trim().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            trimmed(&block(&yaml, "  HasQueue: !And")),
            trimmed(&rule[1..3])
        );
    }

    #[test]
    fn delegation_policy_only_in_the_delegation_deployment_and_the_role_everywhere_else() {
        let yaml = org();
        let deployment = block(&yaml, "  Deployment:");
        assert!(deployment.contains(&"    Default: ManagementAccount"));
        assert_eq!(
            items(&deployment, "AllowedValues:"),
            [
                "ManagementAccount",
                "DelegatedAdministratorAccount",
                "DelegationPolicyOnly"
            ]
        );
        assert!(yaml
            .contains("  HasDelegationPolicy: !Equals [!Ref Deployment, DelegationPolicyOnly]\n"));
        assert!(
            yaml.contains("  HasRole: !Not [!Equals [!Ref Deployment, DelegationPolicyOnly]]\n")
        );
        assert_eq!(
            yaml.matches("AWS::Organizations::ResourcePolicy").count(),
            1
        );
        let policy = block(&yaml, "  DelegationPolicy:");
        assert_eq!(policy[0], "    Type: AWS::Organizations::ResourcePolicy");
        assert_eq!(policy[1], "    Condition: HasDelegationPolicy");
        assert_eq!(items(&policy, "Action:"), actions::ORGANIZATION_HARVEST);
        assert!(policy.contains(
            &"              AWS: !Sub \"arn:${AWS::Partition}:iam::${DelegatedAdministratorAccountId}:root\""
        ));
        assert_eq!(block(&yaml, "  OrgRole:")[1], "    Condition: HasRole");
        assert_eq!(block(&yaml, "  RoleArn:")[0], "    Condition: HasRole");
        // The account the policy names must be given, and be an account id.
        let rule = block(&yaml, "  DelegationPolicyNamesItsAccount:");
        assert_eq!(
            rule[0].trim(),
            "RuleCondition: !Equals [!Ref Deployment, DelegationPolicyOnly]"
        );
        assert!(rule.contains(
            &"      - Assert: !Not [!Equals [!Ref DelegatedAdministratorAccountId, \"\"]]"
        ));
        let id = block(&yaml, "  DelegatedAdministratorAccountId:");
        assert!(id.contains(&"    AllowedPattern: \"^([0-9]{12})?$\""));

        let member = render(Template::MemberRole, "x", Some(PRINCIPAL));
        assert!(!member.contains("ResourcePolicy") && !member.contains("sqs:"));
    }

    #[test]
    fn every_arn_follows_the_partition() {
        for template in [Template::OrgRole, Template::MemberRole] {
            let yaml = render(template, "x", None);
            assert!(!yaml.contains("arn:aws:"), "{template:?}");
            let arns = yaml.match_indices("arn:").count();
            assert!(arns >= 3, "{template:?}");
            assert_eq!(
                yaml.matches("arn:${AWS::Partition}:").count(),
                arns,
                "{template:?}: {yaml}"
            );
        }
    }

    #[test]
    fn principal_is_required_when_not_configured() {
        let yaml = render(Template::MemberRole, "x", None);
        let principal = yaml.split("TrustedPrincipalArn:\n").nth(1).unwrap();
        assert!(
            principal.starts_with("    Type: String\n    Description:"),
            "{principal}"
        );
        assert!(yaml.contains("SecurityAudit only"));
    }
}
