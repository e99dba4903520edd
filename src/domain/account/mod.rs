//! One AWS account: its facts as last harvested and its place in an organization.

mod aggregate;
mod commands;
mod error;
mod events;

pub use aggregate::Account;
pub use commands::{AccountCommand, RecordAccountGone, RecordAccountSeen, TagChanged};
pub use error::AccountError;
pub use events::AccountEvent;

/// An account's AWS resource tags, by key.
pub type Tags = std::collections::BTreeMap<String, String>;
