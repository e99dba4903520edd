//! The IAM actions orgsync needs, in one place: registration simulates them (R3), the harvest
//! simulates the member ones (R15), and the role templates grant them.

/// What the org role must allow to harvest the organization (R3).
pub const ORGANIZATION_HARVEST: &[&str] = &[
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    "organizations:ListAccounts",
    "organizations:ListChildren",
    "organizations:ListParents",
    "organizations:DescribeAccount",
    "organizations:DescribeOrganizationalUnit",
    "organizations:ListTagsForResource",
];

/// Read actions a security inventory harvests from each member account (R15): a sample of
/// what AWS's SecurityAudit and ReadOnlyAccess policies grant, one or two per service.
pub const MEMBER_HARVEST: &[&str] = &[
    "cloudtrail:DescribeTrails",
    "config:DescribeConfigurationRecorders",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeSecurityGroups",
    "iam:GetAccountAuthorizationDetails",
    "iam:ListRoles",
    "kms:ListKeys",
    "lambda:ListFunctions",
    "rds:DescribeDBInstances",
    "s3:GetBucketPolicy",
    "s3:ListAllMyBuckets",
];
