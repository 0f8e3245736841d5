//! The folder check of both ImageServices: each handler says how to find the
//! folder of what it is about to answer with, and this decides (through
//! [`crate::domain::access::authorize`]). The folder is only looked up for a
//! caller limited to some folders; with authentication off there is no caller
//! and nothing is done.

use std::future::Future;

use crate::domain::FolderId;
use crate::domain::access::{self, Caller};
use crate::domain::container::registry_of;
use crate::error::ApiError;
use crate::store::{ContainerImageRepository, RepositoryError};

pub use crate::domain::encoded::encoded_string_field;

/// [`check`] for a call about a folder it names.
pub async fn check_folder(caller: Option<&Caller>, folder: &FolderId) -> Result<(), ApiError> {
    check(caller, || async { Ok(Some(folder.as_str().to_owned())) }).await
}

/// Lets the call go on when `caller` (if any) may read the folder that
/// `folder` finds (`None`: unknown, readable by callers of every folder only).
pub async fn check<F>(caller: Option<&Caller>, folder: impl FnOnce() -> F) -> Result<(), ApiError>
where
    F: Future<Output = Result<Option<String>, RepositoryError>>,
{
    let Some(caller) = caller else {
        return Ok(());
    };
    if caller.reads_all() {
        return Ok(());
    }
    let folder = folder().await.map_err(super::backend_failed)?;
    access::authorize(caller, folder.as_deref())
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
