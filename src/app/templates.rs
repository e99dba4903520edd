//! CloudFormation templates for the two roles, with the installation's external ID and, when
//! configured, the trusted principal filled in. The org policy grants exactly the harvest
//! actions of [`actions::ORGANIZATION_HARVEST`], plus the policy simulation R3 runs on the
//! role itself.

use std::fmt::Write;

use crate::aws::actions;

/// Which template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The role in the management account that reads the organization.
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

/// The template as CloudFormation YAML.
pub fn render(template: Template, external_id: &str, principal: Option<&str>) -> String {
    let mut out = String::from("AWSTemplateFormatVersion: \"2010-09-09\"\n");
    match template {
        Template::OrgRole => {
            out.push_str(
                "Description: Role orgsync assumes in the management account to read the \
                 organization's accounts, OUs and tags.\n",
            );
            parameters(
                &mut out,
                "OrgSync-Org-Role",
                "OrgSync-Org-Policy",
                external_id,
                principal,
            );
            out.push_str("Resources:\n  OrgRole:\n    Type: AWS::IAM::Role\n    Properties:\n      RoleName: !Ref RoleName\n");
            trust_policy(&mut out);
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
            for action in actions::ORGANIZATION_HARVEST {
                writeln!(out, "                  - {action}").expect("writing to a String");
            }
            out.push_str("                Resource: \"*\"\n");
            out.push_str(SIMULATE_SELF);
            out.push_str("Outputs:\n  RoleArn:\n    Value: !GetAtt OrgRole.Arn\n");
        }
        Template::MemberRole => {
            out.push_str(
                "Description: Role orgsync assumes in each member account to check access and \
                 harvest with AWS's read-only managed policies.\n",
            );
            parameters(
                &mut out,
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
            trust_policy(&mut out);
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
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_template_grants_exactly_the_harvest_actions_and_fills_in_the_external_id() {
        let yaml = render(
            Template::OrgRole,
            "abc\"def",
            Some("arn:aws:iam::111122223333:role/orgsync"),
        );
        for action in actions::ORGANIZATION_HARVEST {
            assert_eq!(
                yaml.matches(&format!("- {action}\n")).count(),
                1,
                "{action}"
            );
        }
        let granted = yaml
            .lines()
            .filter(|l| l.trim_start().starts_with("- organizations:"))
            .count();
        assert_eq!(granted, actions::ORGANIZATION_HARVEST.len());
        assert!(
            yaml.contains(r#"Default: "abc\"def""#),
            "quoted external ID"
        );
        assert!(yaml.contains(r#"Default: "arn:aws:iam::111122223333:role/orgsync""#));
        assert!(yaml.contains("sts:ExternalId: !Ref ExternalId"));
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
