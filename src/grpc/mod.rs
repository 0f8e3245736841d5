//! The gRPC face: each ImageService is a [`unary::Served`] service whose
//! methods translate a request into a call of [`crate::service`] and its
//! result into a message (or a status carrying the request id). Nothing else.

pub mod compute;
pub mod container_registry;
pub mod endpoint;
pub mod unary;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::domain::access::{Caller, caller_of};
use crate::error::ApiError;
use crate::transport::request_context::{RequestId, request_id_of};
use crate::transport::status::to_status;

pub use unary::{EncodedMessage, Served};

/// What a handler needs of a tonic request: its request id (from the request
/// context), its caller (from authentication, none when it is off) and its message.
fn parts<T>(request: Request<T>) -> (Option<RequestId>, Option<Arc<Caller>>, T) {
    let request_id = request_id_of(request.extensions()).cloned();
    let caller = caller_of(request.extensions());
    (request_id, caller, request.into_inner())
}

/// A service function's outcome as tonic's: the answer as `message`, or the
/// error as a status naming the request.
fn respond<T, M>(
    outcome: Result<T, ApiError>,
    request_id: Option<RequestId>,
    message: impl FnOnce(T) -> M,
) -> Result<Response<M>, Status> {
    match outcome {
        Ok(answer) => Ok(Response::new(message(answer))),
        Err(err) => Err(to_status(err, request_id.as_ref())),
    }
}
