//! The errors a call can end with, independent of the protocol face. Each face
//! maps them once (gRPC: `grpc::status`).

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A request field is missing or malformed.
    #[error("{field}: {description}")]
    InvalidArgument {
        field: Cow<'static, str>,
        description: Cow<'static, str>,
    },
    #[error("{0}")]
    NotFound(String),
    /// The backend can't be reached right now; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or corrupt data on our side.
    #[error("{0}")]
    Internal(String),
    /// Over a limit (calls in flight); a retry later or elsewhere may succeed.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The method exists in the API but this server does not serve it.
    #[error("{0}")]
    Unimplemented(String),
    /// No usable credentials: the token is missing, malformed or unknown.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but may not read that folder.
    #[error("{0}")]
    PermissionDenied(String),
    /// A write would make a second image of the same name in a folder.
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource is not in a state the call can act on (an image still
    /// being created or deleted).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's deadline (`grpc-timeout`) passed before the answer was ready.
    #[error("{0}")]
    DeadlineExceeded(String),
}

impl ApiError {
    pub fn invalid_argument(
        field: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            description: description.into(),
        }
    }

    pub fn image_not_found(id: &str) -> Self {
        Self::NotFound(format!("Image {id} not found"))
    }

    pub fn family_not_found(family: &str, folder: &str) -> Self {
        Self::NotFound(format!(
            "Image family {family} not found in folder {folder}"
        ))
    }
}
