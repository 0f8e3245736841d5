//! The write methods and the Operation service, written once over
//! [`WriteRepository`]: each write checks its request, then in one backend
//! transaction checks what it depends on (the image, its name, the
//! idempotency key), makes its first change and stores its operation. The
//! operation is finished later, in a second transaction: by a timer, or by the
//! first OperationService.Get that finds it due.
//!
//! What an operation does, from start to done:
//! - Create: the image appears at once as CREATING; done, it is READY and is
//!   the response. A failure (or Cancel) deletes it again: nothing is left.
//! - Update: the fields change at once; done, the image is the response.
//! - Delete: the image turns DELETING at once; done, it is gone and the
//!   response is `google.protobuf.Empty`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::authorize::{self, folder_of_repository};
use crate::domain::ImageId;
use crate::domain::access::{self, Action, Caller, Resource, Service};
use crate::domain::bindings::{self, ListBindings};
use crate::domain::operation::{
    self, COMPUTE_PREFIX, IdempotencyKey, OperationKind, StoredOperation,
};
use crate::domain::page::check_paging;
use crate::domain::write::{ImageSource, ImageUpdate, NewImage};
use crate::error::ApiError;
use crate::proto::Timestamp;
use crate::proto::compute::{
    self, CreateImageRequest, DeleteImageRequest, ListImageOperationsRequest,
    ListImageOperationsResponse, Os, UpdateImageRequest, image, os,
};
use crate::proto::container_registry;
use crate::proto::operation::operation::Result as Outcome;
use crate::proto::operation::{CancelOperationRequest, GetOperationRequest, Operation};
use crate::proto::yandex::cloud::access::{
    AccessBinding, AccessBindingDelta, AccessBindingsOperationResult, ListAccessBindingsRequest,
    ListAccessBindingsResponse, SetAccessBindingsRequest, UpdateAccessBindingsRequest,
};
use crate::store::{ContainerImageRepository, RepositoryError, WriteRepository, WriteTransaction};

/// The gRPC paths of the writes: what an idempotency key is scoped to.
pub const CREATE: &str = "/yandex.cloud.compute.v1.ImageService/Create";
pub const UPDATE: &str = "/yandex.cloud.compute.v1.ImageService/Update";
pub const DELETE: &str = "/yandex.cloud.compute.v1.ImageService/Delete";
pub const DELETE_CONTAINER: &str = "/yandex.cloud.containerregistry.v1.ImageService/Delete";
pub const SET_ACCESS_BINDINGS: &str = "/yandex.cloud.compute.v1.ImageService/SetAccessBindings";
pub const UPDATE_ACCESS_BINDINGS: &str =
    "/yandex.cloud.compute.v1.ImageService/UpdateAccessBindings";

/// How long an operation runs when no duration is set; an OperationService.Get
/// finishes it earlier.
pub const DEFAULT_OPERATION_TIME: Duration = Duration::from_millis(200);

/// The `created_by` of operations when authentication is off.
pub const ANONYMOUS: &str = "anonymous";

/// The smallest `min_disk_size` a new image gets when the request leaves it 0
/// and no source image gives one: 4 MiB, the API's minimum.
const SMALLEST_DISK: i64 = 4 << 20;
/// The storage size recorded for an image made from a disk, snapshot or URI,
/// whose data the emulator never sees: 1 GiB.
const EMULATED_STORAGE_SIZE: i64 = 1 << 30;

/// How operations are timed and keys kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteSettings {
    /// `Some`: every operation runs exactly this long. `None`: it runs
    /// [`DEFAULT_OPERATION_TIME`], or until the first Get of it.
    pub operation_time: Option<Duration>,
    /// How long an idempotency key names its operation.
    pub idempotency_ttl: Duration,
}

impl Default for WriteSettings {
    fn default() -> Self {
        Self {
            operation_time: None,
            idempotency_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// The write methods of both ImageServices and the Operation service.
pub struct Writes {
    store: Arc<dyn WriteRepository>,
    container: Arc<dyn ContainerImageRepository>,
    settings: WriteSettings,
    /// Itself, for the timers that finish operations (which must not keep it alive).
    this: Weak<Writes>,
}

/// A write's start: its transaction and key, or the operation its key
/// started before.
enum Opened<'a> {
    New(Box<dyn WriteTransaction + 'a>, Option<IdempotencyKey>),
    Repeat(Operation),
}

/// Who asks, as the writes need it.
struct Asker<'a> {
    caller: Option<&'a Caller>,
}

impl Asker<'_> {
    fn subject(&self) -> &str {
        self.caller.map_or(ANONYMOUS, Caller::subject)
    }

    /// Whether the asker may do `action` in `folder` (of compute images).
    fn may(&self, action: Action, folder: &str) -> Result<(), ApiError> {
        match self.caller {
            Some(caller) => access::authorize(
                caller,
                action,
                &Resource::in_folder(Service::Compute, Some(folder)),
            ),
            None => Ok(()),
        }
    }

    /// Whether the asker may do `action` to `image`, by a role in its folder
    /// or, failing that, a binding on it (read in the write's transaction).
    async fn may_on(
        &self,
        action: Action,
        image: &compute::Image,
        tx: &mut dyn WriteTransaction,
    ) -> Result<(), ApiError> {
        let folder = Some(image.folder_id.as_str());
        // The transaction moves into the call: read once, if at all.
        let bindings = move || {
            let tx = tx;
            tx.access_bindings(&image.id)
        };
        authorize::check_in(self.caller, action, Service::Compute, folder, bindings).await
    }

    fn key(&self, method: &str, key: Option<&str>) -> Result<Option<IdempotencyKey>, ApiError> {
        let subject = self.caller.map_or("", Caller::subject);
        IdempotencyKey::of(subject, method, key)
    }
}

impl Writes {
    pub fn new(
        store: Arc<dyn WriteRepository>,
        container: Arc<dyn ContainerImageRepository>,
        settings: WriteSettings,
    ) -> Arc<Self> {
        Arc::new_cyclic(|this| Self {
            store,
            container,
            settings,
            this: this.clone(),
        })
    }

    /// Finishes the operations a previous run left running (their timers
    /// died with it), each when its time comes.
    pub async fn resume_pending(&self) -> Result<usize, RepositoryError> {
        let pending = self.store.pending_operations().await?;
        for id in &pending {
            self.finish_later(id.clone(), Duration::ZERO);
        }
        Ok(pending.len())
    }

    /// Forgets the idempotency keys older than the TTL.
    pub async fn expire_keys(&self) -> Result<u64, RepositoryError> {
        let before = self.key_horizon();
        self.store.expire_keys(&before).await
    }

    fn key_horizon(&self) -> Timestamp {
        let horizon = std::time::SystemTime::now()
            .checked_sub(self.settings.idempotency_ttl)
            .unwrap_or(std::time::UNIX_EPOCH);
        operation::timestamp(horizon)
    }

    fn operation_time(&self) -> Duration {
        self.settings
            .operation_time
            .unwrap_or(DEFAULT_OPERATION_TIME)
    }

    /// Create: a new image, CREATING until its operation is done.
    pub async fn create(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: CreateImageRequest,
    ) -> Result<Operation, ApiError> {
        let asker = Asker { caller };
        let new = NewImage::parse(request)?;
        asker.may(Action::Write, new.folder_id.as_str())?;
        let (mut tx, key) = match self.open(&asker, CREATE, idempotency_key).await? {
            Opened::New(tx, key) => (tx, key),
            Opened::Repeat(started) => return Ok(started),
        };
        let source = match &new.source {
            ImageSource::Image(id) => {
                let source = tx
                    .compute_image(id.as_str())
                    .await
                    .map_err(failed)?
                    .ok_or_else(|| ApiError::image_not_found(id.as_str()))?;
                asker.may_on(Action::Read, &source, tx.as_mut()).await?;
                Some(source)
            }
            _ => None,
        };
        let folder = new.folder_id.as_str();
        let name = new.request.name.clone();
        check_name_free(tx.as_mut(), folder, &name, "").await?;
        let image = new_image(&new, source.as_ref(), operation::now());
        let mut started = self.new_operation(
            OperationKind::CreateComputeImage,
            (&image.id, folder),
            &asker,
        );
        started.failure = creation_failure(&new.source);
        tx.put_compute_image(&image).await.map_err(failed)?;
        self.commit_started(tx, &started, key.as_ref()).await?;
        tracing::Span::current().record("image_id", image.id.as_str());
        Ok(self.started(started))
    }

    /// Update: the fields the mask names change at once.
    pub async fn update(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: UpdateImageRequest,
    ) -> Result<Operation, ApiError> {
        let asker = Asker { caller };
        let update = ImageUpdate::parse(request)?;
        let (mut tx, key) = match self.open(&asker, UPDATE, idempotency_key).await? {
            Opened::New(tx, key) => (tx, key),
            Opened::Repeat(started) => return Ok(started),
        };
        let mut image = existing_image(tx.as_mut(), &update.image_id).await?;
        asker.may_on(Action::Write, &image, tx.as_mut()).await?;
        settled(&image)?;
        if let Some(name) = &update.name {
            if *name != image.name {
                check_name_free(tx.as_mut(), &image.folder_id, name, &image.id).await?;
            }
        }
        apply_update(&mut image, update);
        let started = self.new_operation(
            OperationKind::UpdateComputeImage,
            (&image.id, &image.folder_id),
            &asker,
        );
        tx.put_compute_image(&image).await.map_err(failed)?;
        self.commit_started(tx, &started, key.as_ref()).await?;
        Ok(self.started(started))
    }

    /// Delete (compute): the image turns DELETING, and is gone when done. An
    /// absent image is NOT_FOUND at once (Terraform takes that as deleted).
    pub async fn delete(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: DeleteImageRequest,
    ) -> Result<Operation, ApiError> {
        let asker = Asker { caller };
        let id = ImageId::parse("image_id", request.image_id)?;
        let (mut tx, key) = match self.open(&asker, DELETE, idempotency_key).await? {
            Opened::New(tx, key) => (tx, key),
            Opened::Repeat(started) => return Ok(started),
        };
        let mut image = existing_image(tx.as_mut(), &id).await?;
        asker.may_on(Action::Write, &image, tx.as_mut()).await?;
        settled(&image)?;
        image.status = image::Status::Deleting as i32;
        let started = self.new_operation(
            OperationKind::DeleteComputeImage,
            (&image.id, &image.folder_id),
            &asker,
        );
        tx.put_compute_image(&image).await.map_err(failed)?;
        self.commit_started(tx, &started, key.as_ref()).await?;
        Ok(self.started(started))
    }

    /// Delete (container registry): the image is gone when the operation is done.
    pub async fn delete_container(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: container_registry::DeleteImageRequest,
    ) -> Result<Operation, ApiError> {
        let asker = Asker { caller };
        let id = ImageId::parse("image_id", request.image_id)?;
        let (mut tx, key) = match self.open(&asker, DELETE_CONTAINER, idempotency_key).await? {
            Opened::New(tx, key) => (tx, key),
            Opened::Repeat(started) => return Ok(started),
        };
        let image = tx
            .container_image(id.as_str())
            .await
            .map_err(failed)?
            .ok_or_else(|| ApiError::image_not_found(id.as_str()))?;
        let folder = folder_of_repository(self.container.as_ref(), &image.name)
            .await
            .map_err(failed)?;
        let resource = Resource::in_folder(Service::ContainerRegistry, folder.as_deref());
        if let Some(caller) = caller {
            access::authorize(caller, Action::Write, &resource)?;
        }
        let started = self.new_operation(
            OperationKind::DeleteContainerImage,
            (&image.id, folder.as_deref().unwrap_or_default()),
            &asker,
        );
        self.commit_started(tx, &started, key.as_ref()).await?;
        Ok(self.started(started))
    }

    /// OperationService.Get: the operation as it stands, finished first if it
    /// is due (and, with no operation time set, whenever it is asked for).
    pub async fn get_operation(
        &self,
        caller: Option<&Caller>,
        request: GetOperationRequest,
    ) -> Result<Operation, ApiError> {
        let id = operation::parse_operation_id(request.operation_id)?;
        let found = self.readable_operation(caller, &id, Action::Read).await?;
        let asked_early = self.settings.operation_time.is_none();
        if found.done() || !(asked_early || found.due(&operation::now())) {
            return Ok(found.operation);
        }
        Ok(self.finish(&id, None).await?.operation)
    }

    /// OperationService.Cancel: a running Create is stopped and rolled back
    /// (done, with a CANCELLED error); any other operation is answered as it
    /// stands (Update and Delete take effect when accepted).
    pub async fn cancel_operation(
        &self,
        caller: Option<&Caller>,
        request: CancelOperationRequest,
    ) -> Result<Operation, ApiError> {
        let id = operation::parse_operation_id(request.operation_id)?;
        let found = self.readable_operation(caller, &id, Action::Write).await?;
        if found.done() || !found.kind().cancellable() {
            return Ok(found.operation);
        }
        let cancelled = operation::error_status(
            tonic::Code::Cancelled,
            format!("Operation {id} was cancelled"),
        );
        Ok(self.finish(&id, Some(cancelled)).await?.operation)
    }

    /// ListOperations: the operations of an image, newest first.
    pub async fn list_operations(
        &self,
        caller: Option<&Caller>,
        request: ListImageOperationsRequest,
    ) -> Result<ListImageOperationsResponse, ApiError> {
        let id = ImageId::parse("image_id", request.image_id)?;
        let size = check_paging(request.page_size, &request.page_token)?;
        let after = Some(request.page_token.as_str()).filter(|t| !t.is_empty());
        let page = self
            .store
            .image_operations(id.as_str(), after, size.get())
            .await
            .map_err(failed)?;
        if let (Some(token), true) = (after, page.operations.is_empty()) {
            if self.store.operation(token).await.map_err(failed)?.is_none() {
                return Err(ApiError::invalid_argument(
                    "page_token",
                    "names no operation of this image; list again without page_token",
                ));
            }
        }
        if let Some(first) = page.operations.first() {
            self.may_on_stored(caller, Action::Read, first).await?;
        }
        if page.operations.is_empty() && after.is_none() {
            // No operations: say NOT_FOUND for an image that isn't there either.
            let mut tx = self.store.begin().await.map_err(failed)?;
            let image = existing_image(tx.as_mut(), &id).await;
            tx.commit().await.map_err(failed)?;
            let image = image?;
            let folder = Some(image.folder_id.as_str());
            let bindings = || self.store.image_bindings(id.as_str());
            authorize::check_in(caller, Action::Read, Service::Compute, folder, bindings).await?;
        }
        Ok(ListImageOperationsResponse {
            operations: page.operations.into_iter().map(|o| o.operation).collect(),
            next_page_token: page.continues_after.unwrap_or_default(),
        })
    }

    /// ListAccessBindings: a page of the image's bindings, in the order added.
    pub async fn list_access_bindings(
        &self,
        caller: Option<&Caller>,
        request: ListAccessBindingsRequest,
    ) -> Result<ListAccessBindingsResponse, ApiError> {
        let list = ListBindings::parse(request)?;
        let mut tx = self.store.begin().await.map_err(failed)?;
        let image = existing_image_by_id(tx.as_mut(), &list.resource_id).await;
        let bindings = tx.access_bindings(&list.resource_id).await.map_err(failed);
        tx.commit().await.map_err(failed)?;
        let (image, bindings) = (image?, bindings?);
        if let Some(caller) = caller {
            let resource = Resource::in_folder(Service::Compute, Some(&image.folder_id));
            access::authorize(caller, Action::Read, &resource.with_bindings(&bindings))?;
        }
        let end = list.offset.saturating_add(list.size).min(bindings.len());
        let page = bindings.get(list.offset..end).unwrap_or_default().to_vec();
        let next_page_token = if end < bindings.len() {
            end.to_string()
        } else {
            String::new()
        };
        Ok(ListAccessBindingsResponse {
            access_bindings: page,
            next_page_token,
        })
    }

    /// SetAccessBindings: the image's bindings replaced; the operation's
    /// response says what effectively changed.
    pub async fn set_access_bindings(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: SetAccessBindingsRequest,
    ) -> Result<Operation, ApiError> {
        let (image_id, next) = bindings::parse_set(request)?;
        self.change_bindings(
            caller,
            idempotency_key,
            SET_ACCESS_BINDINGS,
            image_id,
            |current| bindings::set_deltas(current, &next),
        )
        .await
    }

    /// UpdateAccessBindings: deltas applied in order; the response holds the
    /// ones that changed something.
    pub async fn update_access_bindings(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        request: UpdateAccessBindingsRequest,
    ) -> Result<Operation, ApiError> {
        let (image_id, deltas) = bindings::parse_update(request)?;
        self.change_bindings(
            caller,
            idempotency_key,
            UPDATE_ACCESS_BINDINGS,
            image_id,
            |current| bindings::apply_deltas(current, &deltas),
        )
        .await
    }

    async fn change_bindings(
        &self,
        caller: Option<&Caller>,
        idempotency_key: Option<&str>,
        method: &str,
        image_id: String,
        change: impl FnOnce(&[AccessBinding]) -> (Vec<AccessBinding>, Vec<AccessBindingDelta>),
    ) -> Result<Operation, ApiError> {
        let asker = Asker { caller };
        let (mut tx, key) = match self.open(&asker, method, idempotency_key).await? {
            Opened::New(tx, key) => (tx, key),
            Opened::Repeat(started) => return Ok(started),
        };
        let image = existing_image_by_id(tx.as_mut(), &image_id).await?;
        let current = tx.access_bindings(&image.id).await.map_err(failed)?;
        if let Some(caller) = caller {
            let resource = Resource::in_folder(Service::Compute, Some(&image.folder_id));
            access::authorize(
                caller,
                Action::ManageAccess,
                &resource.with_bindings(&current),
            )?;
        }
        let (next, effective_deltas) = change(&current);
        tx.put_access_bindings(&image.id, &next)
            .await
            .map_err(failed)?;
        let kind = if method == SET_ACCESS_BINDINGS {
            OperationKind::SetAccessBindings
        } else {
            OperationKind::UpdateAccessBindings
        };
        let mut started = self.new_operation(kind, (&image.id, &image.folder_id), &asker);
        started.response = Some(operation::pack(
            "yandex.cloud.access.AccessBindingsOperationResult",
            &AccessBindingsOperationResult { effective_deltas },
        ));
        self.commit_started(tx, &started, key.as_ref()).await?;
        Ok(self.started(started))
    }

    /// A write's transaction, or the operation its idempotency key started
    /// before (then nothing else is done).
    async fn open(
        &self,
        asker: &Asker<'_>,
        method: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Opened<'_>, ApiError> {
        let key = asker.key(method, idempotency_key)?;
        let mut tx = self.store.begin().await.map_err(failed)?;
        if let Some(started) = self.started_before(tx.as_mut(), key.as_ref()).await? {
            tx.commit().await.map_err(failed)?;
            return Ok(Opened::Repeat(started));
        }
        Ok(Opened::New(tx, key))
    }

    /// A new operation of `kind` about `image`, started now by `asker`.
    fn new_operation(
        &self,
        kind: OperationKind,
        image: (&str, &str),
        asker: &Asker<'_>,
    ) -> StoredOperation {
        let now = operation::now();
        let done_at = operation::later(&now, self.operation_time());
        StoredOperation::start(kind, image, asker.subject(), now, done_at)
    }

    /// Stores `started` (named by `key`) and commits the write.
    async fn commit_started(
        &self,
        mut tx: Box<dyn WriteTransaction + '_>,
        started: &StoredOperation,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), ApiError> {
        tx.put_operation(started, key).await.map_err(failed)?;
        tx.commit().await.map_err(failed)
    }

    /// The operation `key` started, in its current state, when the key is known.
    async fn started_before(
        &self,
        tx: &mut dyn WriteTransaction,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<Operation>, ApiError> {
        let Some(key) = key else {
            return Ok(None);
        };
        tx.lock(&format!("idempotency-key:{}:{}", key.subject, key.key))
            .await
            .map_err(failed)?;
        let horizon = self.key_horizon();
        let found = tx.operation_of_key(key, &horizon).await.map_err(failed)?;
        Ok(found.map(|started| started.operation))
    }

    async fn readable_operation(
        &self,
        caller: Option<&Caller>,
        id: &str,
        action: Action,
    ) -> Result<StoredOperation, ApiError> {
        let found = self
            .store
            .operation(id)
            .await
            .map_err(failed)?
            .ok_or_else(|| ApiError::NotFound(format!("Operation {id} not found")))?;
        self.may_on_stored(caller, action, &found).await?;
        Ok(found)
    }

    /// Whether `caller` may do `action` to the image of an operation.
    async fn may_on_stored(
        &self,
        caller: Option<&Caller>,
        action: Action,
        operation: &StoredOperation,
    ) -> Result<(), ApiError> {
        let folder = Some(operation.folder_id.as_str()).filter(|f| !f.is_empty());
        if operation.kind() == OperationKind::DeleteContainerImage {
            let service = Service::ContainerRegistry;
            return authorize::check_in(caller, action, service, folder, authorize::no_bindings)
                .await;
        }
        let bindings = || self.store.image_bindings(&operation.image_id);
        authorize::check_in(caller, action, Service::Compute, folder, bindings).await
    }

    /// The reply to a write: the operation as started, with a timer set to
    /// finish it.
    fn started(&self, started: StoredOperation) -> Operation {
        self.finish_later(started.id().to_owned(), self.operation_time());
        started.operation
    }

    fn finish_later(&self, id: String, after: Duration) {
        let this = self.this.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let Some(writes) = this.upgrade() else {
                return;
            };
            if let Err(err) = writes.finish(&id, None).await {
                tracing::warn!(operation_id = %id, error = %err, "finishing an operation failed; the next Get of it retries");
            }
        });
    }

    /// Finishes operation `id` (with `failure` instead of its own outcome, when
    /// given) in one transaction; a done operation is answered as it is.
    async fn finish(
        &self,
        id: &str,
        failure: Option<crate::proto::google::rpc::Status>,
    ) -> Result<StoredOperation, ApiError> {
        let mut tx = self.store.begin().await.map_err(failed)?;
        let mut running = tx
            .operation(id)
            .await
            .map_err(failed)?
            .ok_or_else(|| ApiError::NotFound(format!("Operation {id} not found")))?;
        if running.done() {
            tx.commit().await.map_err(failed)?;
            return Ok(running);
        }
        let failure = failure.or_else(|| running.failure.clone());
        let image_id = running.image_id.clone();
        let outcome = match (running.kind(), failure) {
            (OperationKind::CreateComputeImage, Some(failure)) => {
                delete_with_bindings(tx.as_mut(), &image_id).await?;
                Outcome::Error(failure)
            }
            (_, Some(failure)) => Outcome::Error(failure),
            (OperationKind::CreateComputeImage, None) => {
                let mut image = existing_image_by_id(tx.as_mut(), &image_id).await?;
                image.status = image::Status::Ready as i32;
                tx.put_compute_image(&image).await.map_err(failed)?;
                Outcome::Response(image_response(&image))
            }
            // Deleted since (a Delete may follow an Update at once): the
            // Update's result is gone with it.
            (OperationKind::UpdateComputeImage, None) => {
                match tx.compute_image(&image_id).await.map_err(failed)? {
                    Some(image) => Outcome::Response(image_response(&image)),
                    None => Outcome::Error(operation::error_status(
                        tonic::Code::NotFound,
                        format!("Image {image_id} was deleted before the update finished"),
                    )),
                }
            }
            (OperationKind::DeleteComputeImage, None) => {
                delete_with_bindings(tx.as_mut(), &image_id).await?;
                Outcome::Response(empty_response())
            }
            (OperationKind::DeleteContainerImage, None) => {
                tx.delete_container_image(&image_id).await.map_err(failed)?;
                Outcome::Response(empty_response())
            }
            // Applied when accepted; the effective deltas were kept then.
            (OperationKind::SetAccessBindings | OperationKind::UpdateAccessBindings, None) => {
                Outcome::Response(running.response.clone().unwrap_or_else(|| {
                    operation::pack(
                        "yandex.cloud.access.AccessBindingsOperationResult",
                        &AccessBindingsOperationResult::default(),
                    )
                }))
            }
        };
        running.finish(outcome, operation::now());
        tx.put_operation(&running, None).await.map_err(failed)?;
        tx.commit().await.map_err(failed)?;
        Ok(running)
    }
}

fn image_response(image: &compute::Image) -> prost_types::Any {
    operation::pack("yandex.cloud.compute.v1.Image", image)
}

fn empty_response() -> prost_types::Any {
    operation::pack("google.protobuf.Empty", &())
}

/// A store failure, logged (it is ours, not the caller's).
fn failed(err: RepositoryError) -> ApiError {
    tracing::warn!(error = %err, "write failed in the backend");
    err.into()
}

/// Deletes a compute image and its bindings, which name it and nothing else.
async fn delete_with_bindings(tx: &mut dyn WriteTransaction, id: &str) -> Result<(), ApiError> {
    tx.delete_compute_image(id).await.map_err(failed)?;
    tx.put_access_bindings(id, &[]).await.map_err(failed)
}

async fn existing_image(
    tx: &mut dyn WriteTransaction,
    id: &ImageId,
) -> Result<compute::Image, ApiError> {
    existing_image_by_id(tx, id.as_str()).await
}

async fn existing_image_by_id(
    tx: &mut dyn WriteTransaction,
    id: &str,
) -> Result<compute::Image, ApiError> {
    tx.compute_image(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| ApiError::image_not_found(id))
}

/// An image still being created or deleted can't be changed.
fn settled(image: &compute::Image) -> Result<(), ApiError> {
    let status = image::Status::try_from(image.status).unwrap_or_default();
    match status {
        image::Status::Creating | image::Status::Deleting => {
            Err(ApiError::FailedPrecondition(format!(
                "Image {} is {}: wait for its operation to finish",
                image.id,
                status.as_str_name()
            )))
        }
        _ => Ok(()),
    }
}

/// Names are unique in a folder (an empty name is no name).
async fn check_name_free(
    tx: &mut dyn WriteTransaction,
    folder: &str,
    name: &str,
    except: &str,
) -> Result<(), ApiError> {
    if name.is_empty() {
        return Ok(());
    }
    tx.lock(&format!("folder:{folder}")).await.map_err(failed)?;
    match tx
        .compute_image_named(folder, name, except)
        .await
        .map_err(failed)?
    {
        Some(other) => Err(ApiError::AlreadyExists(format!(
            "Image with name {name} already exists in folder {folder} (image {other})"
        ))),
        None => Ok(()),
    }
}

/// The new image of a Create: the request's fields, and what the source image
/// (if that is the source) passes on.
fn new_image(new: &NewImage, source: Option<&compute::Image>, now: Timestamp) -> compute::Image {
    let request = &new.request;
    let requested_os = request
        .os
        .clone()
        .filter(|os| os.r#type != os::Type::Unspecified as i32);
    let os = requested_os
        .or_else(|| source.and_then(|s| s.os.clone()))
        .unwrap_or(Os {
            r#type: os::Type::Linux as i32,
            ..Os::default()
        });
    let storage_size = source.map_or(EMULATED_STORAGE_SIZE, |s| s.storage_size);
    let min_disk_size = match request.min_disk_size {
        0 => source.map_or(storage_size.max(SMALLEST_DISK), |s| s.min_disk_size),
        size => size,
    };
    let mut product_ids = source.map(|s| s.product_ids.clone()).unwrap_or_default();
    for id in &request.product_ids {
        if !product_ids.contains(id) {
            product_ids.push(id.clone());
        }
    }
    compute::Image {
        id: operation::new_id(COMPUTE_PREFIX),
        folder_id: new.folder_id.as_str().to_owned(),
        created_at: Some(now),
        name: request.name.clone(),
        description: request.description.clone(),
        labels: request.labels.clone(),
        family: request.family.clone(),
        storage_size,
        min_disk_size,
        product_ids,
        status: image::Status::Creating as i32,
        os: Some(os),
        pooled: request.pooled,
        hardware_generation: request
            .hardware_generation
            .clone()
            .or_else(|| source.and_then(|s| s.hardware_generation.clone())),
        kms_key: None,
        size: source.map_or(storage_size, |s| s.size),
    }
}

/// How an import from `uri` fails inside its operation: the cloud takes only
/// http(s) links to an object.
fn creation_failure(source: &ImageSource) -> Option<crate::proto::google::rpc::Status> {
    let ImageSource::Uri(uri) = source else {
        return None;
    };
    let link = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"));
    match link {
        Some(rest) if rest.contains('/') && !rest.starts_with('/') => None,
        _ => Some(operation::error_status(
            tonic::Code::InvalidArgument,
            format!(
                "Cannot import the image from {uri:?}: the URI must be an http(s) link to an object"
            ),
        )),
    }
}

/// Sets what the update names; a cleared `min_disk_size` goes back to the
/// image's smallest (its storage size, at least 4 MiB).
fn apply_update(image: &mut compute::Image, update: ImageUpdate) {
    if let Some(name) = update.name {
        image.name = name;
    }
    if let Some(description) = update.description {
        image.description = description;
    }
    if let Some(size) = update.min_disk_size {
        image.min_disk_size = if size == 0 {
            image.storage_size.max(SMALLEST_DISK)
        } else {
            size
        };
    }
    if let Some(labels) = update.labels {
        image.labels = labels;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_must_link_to_an_object() {
        let uri = |u: &str| creation_failure(&ImageSource::Uri(u.into())).is_none();
        assert!(uri("https://storage.yandexcloud.net/bucket/disk.qcow2"));
        assert!(uri("http://127.0.0.1:9000/b/i.raw"));
        assert!(!uri("ftp://host/x"));
        assert!(!uri("https://"));
        assert!(!uri("not a link"));
        assert!(creation_failure(&ImageSource::Disk("d".into())).is_none());
    }

    #[test]
    fn an_image_from_an_image_inherits_its_system() {
        let source = compute::Image {
            id: "fd8src".into(),
            storage_size: 3 << 30,
            min_disk_size: 5 << 30,
            product_ids: vec!["f2eprod".into()],
            os: Some(Os {
                r#type: os::Type::Windows as i32,
                ..Os::default()
            }),
            ..Default::default()
        };
        let request = CreateImageRequest {
            folder_id: "b1g".into(),
            name: "copy".into(),
            product_ids: vec!["f2eown".into()],
            source: Some(compute::create_image_request::Source::ImageId(
                "fd8src".into(),
            )),
            ..Default::default()
        };
        let new = NewImage::parse(request).unwrap();
        let now = operation::now();
        let image = new_image(&new, Some(&source), now);
        assert_eq!(image.os.unwrap().r#type, os::Type::Windows as i32);
        assert_eq!(
            (image.storage_size, image.min_disk_size),
            (3 << 30, 5 << 30)
        );
        assert_eq!(image.product_ids, ["f2eprod", "f2eown"]);
        assert_eq!(image.status, image::Status::Creating as i32);
        assert!(image.id.starts_with("fd8") && image.id.len() == 20);
        let plain = new_image(
            &NewImage::parse(CreateImageRequest {
                folder_id: "b1g".into(),
                source: Some(compute::create_image_request::Source::DiskId("d".into())),
                ..Default::default()
            })
            .unwrap(),
            None,
            now,
        );
        assert_eq!(plain.os.unwrap().r#type, os::Type::Linux as i32);
        assert_eq!(plain.min_disk_size, 1 << 30);
    }

    #[test]
    fn an_update_resets_a_cleared_disk_size() {
        let mut image = compute::Image {
            storage_size: 2 << 30,
            min_disk_size: 8 << 30,
            name: "old".into(),
            ..Default::default()
        };
        apply_update(
            &mut image,
            ImageUpdate {
                image_id: ImageId::parse("image_id", "fd8x".into()).unwrap(),
                name: None,
                description: Some("d".into()),
                min_disk_size: Some(0),
                labels: None,
            },
        );
        assert_eq!(
            (image.name.as_str(), image.description.as_str()),
            ("old", "d")
        );
        assert_eq!(image.min_disk_size, 2 << 30);
    }
}
