//! One function per RPC, called by both faces: parse the request into domain
//! values, check the caller may see the answer, ask the store, map the outcome
//! to an [`ApiError`]. Nothing here knows gRPC or HTTP.
//!
//! Get and List are written once for both APIs ([`Images`]), over what each
//! API says about itself ([`ImageApi`]: its requests, where an image's folder
//! is, which store calls to make). Images are answered as the store keeps
//! them, protobuf-encoded: the faces send those bytes as they are (gRPC) or
//! transcode them once (REST), so no image is decoded and encoded again.

mod authorize;
pub mod compute;
pub mod container;
pub mod writes;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

pub use compute::ComputeImages;
pub use container::ContainerImages;
pub use writes::{WriteSettings, Writes};

use crate::domain::ImageId;
use crate::domain::access::{self, Action, Caller, Resource, Service};
use crate::domain::page::ListRequest;
use crate::error::ApiError;
use crate::proto::yandex::cloud::access::AccessBinding;
use crate::store::{BindingRepository, EncodedPage, ListError, RepositoryError};

/// What the Get and List of one API differ in.
pub trait ImageApi: Send + Sync + 'static {
    /// The API's repository trait object.
    type Store: ?Sized + Send + Sync;
    type GetRequest: Send;
    type ListRequest: Send;
    type Query: Send + Sync;

    /// Whose roles reach its images.
    const SERVICE: Service;

    fn image_id(request: Self::GetRequest) -> String;

    fn parse_list(request: Self::ListRequest) -> Result<ListRequest<Self::Query>, ApiError>;

    fn get_encoded(
        store: &Self::Store,
        id: &ImageId,
    ) -> impl Future<Output = Result<Option<Bytes>, RepositoryError>> + Send;

    /// The folder of an image, from its encoding (None: unknown).
    fn folder_of_image(
        store: &Self::Store,
        image: &Bytes,
    ) -> impl Future<Output = Result<Option<String>, RepositoryError>> + Send;

    /// The folder a List's query is about (None: unknown).
    fn folder_of_query(
        store: &Self::Store,
        query: &Self::Query,
    ) -> impl Future<Output = Result<Option<String>, RepositoryError>> + Send;

    fn list_encoded(
        store: &Self::Store,
        list: &ListRequest<Self::Query>,
    ) -> impl Future<Output = Result<EncodedPage, ListError>> + Send;

    /// The List of `images` alone (each a stored image's encoding), for a
    /// caller who may read only those.
    fn list_of(
        images: Vec<Bytes>,
        list: &ListRequest<Self::Query>,
    ) -> impl Future<Output = Result<EncodedPage, ListError>> + Send;
}

/// An ImageService over its store.
pub struct Images<A: ImageApi> {
    store: Arc<A::Store>,
    /// Where the access bindings of its images are (none: its images have none).
    bindings: Option<Arc<dyn BindingRepository>>,
}

impl<A: ImageApi> Images<A> {
    pub fn new(store: Arc<A::Store>, bindings: Option<Arc<dyn BindingRepository>>) -> Self {
        Self { store, bindings }
    }

    /// The bindings of image `id` (none when its images have no bindings).
    async fn image_bindings(&self, id: &str) -> Result<Vec<AccessBinding>, RepositoryError> {
        match &self.bindings {
            Some(bindings) => bindings.image_bindings(id).await,
            None => Ok(Vec::new()),
        }
    }

    /// Get: the image's encoding. `caller` is who authentication let in (none
    /// when it is off).
    pub async fn get(
        &self,
        caller: Option<&Caller>,
        request: A::GetRequest,
    ) -> Result<Bytes, ApiError> {
        let id = ImageId::parse("image_id", A::image_id(request))?;
        tracing::Span::current().record("image_id", id.as_str());
        let store = self.store.as_ref();
        let image = match A::get_encoded(store, &id).await {
            Ok(Some(image)) => image,
            // Without a token, nothing is said about what isn't public.
            Ok(None) if caller.is_some_and(Caller::is_anonymous) => {
                return Err(access::authentication_required());
            }
            Ok(None) => return Err(ApiError::image_not_found(id.as_str())),
            Err(err) => return Err(backend_failed(err)),
        };
        if let Some(caller) = caller {
            // Boxed, so that a call without authentication carries none of its state.
            Box::pin(authorize::check(
                Some(caller),
                Action::Read,
                A::SERVICE,
                || A::folder_of_image(store, &image),
                || self.image_bindings(id.as_str()),
            ))
            .await?;
        }
        Ok(image)
    }

    /// List: a page of the images the query is about.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        request: A::ListRequest,
    ) -> Result<ImagePage, ApiError> {
        let list = A::parse_list(request)?;
        let store = self.store.as_ref();
        if let Some(caller) = caller.filter(|c| !c.may_everywhere(A::SERVICE, Action::Read)) {
            let folder = A::folder_of_query(store, &list.query)
                .await
                .map_err(backend_failed)?;
            let resource = Resource::in_folder(A::SERVICE, folder.as_deref());
            if !access::permits(caller, Action::Read, &resource) {
                // Not a reader of the folder: the images in it bound to the caller, if any.
                let bound = match (&self.bindings, folder.as_deref()) {
                    (Some(bindings), Some(folder)) => {
                        readable_bound(caller, A::SERVICE, folder, bindings.as_ref()).await?
                    }
                    _ => Vec::new(),
                };
                if bound.is_empty() {
                    return Err(access::denied(caller, Action::Read, folder.as_deref()));
                }
                return self.list_bound(&list, bound).await;
            }
        }
        let page = A::list_encoded(store, &list).await.map_err(list_failed)?;
        ImagePage::new(&list, page)
    }

    /// The List of the images `ids` alone.
    async fn list_bound(
        &self,
        list: &ListRequest<A::Query>,
        ids: Vec<String>,
    ) -> Result<ImagePage, ApiError> {
        let mut images = Vec::with_capacity(ids.len());
        for id in ids {
            let Ok(id) = ImageId::parse("image_id", id) else {
                continue;
            };
            if let Some(image) = A::get_encoded(&self.store, &id)
                .await
                .map_err(backend_failed)?
            {
                images.push(image);
            }
        }
        let page = A::list_of(images, list).await.map_err(list_failed)?;
        ImagePage::new(list, page)
    }
}

/// The ids of the images of `folder` whose bindings let `caller` read them.
async fn readable_bound(
    caller: &Caller,
    service: Service,
    folder: &str,
    bindings: &dyn BindingRepository,
) -> Result<Vec<String>, ApiError> {
    let bound = bindings
        .folder_bindings(folder)
        .await
        .map_err(backend_failed)?;
    let readable = |image_bindings: &[AccessBinding]| {
        let resource = Resource::in_folder(service, Some(folder)).with_bindings(image_bindings);
        access::permits(caller, Action::Read, &resource)
    };
    Ok(bound
        .into_iter()
        .filter(|(_, image_bindings)| readable(image_bindings))
        .map(|(id, _)| id)
        .collect())
}

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

/// The answer of an RPC that the API declares and this server doesn't serve.
pub fn unimplemented(method: &str) -> ApiError {
    ApiError::Unimplemented(format!("{method} is not implemented by image-service"))
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
