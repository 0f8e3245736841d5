//! The gRPC face: tonic services that translate requests into domain calls and
//! results back into messages, plus the layer every call passes through.

mod authorize;
pub mod compute;
pub mod container_registry;
mod encoded_get;
mod encoded_list;
pub mod endpoint;
pub mod error_headers;
pub mod metadata;
pub mod request_context;
pub mod status;

pub use encoded_get::{DirectGet, EncodedGet};
pub use encoded_list::{EncodedList, EncodedListResponse};

use std::future::Future;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::auth::access::{Caller, caller_of};
use crate::domain::ImageId;
use crate::domain::page::ListRequest;
use crate::error::ApiError;
use crate::repository::{ListError, Page, RepositoryError};
use request_context::{RequestId, request_id_of};

/// The request id of a tonic request, as set by the request-context layer.
fn request_id<T>(request: &Request<T>) -> Option<RequestId> {
    request_id_of(request.extensions()).cloned()
}

/// The caller of a tonic request, as set by the authentication layer (none when it is off).
fn caller<T>(request: &Request<T>) -> Option<Arc<Caller>> {
    caller_of(request.extensions())
}

/// The Get of either API: validate the id, look it up, check the caller may
/// read the image's folder (`folder_of` finds it), map every outcome.
/// `T` is the image or its encoding, whichever the caller answers with.
/// `lookup` hands the id back with its result, so that the not-found message
/// is only made on a miss rather than on every call.
async fn get_image<T, F, A>(
    request_id: Option<RequestId>,
    caller: Option<Arc<Caller>>,
    raw_id: String,
    lookup: impl FnOnce(ImageId) -> F,
    folder_of: impl FnOnce(&T) -> A,
) -> Result<Response<T>, Status>
where
    F: Future<Output = (ImageId, Result<Option<T>, RepositoryError>)>,
    A: Future<Output = Result<Option<String>, RepositoryError>>,
{
    let fail = |err: ApiError| status::to_status(err, request_id.as_ref());
    let id = ImageId::parse("image_id", raw_id).map_err(fail)?;
    tracing::Span::current().record("image_id", id.as_str());
    let (id, found) = lookup(id).await;
    match found {
        Ok(Some(image)) => {
            if let Some(caller) = caller {
                // Boxed, so that a call without authentication carries none of its state.
                Box::pin(authorize::check(Some(&caller), || folder_of(&image)))
                    .await
                    .map_err(fail)?;
            }
            Ok(Response::new(image))
        }
        Ok(None) => Err(fail(ApiError::image_not_found(id.as_str()))),
        Err(err) => Err(fail(backend_failed(err))),
    }
}

/// Maps a backend error of a lookup, logging it (it is our problem, not the caller's).
fn backend_failed(err: RepositoryError) -> ApiError {
    tracing::warn!(error = %err, "image lookup failed");
    err.into()
}

/// Maps an error of a List, logging backend failures.
fn list_failed(err: ListError) -> ApiError {
    match err {
        ListError::Backend(err) => backend_failed(err),
        cursor => cursor.into(),
    }
}

/// A page as a List response's parts: its images (moved out of their `Arc`s,
/// or cloned when shared) and the token of the next page, empty on the last page.
fn page_response<Q, T: Clone>(
    list: &ListRequest<Q>,
    page: Page<T>,
    id_of: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, String), ApiError> {
    let next_page_token = match page.items.last() {
        Some(last) if page.more => list.next_page_token(id_of(last))?,
        _ => String::new(),
    };
    // Without a copy when the backend made the image for this call (both do
    // for List pages: they decode the page's images).
    let items = page.items.into_iter().map(Arc::unwrap_or_clone).collect();
    Ok((items, next_page_token))
}

/// A looked-up image out of its `Arc`: without a copy when the backend made it
/// for this call (PostgreSQL decodes a fresh one; the in-memory one shares its
/// own, so that one is cloned).
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
