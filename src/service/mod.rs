//! One function per RPC, called by both faces: parse the request into domain
//! values, check the caller may see the answer, ask the store, map the outcome
//! to an [`ApiError`]. Nothing here knows gRPC or HTTP.
//!
//! Images are answered as the store keeps them, protobuf-encoded: the faces
//! send those bytes as they are (gRPC) or transcode them once (REST), so no
//! image is decoded and encoded again per call.

mod authorize;
pub mod compute;
pub mod container;

use std::future::Future;

use bytes::Bytes;

use std::sync::Arc;

pub use compute::ComputeImages;
pub use container::ContainerImages;

/// An ImageService over its store (`S`: that API's repository trait).
pub struct Images<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> Images<S> {
    pub fn new(store: Arc<S>) -> Self {
        Self { store }
    }
}

use crate::domain::ImageId;
use crate::domain::access::Caller;
use crate::domain::page::ListRequest;
use crate::error::ApiError;
use crate::store::{EncodedPage, ListError, RepositoryError};

/// A page of a List as both APIs' `ListImagesResponse` holds it: each image's
/// protobuf encoding, and the token of the next page (empty on the last).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImagePage {
    pub images: Vec<Bytes>,
    pub next_page_token: String,
}

impl ImagePage {
    /// The answer to `list` for the page the store found.
    fn new<Q>(list: &ListRequest<Q>, page: EncodedPage) -> Result<Self, ApiError> {
        let next_page_token = match &page.continues_after {
            Some(last_id) => list.next_page_token(last_id)?,
            None => String::new(),
        };
        Ok(Self {
            images: page.items,
            next_page_token,
        })
    }
}

/// The Get of either API: validate the id, look it up, check the caller (if
/// any) may read the image's folder (`folder_of` finds it from the encoding).
/// `lookup` hands the id back with its result, so that the not-found message
/// is only made on a miss.
async fn get_image<Found, Folder>(
    caller: Option<&Caller>,
    raw_id: String,
    lookup: impl FnOnce(ImageId) -> Found,
    folder_of: impl FnOnce(&Bytes) -> Folder,
) -> Result<Bytes, ApiError>
where
    Found: Future<Output = (ImageId, Result<Option<Bytes>, RepositoryError>)>,
    Folder: Future<Output = Result<Option<String>, RepositoryError>>,
{
    let id = ImageId::parse("image_id", raw_id)?;
    tracing::Span::current().record("image_id", id.as_str());
    let image = match lookup(id).await {
        (_, Ok(Some(image))) => image,
        (id, Ok(None)) => return Err(ApiError::image_not_found(id.as_str())),
        (_, Err(err)) => return Err(backend_failed(err)),
    };
    if let Some(caller) = caller {
        // Boxed, so that a call without authentication carries none of its state.
        Box::pin(authorize::check(Some(caller), || folder_of(&image))).await?;
    }
    Ok(image)
}

/// Why the write methods are missing.
pub const READ_ONLY: &str = "image-service serves a read-only image catalog";

/// The answer of an RPC that the API declares and this server doesn't serve.
pub fn unimplemented(method: &str) -> ApiError {
    ApiError::Unimplemented(format!("{method} is not implemented: {READ_ONLY}"))
}

/// Maps a store error, logging it (it is our problem, not the caller's).
fn backend_failed(err: RepositoryError) -> ApiError {
    tracing::warn!(error = %err, "image lookup failed");
    err.into()
}

/// Maps an error of a List, logging store failures.
fn list_failed(err: ListError) -> ApiError {
    match err {
        ListError::Backend(err) => backend_failed(err),
        cursor => cursor.into(),
    }
}

impl From<ListError> for ApiError {
    fn from(err: ListError) -> Self {
        match err {
            ListError::CursorNotFound(id) => Self::invalid_argument(
                "page_token",
                format!(
                    "the image {id} that the page token continues after no longer exists; \
                     list again without page_token"
                ),
            ),
            ListError::Backend(err) => err.into(),
        }
    }
}

impl From<RepositoryError> for ApiError {
    fn from(err: RepositoryError) -> Self {
        match err {
            RepositoryError::Unavailable(reason) => {
                Self::Unavailable(format!("image catalog backend is unavailable: {reason}"))
            }
            RepositoryError::Internal(reason) => {
                Self::Internal(format!("image catalog backend failed: {reason}"))
            }
            RepositoryError::DeadlineExceeded(reason) => Self::DeadlineExceeded(reason),
        }
    }
}
