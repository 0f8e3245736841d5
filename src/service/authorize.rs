//! The access check of both ImageServices and the writes: each handler says
//! how to find the folder of what it is about to answer with (and, for a
//! compute image, where its bindings are), and this decides through
//! [`crate::domain::access::permits`]. The folder is only looked up for a
//! caller without the role in every folder, and bindings only when the
//! folder's roles are not enough; with authentication off there is no caller
//! and nothing is done.

use std::future::Future;

use super::backend_failed;
use crate::domain::access::{self, Action, Caller, Resource, Service};
use crate::domain::container::registry_of;
use crate::error::ApiError;
use crate::proto::yandex::cloud::access::AccessBinding;
use crate::store::{ContainerImageRepository, RepositoryError};

pub use crate::domain::encoded::{compute_image_folder, encoded_string_field};

/// Lets the call go on when `caller` (if any) may do `action` to a resource
/// of `service` in the folder `folder` finds (`None`: unknown, which only
/// roles in every folder reach), or that one of the resource's bindings
/// (which `bindings` reads, only when the folder's roles are not enough) allows.
pub async fn check<F, B>(
    caller: Option<&Caller>,
    action: Action,
    service: Service,
    folder: impl FnOnce() -> F,
    bindings: impl FnOnce() -> B,
) -> Result<(), ApiError>
where
    F: Future<Output = Result<Option<String>, RepositoryError>>,
    B: Future<Output = Result<Vec<AccessBinding>, RepositoryError>>,
{
    let Some(caller) = caller else {
        return Ok(());
    };
    if caller.may_everywhere(service, action) {
        return Ok(());
    }
    let folder = folder().await.map_err(backend_failed)?;
    decide(caller, action, service, folder.as_deref(), bindings).await
}

/// [`check`] for a resource whose folder is known.
pub async fn check_in<B>(
    caller: Option<&Caller>,
    action: Action,
    service: Service,
    folder: Option<&str>,
    bindings: impl FnOnce() -> B,
) -> Result<(), ApiError>
where
    B: Future<Output = Result<Vec<AccessBinding>, RepositoryError>>,
{
    match caller {
        Some(caller) => decide(caller, action, service, folder, bindings).await,
        None => Ok(()),
    }
}

/// The bindings of a resource that has none (a container image, or a store
/// that keeps no bindings), for [`check`] and [`check_in`].
pub fn no_bindings() -> std::future::Ready<Result<Vec<AccessBinding>, RepositoryError>> {
    std::future::ready(Ok(Vec::new()))
}

/// The folder's roles first; the bindings only when those say no.
async fn decide<B>(
    caller: &Caller,
    action: Action,
    service: Service,
    folder: Option<&str>,
    bindings: impl FnOnce() -> B,
) -> Result<(), ApiError>
where
    B: Future<Output = Result<Vec<AccessBinding>, RepositoryError>>,
{
    let resource = Resource::in_folder(service, folder);
    if access::permits(caller, action, &resource) {
        return Ok(());
    }
    let bindings = bindings().await.map_err(backend_failed)?;
    access::authorize(caller, action, &resource.with_bindings(&bindings))
}

/// The folder of a container image or repository name: its registry's.
pub async fn folder_of_repository(
    repository: &dyn ContainerImageRepository,
    name: &str,
) -> Result<Option<String>, RepositoryError> {
    match registry_of(name) {
        Some(registry) => repository.registry_folder(registry).await,
        None => Ok(None),
    }
}
