//! [`ApiError`] to `tonic::Status`, with the google.rpc details every error carries.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::request_context::RequestId;
use crate::error::ApiError;

/// The Status for `err`, with a `RequestInfo` detail naming the request and, for
/// a bad field, a `BadRequest` detail naming the field.
pub fn to_status(err: ApiError, request_id: Option<&RequestId>) -> Status {
    let mut details = ErrorDetails::new();
    if let Some(id) = request_id {
        details.set_request_info(id.as_str(), "");
    }
    let (code, message) = match err {
        ApiError::InvalidArgument { field, description } => {
            let message = format!("Request validation error: {field}: {description}");
            details.add_bad_request_violation(field.into_owned(), description.into_owned());
            (Code::InvalidArgument, message)
        }
        ApiError::NotFound(message) => (Code::NotFound, message),
        ApiError::Unavailable(message) => (Code::Unavailable, message),
        ApiError::Internal(message) => (Code::Internal, message),
        ApiError::ResourceExhausted(message) => (Code::ResourceExhausted, message),
        ApiError::Unimplemented(message) => (Code::Unimplemented, message),
        ApiError::Unauthenticated(message) => (Code::Unauthenticated, message),
        ApiError::PermissionDenied(message) => (Code::PermissionDenied, message),
        ApiError::AlreadyExists(message) => (Code::AlreadyExists, message),
        ApiError::FailedPrecondition(message) => (Code::FailedPrecondition, message),
        ApiError::DeadlineExceeded(message) => (Code::DeadlineExceeded, message),
    };
    Status::with_error_details(code, message, details)
}
