//! The gRPC face: tonic services that translate requests into domain calls and
//! results back into messages, plus the layer every call passes through.

pub mod compute;
pub mod container_registry;
mod encoded_get;
pub mod request_context;
pub mod status;

pub use encoded_get::EncodedGet;

use std::future::Future;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::domain::ImageId;
use crate::error::ApiError;
use crate::repository::RepositoryError;
use request_context::{RequestId, request_id_of};

/// The request id of a tonic request, as set by the request-context layer.
fn request_id<T>(request: &Request<T>) -> Option<RequestId> {
    request_id_of(request.extensions()).cloned()
}

/// The Get of either API: validate the id, look it up, map every outcome.
/// `T` is the image or its encoding, whichever the caller answers with.
async fn get_image<T, F>(
    request_id: Option<RequestId>,
    raw_id: String,
    lookup: impl FnOnce(ImageId) -> F,
) -> Result<Response<T>, Status>
where
    F: Future<Output = Result<Option<T>, RepositoryError>>,
{
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let id = ImageId::parse("image_id", raw_id).map_err(fail)?;
    tracing::Span::current().record("image_id", id.as_str());
    let not_found = ApiError::image_not_found(id.as_str());
    match lookup(id).await {
        Ok(Some(image)) => Ok(Response::new(image)),
        Ok(None) => Err(fail(not_found)),
        Err(err) => {
            tracing::warn!(error = %err, "image lookup failed");
            Err(fail(err.into()))
        }
    }
}

/// A looked-up image out of its `Arc`: without a copy when the backend made it
/// for this call (the in-memory one decodes a fresh one).
fn unwrap_image<T: Clone>(
    found: Result<Option<Arc<T>>, RepositoryError>,
) -> Result<Option<T>, RepositoryError> {
    found.map(|image| image.map(Arc::unwrap_or_clone))
}

/// The answer of an RPC that the API declares and this server doesn't serve.
fn unimplemented<T>(request: &Request<T>, method: &str, why: &str) -> Status {
    status::to_status(
        ApiError::Unimplemented(format!("{method} is not implemented: {why}")),
        request_id_of(request.extensions()),
    )
}

/// Why the write methods are missing.
const READ_ONLY: &str = "image-service serves a read-only image catalog";
/// Why a read method is missing for now.
const NOT_YET: &str = "not built yet in this version of image-service";
