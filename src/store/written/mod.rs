//! Writes over the embedded catalog: the images, operations and idempotency
//! keys the write API made, kept beside the immutable catalog index (which
//! stays as it was built) and, with `--data-dir`, on disk ([`durable`]).
//!
//! All of it is one immutable [`State`] of persistent maps behind an atomic
//! pointer: a read loads the pointer once and sees one consistent snapshot
//! without a lock; a write copies the state (O(log n) per change, the maps
//! share structure), changes the copy and publishes it when it commits.
//! Writers take turns on one mutex; readers never wait for it.
//!
//! Reads, over the catalog:
//! - Get: a written image (or its deletion) wins over the catalog's; with
//!   nothing written, one pointer load is all it adds.
//! - compute List and GetLatestByFamily of a folder that has writes: a small
//!   index of that folder alone (catalog images plus written ones), built on
//!   the first List after a write and kept until the next write to the
//!   folder; other folders are answered by the catalog index as before.
//! - container List: the catalog's pages, less the deleted images.

pub mod durable;

use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use bytes::Bytes;
use prost::Message;
use tokio::sync::{Mutex, OnceCell, OwnedMutexGuard};

use super::catalog::{Catalog, EncodedImages, ImageList};
use super::postgres::changes::Current;
use super::write::{BindingRepository, OperationPage, WriteRepository, WriteTransaction};
use super::{
    ComputeImageRepository, ContainerImageRepository, EncodedPage, ListError, MemoryRepository,
    RepositoryError,
};
use crate::domain::compute::{ComputeImageQuery, Family, ListComputeImages};
use crate::domain::container::ContainerImageQuery;
use crate::domain::operation::{IdempotencyKey, StoredOperation};
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::Timestamp;
use crate::proto::yandex::cloud::access::{AccessBinding, ListAccessBindingsResponse};
use crate::proto::{compute, container_registry};
use durable::{Change, DurableLog};

type Map<K, V> = imbl::HashMap<K, V>;
use crate::domain::encoded::{COMPUTE_NAME as NAME, compute_image_folder};
type Set<T> = imbl::HashSet<T>;

/// The key an idempotency record is found by, and when it was used.
#[derive(Clone)]
struct KeyUse {
    operation_id: Arc<str>,
    at: Timestamp,
}

/// Everything written, as of one commit.
#[derive(Clone, Default)]
pub struct State {
    /// Written compute images by id: the encoding, or `None` once deleted
    /// (hiding the catalog's image of that id).
    compute: Map<Arc<str>, Option<Bytes>>,
    /// The ids of `compute` by folder.
    compute_folders: Map<Arc<str>, Set<Arc<str>>>,
    /// The written images that have a name, by folder and name (names are
    /// unique in a folder), and the folder and name of each.
    names: Map<(Arc<str>, Arc<str>), Arc<str>>,
    name_of: Map<Arc<str>, (Arc<str>, Arc<str>)>,
    /// Per folder of `compute_folders`: its index, built when first listed.
    folder_views: Map<Arc<str>, Arc<OnceCell<Arc<MemoryRepository>>>>,
    container_deleted: Set<Arc<str>>,
    operations: Map<Arc<str>, Arc<StoredOperation>>,
    /// Per image, its operations' ids in the order they started.
    image_operations: Map<Arc<str>, imbl::Vector<Arc<str>>>,
    pending: Set<Arc<str>>,
    keys: Map<IdempotencyKey, KeyUse>,
    /// Per image, its access bindings as a `ListAccessBindingsResponse` encoding.
    bindings: Map<Arc<str>, Bytes>,
}

impl State {
    fn put_compute(&mut self, id: &str, folder: &str, encoded: Option<Bytes>) {
        let id: Arc<str> = id.into();
        let folder: Arc<str> = folder.into();
        if let Some(old) = self.name_of.remove(&id) {
            self.names.remove(&old);
        }
        let name = encoded
            .as_ref()
            .and_then(|e| crate::domain::encoded::encoded_string_field(e, NAME))
            .filter(|name| !name.is_empty());
        if let Some(name) = name {
            let key = (folder.clone(), Arc::<str>::from(name));
            self.names.insert(key.clone(), id.clone());
            self.name_of.insert(id.clone(), key);
        }
        self.compute.insert(id.clone(), encoded);
        self.compute_folders
            .entry(folder.clone())
            .or_default()
            .insert(id);
        self.folder_views.insert(folder, Arc::new(OnceCell::new()));
    }

    fn put_operation(&mut self, operation: StoredOperation) {
        let id: Arc<str> = operation.id().into();
        if !self.operations.contains_key(&id) {
            self.image_operations
                .entry(operation.image_id.as_str().into())
                .or_default()
                .push_back(id.clone());
        }
        if operation.done() {
            self.pending.remove(&id);
        } else {
            self.pending.insert(id.clone());
        }
        self.operations.insert(id, Arc::new(operation));
    }

    /// Applies a change as it was logged (recovery replays the log).
    fn apply(&mut self, change: &Change) -> Result<(), RepositoryError> {
        match change {
            Change::ComputeImage { id, folder, image } => {
                self.put_compute(id, folder, image.clone());
            }
            Change::ContainerDeleted { id } => {
                self.container_deleted.insert(id.as_str().into());
            }
            Change::Operation { encoded } => {
                let operation = StoredOperation::decode(encoded.as_ref()).map_err(|err| {
                    RepositoryError::Internal(format!("a stored operation does not decode: {err}"))
                })?;
                self.put_operation(operation);
            }
            Change::Key {
                key,
                operation_id,
                at,
            } => {
                self.keys.insert(
                    key.clone(),
                    KeyUse {
                        operation_id: operation_id.as_str().into(),
                        at: *at,
                    },
                );
            }
            Change::KeyExpired { key } => {
                self.keys.remove(key);
            }
            Change::Bindings { image_id, encoded } if encoded.is_empty() => {
                self.bindings.remove(image_id.as_str());
            }
            Change::Bindings { image_id, encoded } => {
                self.bindings
                    .insert(image_id.as_str().into(), encoded.clone());
            }
        }
        Ok(())
    }
}

/// The catalog with the writes over it; `B` serves the catalog (swapped on reload).
pub struct WrittenCatalog<B> {
    catalog: Arc<B>,
    /// Shared with the commits in flight, which publish to it (see `commit`).
    state: Arc<ArcSwap<State>>,
    writer: Arc<Mutex<()>>,
    log: Option<DurableLog>,
}

impl<B> WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    /// Writes kept in memory only.
    pub fn in_memory(catalog: Arc<B>) -> Self {
        Self {
            catalog,
            state: Arc::new(ArcSwap::from_pointee(State::default())),
            writer: Arc::new(Mutex::new(())),
            log: None,
        }
    }

    /// Writes kept in `log` too, starting from what it holds.
    pub fn durable(catalog: Arc<B>, log: DurableLog) -> Result<Self, RepositoryError> {
        let mut state = State::default();
        for change in log.replay()? {
            state.apply(&change)?;
        }
        Ok(Self {
            catalog,
            state: Arc::new(ArcSwap::from_pointee(state)),
            writer: Arc::new(Mutex::new(())),
            log: Some(log),
        })
    }

    /// How many images were written (created or changed) and deleted.
    pub fn written_images(&self) -> usize {
        self.state.load().compute.len()
    }

    /// The index of a folder with writes, built once per write to it.
    async fn folder_view(
        &self,
        state: &State,
        folder: &str,
    ) -> Result<Arc<MemoryRepository>, RepositoryError> {
        let Some(cell) = state.folder_views.get(folder) else {
            return Err(RepositoryError::Internal(format!(
                "folder {folder} has writes but no view"
            )));
        };
        cell.get_or_try_init(|| self.build_folder_view(state, folder))
            .await
            .cloned()
    }

    async fn build_folder_view(
        &self,
        state: &State,
        folder: &str,
    ) -> Result<Arc<MemoryRepository>, RepositoryError> {
        let mut images = EncodedImages::default();
        let mut list = ListComputeImages::parse(compute::ListImagesRequest {
            folder_id: folder.to_owned(),
            page_size: 1000,
            ..Default::default()
        })
        .map_err(|err| RepositoryError::Internal(format!("folder {folder}: {err}")))?;
        loop {
            let page = self
                .catalog
                .list_compute_images_encoded(&list.query, &list.page)
                .await
                .map_err(|err| match err {
                    ListError::Backend(err) => err,
                    other => RepositoryError::Internal(other.to_string()),
                })?;
            for encoded in &page.items {
                let id = image_id_of(encoded);
                if !state.compute.contains_key(id.as_str()) {
                    images.push_encoded(&id, encoded);
                }
            }
            match page.continues_after {
                Some(last) => {
                    list.page.after = Some(
                        ImageId::parse("image_id", last)
                            .map_err(|err| RepositoryError::Internal(err.to_string()))?,
                    );
                }
                None => break,
            }
        }
        if let Some(ids) = state.compute_folders.get(folder) {
            for id in ids {
                if let Some(Some(encoded)) = state.compute.get(id) {
                    images.push_encoded(id, encoded);
                }
            }
        }
        let compute_images = ImageList::from_chunks(vec![images]).map_err(|dup| {
            RepositoryError::Internal(format!("image {} is in the folder twice", dup.id))
        })?;
        Ok(Arc::new(MemoryRepository::new(Catalog {
            compute_images,
            ..Catalog::default()
        })))
    }
}

impl<B> WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    /// Takes in changes another writer made, as they now stand (a cached
    /// replica following the database): published together, like a commit.
    pub async fn apply_current(&self, changes: Vec<Current>) -> Result<(), RepositoryError> {
        let _turn = self.writer.lock().await;
        let mut draft = State::clone(&self.state.load());
        for change in changes {
            match change {
                Current::ComputeImage {
                    id,
                    image: Some(encoded),
                } => {
                    let folder = compute_image_folder(&encoded).unwrap_or_default();
                    draft.put_compute(&id, &folder, Some(encoded));
                }
                Current::ComputeImage { id, image: None } => {
                    // Its folder, for the folder's index: from what is served now.
                    let served = match draft.compute.get(id.as_str()) {
                        Some(written) => written.clone(),
                        None => match ImageId::parse("image_id", id.clone()) {
                            Ok(image_id) => {
                                self.catalog.get_compute_image_encoded(&image_id).await?
                            }
                            Err(_) => None,
                        },
                    };
                    if let Some(folder) = served.as_deref().and_then(compute_image_folder) {
                        draft.put_compute(&id, &folder, None);
                    }
                }
                Current::ContainerImage { id, exists: false } => {
                    draft.container_deleted.insert(id.as_str().into());
                }
                Current::ContainerImage { id, exists: true } => {
                    draft.container_deleted.remove(id.as_str());
                }
                Current::Bindings { image_id, encoded } => {
                    let encoded = encoded.unwrap_or_default();
                    draft.apply(&Change::Bindings { image_id, encoded })?;
                }
            }
        }
        self.state.store(Arc::new(draft));
        Ok(())
    }
}

/// The id (field 1) of an encoded image of either API.
fn image_id_of(encoded: &[u8]) -> String {
    crate::domain::encoded::encoded_string_field(encoded, 1).unwrap_or_default()
}

#[async_trait]
impl<B> ComputeImageRepository for WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        {
            let state = self.state.load();
            if !state.compute.is_empty() {
                if let Some(written) = state.compute.get(id.as_str()) {
                    return Ok(written.clone());
                }
            }
        }
        self.catalog.get_compute_image_encoded(id).await
    }

    async fn list_compute_images_encoded(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        let state = self.state.load_full();
        if !state.compute_folders.contains_key(query.folder_id.as_str()) {
            return self.catalog.list_compute_images_encoded(query, page).await;
        }
        let view = self.folder_view(&state, query.folder_id.as_str()).await?;
        view.list_compute_images_encoded(query, page).await
    }

    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        let state = self.state.load_full();
        if !state.compute_folders.contains_key(folder.as_str()) {
            return self
                .catalog
                .latest_compute_image_by_family(folder, family)
                .await;
        }
        let view = self.folder_view(&state, folder.as_str()).await?;
        view.latest_compute_image_by_family(folder, family).await
    }
}

#[async_trait]
impl<B> ContainerImageRepository for WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        {
            let state = self.state.load();
            if state.container_deleted.contains(id.as_str()) {
                return Ok(None);
            }
        }
        self.catalog.get_container_image_encoded(id).await
    }

    async fn list_container_images_encoded(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        let state = self.state.load_full();
        if state.container_deleted.is_empty() {
            return self
                .catalog
                .list_container_images_encoded(query, page)
                .await;
        }
        // The catalog's pages less the deleted images, read on until the page
        // is full and one more survivor shows that another page follows.
        let size = page.size.get();
        let mut items = Vec::with_capacity(size);
        let mut more = false;
        let mut from = page.clone();
        loop {
            let found = self
                .catalog
                .list_container_images_encoded(query, &from)
                .await?;
            for encoded in found.items {
                if state
                    .container_deleted
                    .contains(image_id_of(&encoded).as_str())
                {
                    continue;
                }
                if items.len() == size {
                    more = true;
                    break;
                }
                items.push(encoded);
            }
            match found.continues_after {
                Some(last) if !more => {
                    from.after = Some(
                        ImageId::parse("image_id", last)
                            .map_err(|err| RepositoryError::Internal(err.to_string()))?,
                    );
                }
                _ => break,
            }
        }
        let continues_after = if more {
            items.last().map(|last| image_id_of(last))
        } else {
            None
        };
        Ok(EncodedPage {
            items,
            continues_after,
        })
    }

    async fn registry_folder(&self, registry_id: &str) -> Result<Option<String>, RepositoryError> {
        self.catalog.registry_folder(registry_id).await
    }
}

/// A write in progress: a copy of the state, changed, and the changes to log.
struct Transaction<'a, B> {
    written: &'a WrittenCatalog<B>,
    draft: State,
    changes: Vec<Change>,
    turn: OwnedMutexGuard<()>,
}

impl<B> Transaction<'_, B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    async fn current_compute(&self, id: &str) -> Result<Option<Bytes>, RepositoryError> {
        if let Some(written) = self.draft.compute.get(id) {
            return Ok(written.clone());
        }
        let Ok(id) = ImageId::parse("image_id", id.to_owned()) else {
            return Ok(None);
        };
        self.written.catalog.get_compute_image_encoded(&id).await
    }
}

/// The bindings of an image as `State::bindings` keeps them.
fn bindings_of(encoded: &[u8]) -> Result<Vec<AccessBinding>, RepositoryError> {
    Ok(decode::<ListAccessBindingsResponse>(encoded)?.access_bindings)
}

fn decode<T: Message + Default>(encoded: &[u8]) -> Result<T, RepositoryError> {
    T::decode(encoded)
        .map_err(|err| RepositoryError::Internal(format!("a stored image does not decode: {err}")))
}

#[async_trait]
impl<B> WriteTransaction for Transaction<'_, B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    /// Writers already take turns: every scope is held.
    async fn lock(&mut self, _scope: &str) -> Result<(), RepositoryError> {
        Ok(())
    }

    async fn compute_image(&mut self, id: &str) -> Result<Option<compute::Image>, RepositoryError> {
        self.current_compute(id)
            .await?
            .map(|encoded| decode(&encoded))
            .transpose()
    }

    async fn container_image(
        &mut self,
        id: &str,
    ) -> Result<Option<container_registry::Image>, RepositoryError> {
        if self.draft.container_deleted.contains(id) {
            return Ok(None);
        }
        let Ok(id) = ImageId::parse("image_id", id.to_owned()) else {
            return Ok(None);
        };
        let found = self
            .written
            .catalog
            .get_container_image_encoded(&id)
            .await?;
        found.map(|encoded| decode(&encoded)).transpose()
    }

    async fn compute_image_named(
        &mut self,
        folder: &str,
        name: &str,
        except: &str,
    ) -> Result<Option<String>, RepositoryError> {
        let key = (Arc::<str>::from(folder), Arc::<str>::from(name));
        if let Some(id) = self.draft.names.get(&key) {
            if id.as_ref() != except {
                return Ok(Some(id.to_string()));
            }
        }
        // A catalog image of that name counts unless a write replaced it.
        let written = &self.draft.compute;
        let catalog = self.written.catalog.as_ref();
        Ok(named_in(catalog, folder, name, |id| {
            id != except && !written.contains_key(id)
        })
        .await)
    }

    async fn put_compute_image(&mut self, image: &compute::Image) -> Result<(), RepositoryError> {
        let encoded = Bytes::from(image.encode_to_vec());
        self.draft
            .put_compute(&image.id, &image.folder_id, Some(encoded.clone()));
        self.changes.push(Change::ComputeImage {
            id: image.id.clone(),
            folder: image.folder_id.clone(),
            image: Some(encoded),
        });
        Ok(())
    }

    async fn delete_compute_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        let Some(image) = self.compute_image(id).await? else {
            return Ok(());
        };
        self.draft.put_compute(id, &image.folder_id, None);
        self.changes.push(Change::ComputeImage {
            id: id.to_owned(),
            folder: image.folder_id,
            image: None,
        });
        Ok(())
    }

    async fn delete_container_image(&mut self, id: &str) -> Result<(), RepositoryError> {
        self.draft.container_deleted.insert(id.into());
        self.changes
            .push(Change::ContainerDeleted { id: id.to_owned() });
        Ok(())
    }

    async fn operation_of_key(
        &mut self,
        key: &IdempotencyKey,
        since: &Timestamp,
    ) -> Result<Option<StoredOperation>, RepositoryError> {
        let Some(used) = self.draft.keys.get(key) else {
            return Ok(None);
        };
        if (used.at.seconds, used.at.nanos) < (since.seconds, since.nanos) {
            return Ok(None);
        }
        Ok(self
            .draft
            .operations
            .get(&used.operation_id)
            .map(|op| StoredOperation::clone(op)))
    }

    async fn operation(&mut self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        Ok(self
            .draft
            .operations
            .get(id)
            .map(|op| StoredOperation::clone(op)))
    }

    async fn put_operation(
        &mut self,
        operation: &StoredOperation,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), RepositoryError> {
        self.changes.push(Change::Operation {
            encoded: Bytes::from(operation.encode_to_vec()),
        });
        if let Some(key) = key {
            let at = operation.operation.created_at.unwrap_or_default();
            let change = Change::Key {
                key: key.clone(),
                operation_id: operation.id().to_owned(),
                at,
            };
            self.draft.apply(&change)?;
            self.changes.push(change);
        }
        self.draft.put_operation(operation.clone());
        Ok(())
    }

    async fn access_bindings(
        &mut self,
        image_id: &str,
    ) -> Result<Vec<AccessBinding>, RepositoryError> {
        match self.draft.bindings.get(image_id) {
            Some(encoded) => bindings_of(encoded),
            None => Ok(Vec::new()),
        }
    }

    async fn put_access_bindings(
        &mut self,
        image_id: &str,
        bindings: &[AccessBinding],
    ) -> Result<(), RepositoryError> {
        let encoded = Bytes::from(
            ListAccessBindingsResponse {
                access_bindings: bindings.to_vec(),
                next_page_token: String::new(),
            }
            .encode_to_vec(),
        );
        let change = Change::Bindings {
            image_id: image_id.to_owned(),
            encoded,
        };
        self.draft.apply(&change)?;
        self.changes.push(change);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), RepositoryError> {
        let this = *self;
        if this.changes.is_empty() {
            return Ok(());
        }
        let Some(log) = this.written.log.clone() else {
            this.written.state.store(Arc::new(this.draft));
            return Ok(());
        };
        // Logged and published in a task of its own, holding the writers'
        // turn: a caller that stops waiting (its deadline passed, it hung up)
        // must not leave on disk a write that memory never served, nor let
        // the next writer start from a state the log has moved past.
        let state = this.written.state.clone();
        let (draft, changes, turn) = (this.draft, this.changes, this.turn);
        tokio::spawn(async move {
            let _turn = turn;
            log.append(changes).await?;
            state.store(Arc::new(draft));
            Ok(())
        })
        .await
        .map_err(|err| RepositoryError::Internal(format!("the commit task failed: {err}")))?
    }
}

/// The id of an image named `name` in `folder` of `images` that `counts`.
async fn named_in<R: ComputeImageRepository + ?Sized>(
    images: &R,
    folder: &str,
    name: &str,
    counts: impl Fn(&str) -> bool,
) -> Option<String> {
    // Names keep a pattern without quotes, so the filter text is safe.
    let list = ListComputeImages::parse(compute::ListImagesRequest {
        folder_id: folder.to_owned(),
        filter: format!("name = \"{name}\""),
        page_size: 1000,
        ..Default::default()
    })
    .ok()?;
    let page = images
        .list_compute_images_encoded(&list.query, &list.page)
        .await
        .ok()?;
    page.items
        .iter()
        .map(|encoded| image_id_of(encoded))
        .find(|id| counts(id))
}

#[async_trait]
impl<B> BindingRepository for WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    async fn image_bindings(&self, image_id: &str) -> Result<Vec<AccessBinding>, RepositoryError> {
        match self.state.load().bindings.get(image_id) {
            Some(encoded) => bindings_of(encoded),
            None => Ok(Vec::new()),
        }
    }

    /// Goes through every image that has bindings (they are few) for the
    /// ones in `folder`.
    async fn folder_bindings(
        &self,
        folder: &str,
    ) -> Result<Vec<(String, Vec<AccessBinding>)>, RepositoryError> {
        let state = self.state.load_full();
        let mut found = Vec::new();
        for (id, encoded) in &state.bindings {
            let Ok(image_id) = ImageId::parse("image_id", id.to_string()) else {
                continue;
            };
            let Some(image) = self.get_compute_image_encoded(&image_id).await? else {
                continue;
            };
            if compute_image_folder(&image).as_deref() == Some(folder) {
                found.push((id.to_string(), bindings_of(encoded)?));
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl<B> WriteRepository for WrittenCatalog<B>
where
    B: ComputeImageRepository + ContainerImageRepository,
{
    async fn begin(&self) -> Result<Box<dyn WriteTransaction + '_>, RepositoryError> {
        let turn = self.writer.clone().lock_owned().await;
        Ok(Box::new(Transaction {
            written: self,
            draft: State::clone(&self.state.load()),
            changes: Vec::new(),
            turn,
        }))
    }

    async fn operation(&self, id: &str) -> Result<Option<StoredOperation>, RepositoryError> {
        Ok(self
            .state
            .load()
            .operations
            .get(id)
            .map(|op| StoredOperation::clone(op)))
    }

    async fn image_operations(
        &self,
        image_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<OperationPage, RepositoryError> {
        let state = self.state.load();
        let Some(ids) = state.image_operations.get(image_id) else {
            return Ok(OperationPage::default());
        };
        let newest_first = ids.iter().rev();
        let skip = match after {
            None => 0,
            Some(after) => match ids.iter().rev().position(|id| id.as_ref() == after) {
                Some(at) => at + 1,
                None => return Ok(OperationPage::default()),
            },
        };
        let found: Vec<StoredOperation> = newest_first
            .skip(skip)
            .take(limit + 1)
            .filter_map(|id| state.operations.get(id))
            .map(|op| StoredOperation::clone(op))
            .collect();
        Ok(OperationPage::of(found, limit))
    }

    async fn pending_operations(&self) -> Result<Vec<String>, RepositoryError> {
        Ok(self
            .state
            .load()
            .pending
            .iter()
            .map(|id| id.to_string())
            .collect())
    }

    async fn expire_keys(&self, before: &Timestamp) -> Result<u64, RepositoryError> {
        let _turn = self.writer.lock().await;
        let mut draft = State::clone(&self.state.load());
        let expired: Vec<Change> = draft
            .keys
            .iter()
            .filter(|(_, used)| (used.at.seconds, used.at.nanos) < (before.seconds, before.nanos))
            .map(|(key, _)| Change::KeyExpired { key: key.clone() })
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        for change in &expired {
            draft.apply(change)?;
        }
        let count = expired.len() as u64;
        if let Some(log) = &self.log {
            log.append(expired).await?;
        }
        self.state.store(Arc::new(draft));
        Ok(count)
    }
}
