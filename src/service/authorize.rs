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
use crate::store::{BindingRepository, ContainerImageRepository, RepositoryError};

pub use crate::domain::encoded::{compute_image_folder, encoded_string_field};

/// Where the bindings of the resource of a call are: its image id and the
/// repository that keeps them.
pub type Bound<'a> = Option<(&'a dyn BindingRepository, &'a str)>;

/// Lets the call go on when `caller` (if any) may do `action` to a resource
/// of `service` in the folder `folder` finds (`None`: unknown, which only
/// roles in every folder reach), or that a binding on the image of `bound`
/// allows.
pub async fn check<F>(
    caller: Option<&Caller>,
    action: Action,
    service: Service,
    folder: impl FnOnce() -> F,
    bound: Bound<'_>,
) -> Result<(), ApiError>
where
    F: Future<Output = Result<Option<String>, RepositoryError>>,
{
    let Some(caller) = caller else {
        return Ok(());
    };
    if caller.may_everywhere(service, action) {
        return Ok(());
    }
    let folder = folder().await.map_err(backend_failed)?;
    let resource = Resource::in_folder(service, folder.as_deref());
    if access::permits(caller, action, &resource) {
        return Ok(());
    }
    match bound {
        Some((repository, image_id)) => {
            let bindings = repository
                .image_bindings(image_id)
                .await
                .map_err(backend_failed)?;
            access::authorize(caller, action, &resource.with_bindings(&bindings))
        }
        None => Err(access::denied(caller, action, folder.as_deref())),
    }
}

/// [`check`] for a resource whose folder is known.
pub async fn check_in(
    caller: Option<&Caller>,
    action: Action,
    service: Service,
    folder: Option<&str>,
    bound: Bound<'_>,
) -> Result<(), ApiError> {
    let folder = folder.map(str::to_owned);
    check(caller, action, service, || async { Ok(folder) }, bound).await
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
