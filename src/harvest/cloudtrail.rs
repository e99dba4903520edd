//! Organizations' CloudTrail events as EventBridge forwards them to an SQS queue (R16): what
//! each names, never what it says the account now is (the refresh reads that from AWS).

use serde_json::Value;

use crate::domain::{AccountId, ParentId, Trail};

/// What an event asks to refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One account: its membership, state, place and tags.
    Account(AccountId),
    /// One OU, renamed: the path of every account below it.
    Unit(ParentId),
}

/// An event of Organizations, as far as orgsync acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// CloudTrail's `eventName`, e.g. `MoveAccount`.
    pub event_name: String,
    /// CloudTrail's record of the call.
    pub trail: Trail,
    /// What to refresh; none for a call that changes nothing orgsync lists.
    pub subject: Option<Subject>,
}

/// Why a message is not an Organizations event orgsync can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Organizations event: {0}")]
pub struct Unreadable(&'static str);

/// Reads a message body: an EventBridge event whose `detail` is the CloudTrail record, or the
/// record itself.
pub fn parse(body: &str) -> Result<Notice, Unreadable> {
    let event: Value = serde_json::from_str(body).map_err(|_| Unreadable("not JSON"))?;
    let record = match event.get("detail") {
        Some(detail) => {
            if event["source"] != "aws.organizations" {
                return Err(Unreadable("its source is not aws.organizations"));
            }
            detail
        }
        None => &event,
    };
    if record["eventSource"] != "organizations.amazonaws.com" {
        return Err(Unreadable(
            "its eventSource is not organizations.amazonaws.com",
        ));
    }
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let event_name = text(&record["eventName"]).ok_or(Unreadable("it has no eventName"))?;
    let trail = Trail {
        event_id: text(&record["eventID"]).ok_or(Unreadable("it has no eventID"))?,
        caller_arn: text(&record["userIdentity"]["arn"]),
    };
    // A call AWS refused changed nothing.
    let subject = if record.get("errorCode").is_some_and(|code| !code.is_null()) {
        None
    } else {
        subject(&event_name, record)
    };
    Ok(Notice {
        event_name,
        trail,
        subject,
    })
}

fn subject(event_name: &str, record: &Value) -> Option<Subject> {
    let request = &record["requestParameters"];
    let account = |value: &Value| {
        value
            .as_str()
            .and_then(|id| AccountId::try_from(id).ok())
            .map(Subject::Account)
    };
    match event_name {
        "CreateAccountResult" => {
            let status = &record["serviceEventDetails"]["createAccountStatus"];
            if status["state"] == "SUCCEEDED" {
                account(&status["accountId"])
            } else {
                None
            }
        }
        "InviteAccountToOrganization" => {
            if request["target"]["type"] == "ACCOUNT" {
                account(&request["target"]["id"])
            } else {
                None
            }
        }
        "AcceptHandshake" => record["responseElements"]["handshake"]["parties"]
            .as_array()?
            .iter()
            .find(|party| party["type"] == "ACCOUNT")
            .and_then(|party| account(&party["id"])),
        "MoveAccount" | "CloseAccount" | "RemoveAccountFromOrganization" => {
            account(&request["accountId"])
        }
        // Tags of OUs, roots and policies do not show in the listing.
        "TagResource" | "UntagResource" => account(&request["resourceId"]),
        // Called by the account that leaves, in its own name.
        "LeaveOrganization" => account(&record["userIdentity"]["accountId"])
            .or_else(|| account(&record["recipientAccountId"])),
        "UpdateOrganizationalUnit" => request["organizationalUnitId"]
            .as_str()
            .and_then(|id| ParentId::try_from(id).ok())
            .map(Subject::Unit),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(detail: Value) -> String {
        serde_json::json!({
            "version": "0",
            "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.organizations",
            "account": "111122223333",
            "time": "2026-11-30T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        })
        .to_string()
    }

    #[test]
    fn a_move_names_its_account_and_keeps_the_trail() {
        let body = envelope(serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice", "accountId": "111122223333"},
            "eventSource": "organizations.amazonaws.com",
            "eventName": "MoveAccount",
            "requestParameters": {"accountId": "444455556666", "sourceParentId": "r-ab12", "destinationParentId": "ou-ab12-cdefghij"},
            "responseElements": null,
            "eventID": "9d2e1c47-5d0e-4c1e-9d4a-0e1f3a2b4c5d"
        }));
        let notice = parse(&body).unwrap();
        assert_eq!(notice.event_name, "MoveAccount");
        assert_eq!(
            notice.subject,
            Some(Subject::Account("444455556666".try_into().unwrap()))
        );
        assert_eq!(
            notice.trail,
            Trail {
                event_id: "9d2e1c47-5d0e-4c1e-9d4a-0e1f3a2b4c5d".into(),
                caller_arn: Some("arn:aws:sts::111122223333:assumed-role/Admin/alice".into()),
            }
        );
    }

    #[test]
    fn refused_calls_failed_creations_and_other_calls_name_nothing() {
        for detail in [
            serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "MoveAccount", "eventID": "e1",
                "errorCode": "AccessDenied", "requestParameters": {"accountId": "444455556666"}}),
            serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult", "eventID": "e2",
                "serviceEventDetails": {"createAccountStatus": {"state": "FAILED", "failureReason": "EMAIL_ALREADY_EXISTS"}}}),
            serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "TagResource", "eventID": "e3",
                "requestParameters": {"resourceId": "ou-ab12-cdefghij", "tags": [{"key": "env", "value": "prod"}]}}),
            serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "CreatePolicy", "eventID": "e4"}),
        ] {
            let notice = parse(&envelope(detail.clone())).unwrap();
            assert_eq!(notice.subject, None, "{detail}");
        }
    }

    #[test]
    fn what_is_not_an_organizations_event_is_unreadable() {
        let other_source = serde_json::json!({"source": "aws.ec2", "detail": {"eventSource": "ec2.amazonaws.com"}});
        for body in [
            "",
            "not json",
            "[]",
            &other_source.to_string(),
            &envelope(
                serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "MoveAccount"}),
            ),
        ] {
            assert!(parse(body).is_err(), "{body}");
        }
    }
}
