//! The IAM actions orgsync needs, in one place: registration simulates them (R3), the harvest
//! simulates the member ones (R15), and the role templates grant them.

/// What the org role must allow to harvest the organization (R3) and refresh what its events
/// name (R16): exactly the Organizations calls src/aws/sdk.rs makes. The org-role template
/// grants them to the role and, in the delegated set-up (R17), to the delegated administrator
/// account through the organization's delegation policy.
pub const ORGANIZATION_HARVEST: &[&str] = &[
    "organizations:DescribeOrganization",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListAccountsForParent",
    "organizations:ListAccounts",
    "organizations:ListParents",
    "organizations:DescribeAccount",
    "organizations:DescribeOrganizationalUnit",
    "organizations:ListTagsForResource",
];

/// What the org role must allow on its organization's events queue, and only there (R16):
/// the check before the queue is stored, the long poll and the delete after a refresh.
pub const EVENTS_QUEUE: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
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
