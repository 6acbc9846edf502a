//! The one error a decision can end in. Each kind maps to one HTTP status, so
//! the API layer never has to guess.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// The command itself is malformed (empty name, zero quantity, ...): 400.
    #[error("{0}")]
    Invalid(String),
    /// The aggregate the command addresses does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// The caller is not the one the business allows (not the store's owner,
    /// not the rider on the delivery): 403.
    #[error("{0}")]
    Forbidden(String),
    /// The command is well-formed but not allowed in the current state: 409.
    #[error("{0}")]
    Conflict(String),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict(message.into())
    }
}

/// Fails with `Invalid(message)` unless `condition` holds.
pub(crate) fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), DomainError> {
    if condition { Ok(()) } else { Err(DomainError::Invalid(message())) }
}
