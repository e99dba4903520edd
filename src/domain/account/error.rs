/// Why an account refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The command needs an account that is in the listing.
    #[error("account is not in the listing")]
    NotListed,
}
