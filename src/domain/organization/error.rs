/// Why an organization refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrganizationError {
    /// A second registration of the same AWS organization (R2).
    #[error("organization is registered already")]
    AlreadyRegistered,
    /// A command for an organization that was never registered.
    #[error("organization is not registered")]
    NotRegistered,
}
