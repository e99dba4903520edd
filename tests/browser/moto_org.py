"""An AWS Organization in moto for the browser test, made as an operator would make it.

    moto_org.py URL org                      the organization, its OUs and accounts (JSON out)
    moto_org.py URL deploy MANAGEMENT ORG_TEMPLATE MEMBER_TEMPLATE SKIP...
                                             the console's templates as CloudFormation stacks:
                                             the org role and the member role in the
                                             management account, the member role in every
                                             member account but SKIP (as a StackSet that
                                             missed them); the roles made, read back from
                                             IAM (JSON out)
    moto_org.py URL move MANAGEMENT ACCOUNT PARENT
    moto_org.py URL standalone MEMBER_TEMPLATE
                                             an account outside any organization with the
                                             member role deployed in it (JSON out)

Each account is reached as its own admin (moto accepts any role name), as the fixture in
tests/api/moto.rs does.
"""

import json
import random
import sys

import boto3

# The shape: OUs as (name, parent), and accounts as (name, OU, tags).
OUS = [("Workloads", "Root"), ("Prod", "Workloads"), ("Dev", "Workloads"), ("Sandbox", "Root")]
ACCOUNTS = [
    ("payments-prod", "Prod", {"env": "prod", "team": "red"}),
    ("ledger-prod", "Prod", {"env": "prod", "team": "blue"}),
    ("web-dev", "Dev", {"env": "dev", "team": "red"}),
    ("data-dev", "Dev", {"env": "dev"}),
    ("sandbox-ann", "Sandbox", {}),
    ("sandbox-bob", "Sandbox", {"env": "test"}),
]


def client(url, service, account=None):
    """A client of `service`, as the admin of `account` (the default moto account if None)."""
    base = dict(endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")
    if account is None:
        return boto3.client(service, **base)
    creds = boto3.client("sts", **base).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/fixture-admin", RoleSessionName="fixture"
    )["Credentials"]
    return boto3.client(service, **{
        **base,
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    })


def make_org(url):
    management = random_account()
    org = client(url, "organizations", management)
    org_id = org.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    root = org.list_roots()["Roots"][0]["Id"]
    ous = {"Root": root}
    for name, parent in OUS:
        ous[name] = org.create_organizational_unit(ParentId=ous[parent], Name=name)[
            "OrganizationalUnit"]["Id"]
    accounts = []
    for name, ou, tags in ACCOUNTS:
        status = org.create_account(
            AccountName=name, Email=f"{name}@example.com",
            Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )["CreateAccountStatus"]
        org.move_account(AccountId=status["AccountId"], SourceParentId=root, DestinationParentId=ous[ou])
        accounts.append({"id": status["AccountId"], "name": name, "ou": ou, "tags": tags})
    return {"management": management, "id": org_id, "ous": ous, "accounts": accounts}


def deploy(url, management, org_template, member_template, skip):
    """Each stack as the operator creates it; the roles made."""
    members = [a["Id"] for a in client(url, "organizations", management).list_accounts()["Accounts"]]
    stacks = [(management, "orgsync-org-role", org_template)] + [
        (account, "orgsync-member-role", member_template) for account in members if account not in skip
    ]
    return [deploy_stack(url, *stack) for stack in stacks]


def deploy_stack(url, account, name, template):
    """Creates stack `name` from `template` in `account`; the role it made, with the external
    IDs its trust policy requires, read back from IAM."""
    cfn = client(url, "cloudformation", account)
    with open(template, encoding="utf-8") as f:
        cfn.create_stack(StackName=name, TemplateBody=f.read(), Capabilities=["CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise SystemExit(f"stack {name} in {account}: {stack['StackStatus']}")
    arn = next(o["OutputValue"] for o in stack["Outputs"] if o["OutputKey"] == "RoleArn")
    role = client(url, "iam", account).get_role(RoleName=arn.rsplit("/", 1)[1])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    return {
        "account": account,
        "arn": arn,
        "externalIds": [
            s["Condition"]["StringEquals"]["sts:ExternalId"]
            for s in trust["Statement"]
            if s.get("Action") == "sts:AssumeRole" and "sts:ExternalId" in s.get("Condition", {}).get("StringEquals", {})
        ],
    }


def random_account():
    return f"{random.randrange(100_000_000_000, 999_999_999_999):012d}"


def move(url, management, account, parent):
    org = client(url, "organizations", management)
    source = org.list_parents(ChildId=account)["Parents"][0]["Id"]
    org.move_account(AccountId=account, SourceParentId=source, DestinationParentId=parent)
    return {"moved": account, "from": source, "to": parent}


def main(url, command, *args):
    if command == "org":
        out = make_org(url)
    elif command == "deploy":
        management, org_template, member_template, *skip = args
        out = deploy(url, management, org_template, member_template, set(skip))
    elif command == "move":
        out = move(url, *args)
    elif command == "standalone":
        out = deploy_stack(url, random_account(), "orgsync-member-role", *args)
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
