//! The embedded backend: the whole catalog kept encoded in its
//! [`ImageList`]s, with compact indexes over it, built once and read without
//! locks.
//!
//! An image is known to the indexes by its position in its list (a `u32`).
//! Beside the list, a table per API holds only what List sorts and filters on,
//! one column per field: names (and digests) back to back in one string,
//! folders and families as numbers into a table of the distinct ones, status,
//! and `created_at` as seconds and nanos. A million compute images cost their
//! protobuf size plus about 80 bytes each in all; a decoded `Image` per entry
//! cost about seven times the protobuf size. The gRPC Get and List send the
//! stored bytes as they are (`*_encoded`: slices of the list's buffer); the
//! decoding methods decode only the images they return.
//!
//! Indexes, all of positions:
//! - compute: per folder, the folder's images sorted by each field List orders
//!   by (`id`, `name`, `created_at`), each with id as the tie-break, and grouped
//!   by family and by status; per folder and family, the READY images sorted by
//!   (`created_at`, id) for GetLatestByFamily;
//! - container registry: per repository, per registry and per folder (through
//!   the catalog's registries), the images sorted by `id`, `name`, `digest` and
//!   `created_at`, each with id as the tie-break.
//!
//! A List page binary-searches the position after the page token's image in the
//! vector of its first sort field and walks from there, so its cost doesn't grow
//! with the page number. Descending orders walk the vector backwards, a run of
//! equal keys at a time, each run forwards: ties stay in ascending id order.
//!
//! A walk tests the filter on each image it passes, so a filter that matches
//! few images of a big folder would walk far for a page. When the filter wants
//! certain ids, names, or (compute) families or statuses, the images holding
//! them are found in the indexes instead and, if they are few enough, sorted
//! for the page.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use super::{Api, Compute, Container, EncodedPage, ListError, RepositoryError, split_extra};
use crate::domain::compute::{
    ComputeCondition, ComputeImageFilter, ComputeImageQuery, ComputeSortField, Family,
};
use crate::domain::container::{
    ContainerImageFilter, ContainerImageQuery, ContainerScope, ContainerSortField, registry_of,
};
use crate::domain::order::Direction;
use crate::domain::page::PageRequest;
use crate::domain::{FolderId, ImageId};
use crate::proto::compute::image::Status;
use crate::proto::{compute, container_registry};
use crate::store::catalog::{Catalog, ImageList};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// An image's position in its [`ImageList`].
type Row = u32;
/// Per family: the READY images of one folder by (`created_at`, id).
type Families = Map<Box<str>, Box<[Row]>>;

/// An immutable snapshot of a validated catalog, indexed for every query.
pub struct MemoryRepository {
    compute: ComputeRows,
    container: ContainerRows,
    compute_folders: Map<Box<str>, ComputeFolder>,
    /// Folder, then family: the READY images by (`created_at`, id).
    compute_families: Map<Box<str>, Families>,
    container_repositories: Map<Box<str>, Sorted>,
    container_registries: Map<Box<str>, Sorted>,
    container_folders: Map<Box<str>, Sorted>,
    /// Registry id to folder id (container List by folder, and authorization).
    registry_folders: Map<Box<str>, Box<str>>,
}

impl MemoryRepository {
    /// Serves a catalog. Ids are already known to be unique: [`Catalog`] checked them.
    pub fn new(catalog: Catalog) -> Self {
        let compute = ComputeRows::new(catalog.compute_images);
        let container = ContainerRows::new(catalog.container_images);

        // Grouped by the interned numbers of folders and families: no string
        // is hashed or allocated per image.
        let mut folders: Vec<Vec<Row>> = vec![Vec::new(); compute.interned.strings.len()];
        let mut families: Map<(u32, u32), Vec<Row>> = Map::default();
        for row in compute.images.rows() {
            let folder = compute.folders[row as usize];
            if compute.interned.get(folder).is_empty() {
                continue;
            }
            folders[folder as usize].push(row);
            let family = compute.families[row as usize];
            if !compute.interned.get(family).is_empty()
                && compute.status(row) == Status::Ready as i32
            {
                families.entry((folder, family)).or_default().push(row);
            }
        }
        let mut compute_families: Map<Box<str>, Families> = Map::default();
        for ((folder, family), rows) in families {
            let rows = Sorted::sort(&compute, rows, Key::CreatedAt);
            compute_families
                .entry(compute.interned.get(folder).into())
                .or_default()
                .insert(compute.interned.get(family).into(), rows);
        }
        let folders: Vec<(u32, Vec<Row>)> = (0..)
            .zip(folders)
            .filter(|(_, rows)| !rows.is_empty())
            .collect();
        // Folders are independent: sorted on every core.
        let compute_folders = in_parallel(folders, |(folder, rows)| {
            (
                Box::<str>::from(compute.interned.get(folder)),
                ComputeFolder::new(&compute, rows),
            )
        })
        .into_iter()
        .collect();

        let registry_folders: Map<Box<str>, Box<str>> = catalog
            .container_registries
            .iter()
            .map(|r| (r.id.as_str().into(), r.folder_id.as_str().into()))
            .collect();
        let mut repositories: Map<Box<str>, Vec<Row>> = Map::default();
        let mut registries: Map<Box<str>, Vec<Row>> = Map::default();
        let mut container_folders: Map<Box<str>, Vec<Row>> = Map::default();
        for row in container.images.rows() {
            let name = container.name(row);
            if name.is_empty() {
                continue;
            }
            repositories.entry(name.into()).or_default().push(row);
            let Some(registry) = registry_of(name) else {
                continue;
            };
            registries.entry(registry.into()).or_default().push(row);
            if let Some(folder) = registry_folders.get(registry) {
                container_folders
                    .entry(folder.clone())
                    .or_default()
                    .push(row);
            }
        }
        let container_repositories = sorted_groups(&container, repositories);
        let container_registries = sorted_groups(&container, registries);
        let container_folders = sorted_groups(&container, container_folders);

        Self {
            compute,
            container,
            compute_folders,
            compute_families,
            container_repositories,
            container_registries,
            container_folders,
            registry_folders,
        }
    }

    pub fn compute_len(&self) -> usize {
        self.compute.images.list.len()
    }

    pub fn container_len(&self) -> usize {
        self.container.images.list.len()
    }
}

/// Strings back to back in one buffer, found by number: a few bytes of
/// overhead each instead of a heap allocation each.
#[derive(Default)]
struct Strings {
    text: String,
    ends: Vec<u32>,
}

impl Strings {
    fn push(&mut self, value: &str) {
        self.text.push_str(value);
        // The catalog's encoded images are in one buffer that a u32 indexes (see
        // ImageList); their names, a part of them, fit too.
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    fn get(&self, number: Row) -> &str {
        let number = number as usize;
        let start = if number == 0 {
            0
        } else {
            self.ends[number - 1] as usize
        };
        self.text
            .get(start..self.ends[number] as usize)
            .unwrap_or_default()
    }

    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Distinct strings (folders, families), each stored once and named by number.
#[derive(Default)]
struct Interned {
    strings: Vec<Box<str>>,
    numbers: Map<Box<str>, u32>,
}

impl Interned {
    fn number(&mut self, value: &str) -> u32 {
        if let Some(&number) = self.numbers.get(value) {
            return number;
        }
        let number = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.push(value.into());
        self.numbers.insert(value.into(), number);
        number
    }

    fn get(&self, number: u32) -> &str {
        self.strings.get(number as usize).map_or("", |s| s)
    }
}

/// The fields of a compute image the indexes use: decoding only these skips
/// the allocations of the rest (labels, description, os, ...).
#[derive(Clone, PartialEq, Message)]
struct ComputeKeys {
    #[prost(string, tag = "2")]
    folder_id: String,
    #[prost(message, optional, tag = "3")]
    created_at: Option<crate::proto::Timestamp>,
    #[prost(string, tag = "4")]
    name: String,
    #[prost(string, tag = "7")]
    family: String,
    #[prost(int32, tag = "11")]
    status: i32,
}

/// The fields of a container image the indexes use.
#[derive(Clone, PartialEq, Message)]
struct ContainerKeys {
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    digest: String,
    #[prost(message, optional, tag = "8")]
    created_at: Option<crate::proto::Timestamp>,
}

/// `created_at` as a sortable pair; an image without one sorts first.
fn timestamp_key(timestamp: Option<&crate::proto::Timestamp>) -> (i64, i32) {
    timestamp.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

/// The fields of an image the indexes use, decoded without the rest.
trait Keys: Message + Default {
    fn name(&self) -> &str;
    fn created_at(&self) -> Option<&crate::proto::Timestamp>;
}

impl Keys for ComputeKeys {
    fn name(&self) -> &str {
        &self.name
    }

    fn created_at(&self) -> Option<&crate::proto::Timestamp> {
        self.created_at.as_ref()
    }
}

impl Keys for ContainerKeys {
    fn name(&self) -> &str {
        &self.name
    }

    fn created_at(&self) -> Option<&crate::proto::Timestamp> {
        self.created_at.as_ref()
    }
}

/// What both APIs' tables hold: the images and, by position, their names and
/// `created_at`.
struct Images<T> {
    list: ImageList<T>,
    names: Strings,
    created: Vec<(i64, i32)>,
}

impl<T: Message + Default> Images<T> {
    /// Indexes `list`, handing each image's keys `K` to `each` for the API's
    /// own columns.
    fn new<K: Keys>(list: ImageList<T>, mut each: impl FnMut(K)) -> Self {
        let len = list.len();
        let mut images = Self {
            list,
            names: Strings::default(),
            created: Vec::with_capacity(len),
        };
        images.names.ends.reserve_exact(len);
        for position in 0..len {
            // The list holds only images it encoded itself; should one not
            // decode, it is indexed with empty keys rather than refused here.
            let keys = K::decode(images.list.encoded_at(position)).unwrap_or_default();
            images.names.push(keys.name());
            images.created.push(timestamp_key(keys.created_at()));
            each(keys);
        }
        images.names.shrink();
        images
    }

    fn rows(&self) -> impl Iterator<Item = Row> + use<T> {
        0..row_count(self.list.len())
    }

    /// The value of a key every image has (digest is the container API's own).
    fn value(&self, row: Row, key: Key) -> KeyValue<'_> {
        match key {
            Key::Id => KeyValue::Text(self.list.id_at(row as usize)),
            Key::Name => KeyValue::Text(self.names.get(row)),
            Key::CreatedAt => KeyValue::Time(self.created[row as usize]),
            Key::Digest => KeyValue::None,
        }
    }
}

/// The compute images and, by position, what List sorts and filters on.
struct ComputeRows {
    images: Images<compute::Image>,
    folders: Vec<u32>,
    families: Vec<u32>,
    /// Folders and families.
    interned: Interned,
    statuses: Vec<i32>,
}

impl ComputeRows {
    fn new(list: ImageList<compute::Image>) -> Self {
        let len = list.len();
        let mut folders = Vec::with_capacity(len);
        let mut families = Vec::with_capacity(len);
        let mut interned = Interned::default();
        let mut statuses = Vec::with_capacity(len);
        let images = Images::new(list, |keys: ComputeKeys| {
            folders.push(interned.number(&keys.folder_id));
            families.push(interned.number(&keys.family));
            statuses.push(keys.status);
        });
        Self {
            images,
            folders,
            families,
            interned,
            statuses,
        }
    }

    fn folder(&self, row: Row) -> &str {
        self.interned.get(self.folders[row as usize])
    }

    fn family(&self, row: Row) -> &str {
        self.interned.get(self.families[row as usize])
    }

    fn status(&self, row: Row) -> i32 {
        self.statuses[row as usize]
    }
}

/// The container images and, by position, what List sorts and filters on.
struct ContainerRows {
    images: Images<container_registry::Image>,
    digests: Strings,
}

impl ContainerRows {
    fn new(list: ImageList<container_registry::Image>) -> Self {
        let mut digests = Strings::default();
        let images = Images::new(list, |keys: ContainerKeys| digests.push(&keys.digest));
        digests.shrink();
        Self { images, digests }
    }
}

/// Positions fit a u32: [`ImageList`] numbers its images so.
fn row_count(len: usize) -> Row {
    Row::try_from(len).unwrap_or(Row::MAX)
}

/// One compute folder's indexes.
struct ComputeFolder {
    sorted: Sorted,
    /// By family (`""` for none), every status, in id order.
    families: Map<Box<str>, Box<[Row]>>,
    /// By status number, in id order.
    statuses: Map<i32, Box<[Row]>>,
}

impl ComputeFolder {
    fn new(table: &ComputeRows, rows: Vec<Row>) -> Self {
        let sorted = Sorted::new(table, rows);
        // Grouped from the id view, so each group is in id order already.
        let mut families: Map<u32, Vec<Row>> = Map::default();
        let mut statuses: Map<i32, Vec<Row>> = Map::default();
        for &row in sorted.view(Key::Id) {
            families
                .entry(table.families[row as usize])
                .or_default()
                .push(row);
            statuses.entry(table.status(row)).or_default().push(row);
        }
        Self {
            sorted,
            families: families
                .into_iter()
                .map(|(family, rows)| (table.interned.get(family).into(), rows.into_boxed_slice()))
                .collect(),
            statuses: statuses
                .into_iter()
                .map(|(status, rows)| (status, rows.into_boxed_slice()))
                .collect(),
        }
    }
}

fn sorted_groups<R: Rows + Sync>(
    table: &R,
    groups: Map<Box<str>, Vec<Row>>,
) -> Map<Box<str>, Sorted> {
    in_parallel(groups.into_iter().collect(), |(name, rows)| {
        (name, Sorted::new(table, rows))
    })
    .into_iter()
    .collect()
}

/// `f` of every item, on every core (in no particular order): building the
/// indexes of a million images is most of a second of sorting.
fn in_parallel<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let mut shares: Vec<Vec<T>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % threads].push(item);
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(|| share.into_iter().map(&f).collect::<Vec<U>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The image a page token continues after: it must still exist.
fn cursor<T: Message + Default>(
    list: &ImageList<T>,
    after: Option<&ImageId>,
) -> Result<Option<Row>, ListError> {
    match after {
        None => Ok(None),
        Some(id) => list
            .position(id.as_str())
            .and_then(|position| Row::try_from(position).ok())
            .map(Some)
            .ok_or_else(|| ListError::CursorNotFound(id.clone())),
    }
}

/// The stored encodings of the images of a page of positions: slices of the
/// list's buffer, nothing decoded or copied.
fn encoded_page<T: Message + Default>(list: &ImageList<T>, rows: PageRows) -> EncodedPage {
    let continues_after = match rows.rows.last() {
        Some(&last) if rows.more => Some(list.id_at(last as usize).to_owned()),
        _ => None,
    };
    EncodedPage {
        items: rows
            .rows
            .iter()
            .map(|&row| list.encoded_bytes_at(row as usize))
            .collect(),
        continues_after,
    }
}

fn decode_row<T: Message + Default>(list: &ImageList<T>, row: Row) -> Result<T, RepositoryError> {
    list.decode_at(row as usize).map_err(|err| {
        RepositoryError::Internal(format!(
            "stored image {} does not decode: {err}",
            list.id_at(row as usize)
        ))
    })
}

/// Where an API's images are kept and how its List pages are found.
trait Stored: Api {
    fn list(repository: &MemoryRepository) -> &ImageList<Self::Image>;
    fn page(
        repository: &MemoryRepository,
        query: &Self::Query,
        page: &PageRequest,
    ) -> Result<PageRows, ListError>;
}

impl Stored for Compute {
    fn list(repository: &MemoryRepository) -> &ImageList<compute::Image> {
        &repository.compute.images.list
    }

    fn page(
        repository: &MemoryRepository,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<PageRows, ListError> {
        repository.compute_page(query, page)
    }
}

impl Stored for Container {
    fn list(repository: &MemoryRepository) -> &ImageList<container_registry::Image> {
        &repository.container.images.list
    }

    fn page(
        repository: &MemoryRepository,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<PageRows, ListError> {
        repository.container_page(query, page)
    }
}

impl_repositories!(MemoryRepository);

// Async only to fit `impl_repositories`: nothing here waits.
impl MemoryRepository {
    async fn get_image_encoded<A: Stored>(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Ok(A::list(self).get_encoded(id.as_str()))
    }

    async fn list_images_encoded<A: Stored>(
        &self,
        query: &A::Query,
        page: &PageRequest,
    ) -> Result<EncodedPage, ListError> {
        Ok(encoded_page(A::list(self), A::page(self, query, page)?))
    }

    async fn latest_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        let rows = self
            .compute_families
            .get(folder.as_str())
            .and_then(|families| families.get(family.as_str()));
        let Some(rows) = rows.filter(|rows| !rows.is_empty()) else {
            return Ok(None);
        };
        // The newest created_at is the last run; its first image has the smallest id.
        let row = rows[run_start(&self.compute, rows, rows.len(), Key::CreatedAt)];
        decode_row(&self.compute.images.list, row).map(|image| Some(Arc::new(image)))
    }

    async fn folder_of_registry(
        &self,
        registry_id: &str,
    ) -> Result<Option<String>, RepositoryError> {
        Ok(self
            .registry_folders
            .get(registry_id)
            .map(|f| f.to_string()))
    }
}

impl MemoryRepository {
    /// The positions of a compute List page.
    fn compute_page(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<PageRows, ListError> {
        let table = &self.compute;
        let after = cursor(&table.images.list, page.after.as_ref())?;
        let Some(folder) = self.compute_folders.get(query.folder_id.as_str()) else {
            return Ok(PageRows::default());
        };
        let key = match query.order.field {
            ComputeSortField::Id => Key::Id,
            ComputeSortField::Name => Key::Name,
            ComputeSortField::CreatedAt => Key::CreatedAt,
        };
        let order = [(key, query.order.direction)];
        let view = folder.sorted.view(key);
        let size = page.size.get();
        // Candidates may come from the id index, which spans folders.
        let accept = |row: Row| {
            table.folder(row) == query.folder_id.as_str()
                && compute_matches(&query.filter, table, row)
        };
        let candidates = self.compute_candidates(folder, &query.filter);
        Ok(page_rows(
            table, view, candidates, &order, after, size, accept,
        ))
    }

    /// The images that can pass `filter`, from the index of its most selective
    /// condition on id, name, family or status; None when it has no such condition.
    fn compute_candidates<'a>(
        &'a self,
        folder: &'a ComputeFolder,
        filter: &ComputeImageFilter,
    ) -> Option<Candidates<'a>> {
        filter
            .conditions()
            .iter()
            .filter_map(|condition| match condition {
                ComputeCondition::Id(ids) if !ids.negated() => Some(Candidates::singles(
                    ids.values()
                        .iter()
                        .filter_map(|id| self.compute.images.list.position(id.as_str()))
                        .filter_map(|position| Row::try_from(position).ok())
                        .collect(),
                )),
                ComputeCondition::Name(names) if !names.negated() => Some(Candidates::new(
                    names
                        .values()
                        .iter()
                        .map(|name| name_range(&self.compute, folder.sorted.view(Key::Name), name))
                        .collect(),
                )),
                ComputeCondition::Family(families) if !families.negated() => Some(Candidates::new(
                    families
                        .values()
                        .iter()
                        .filter_map(|family| folder.families.get(family.as_str()))
                        .map(|rows| &**rows)
                        .collect(),
                )),
                ComputeCondition::Status(statuses) if !statuses.negated() => Some(Candidates::new(
                    statuses
                        .values()
                        .iter()
                        .filter_map(|status| folder.statuses.get(&(*status as i32)))
                        .map(|rows| &**rows)
                        .collect(),
                )),
                _ => None,
            })
            .min_by_key(|candidates| candidates.count)
    }
}

fn compute_matches(filter: &ComputeImageFilter, table: &ComputeRows, row: Row) -> bool {
    filter.conditions().iter().all(|condition| match condition {
        ComputeCondition::Id(set) => set.matches(table.id(row)),
        ComputeCondition::Name(set) => set.matches(table.name(row)),
        ComputeCondition::Family(set) => set.matches(table.family(row)),
        // A status number the enum doesn't know is none of the named ones.
        ComputeCondition::Status(set) => {
            Status::try_from(table.status(row)).map_or(set.negated(), |status| set.matches(&status))
        }
    })
}

impl MemoryRepository {
    /// The positions of a container registry List page.
    fn container_page(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<PageRows, ListError> {
        let table = &self.container;
        let after = cursor(&table.images.list, page.after.as_ref())?;
        let scope = match &query.scope {
            ContainerScope::Repository(name) => self.container_repositories.get(name.as_str()),
            ContainerScope::Registry(id) => self.container_registries.get(id.as_str()),
            ContainerScope::Folder(id) => self.container_folders.get(id.as_str()),
        };
        let Some(scope) = scope else {
            return Ok(PageRows::default());
        };
        let mut order: Vec<(Key, Direction)> = query
            .order
            .iter()
            .map(|key| {
                let field = match key.field {
                    ContainerSortField::Name => Key::Name,
                    ContainerSortField::Digest => Key::Digest,
                    ContainerSortField::CreatedAt => Key::CreatedAt,
                };
                (field, key.direction)
            })
            .collect();
        if order.is_empty() {
            order.push((Key::Id, Direction::Asc));
        }
        let view = scope.view(order[0].0);
        let size = page.size.get();
        let accept = |row: Row| container_matches(&query.filter, table, row);
        // Every name of the filter must match, so any one of them narrows the scope.
        let candidates = query
            .filter
            .names()
            .first()
            .map(|name| Candidates::new(vec![name_range(table, scope.view(Key::Name), name)]));
        Ok(page_rows(
            table, view, candidates, &order, after, size, accept,
        ))
    }
}

fn container_matches(filter: &ContainerImageFilter, table: &ContainerRows, row: Row) -> bool {
    filter.names().iter().all(|name| name == table.name(row))
}

/// The fields the indexes sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Name,
    Digest,
    CreatedAt,
}

/// One image's value of a [`Key`]: values of one key compare like the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyValue<'a> {
    None,
    Text(&'a str),
    Time((i64, i32)),
}

/// A table of images the indexes can sort, by position.
trait Rows {
    /// The keys a [`Sorted`] of this table keeps a vector for.
    const KEYS: &'static [Key];
    type Image: Message + Default;
    fn images(&self) -> &Images<Self::Image>;
    fn value(&self, row: Row, key: Key) -> KeyValue<'_>;

    fn id(&self, row: Row) -> &str {
        self.images().list.id_at(row as usize)
    }

    fn name(&self, row: Row) -> &str {
        self.images().names.get(row)
    }

    fn compare(&self, a: Row, b: Row, key: Key) -> Ordering {
        self.value(a, key).cmp(&self.value(b, key))
    }
}

impl Rows for ComputeRows {
    const KEYS: &'static [Key] = &[Key::Id, Key::Name, Key::CreatedAt];
    type Image = compute::Image;

    fn images(&self) -> &Images<compute::Image> {
        &self.images
    }

    fn value(&self, row: Row, key: Key) -> KeyValue<'_> {
        self.images.value(row, key)
    }
}

impl Rows for ContainerRows {
    const KEYS: &'static [Key] = &[Key::Id, Key::Name, Key::Digest, Key::CreatedAt];
    type Image = container_registry::Image;

    fn images(&self) -> &Images<container_registry::Image> {
        &self.images
    }

    fn value(&self, row: Row, key: Key) -> KeyValue<'_> {
        match key {
            Key::Digest => KeyValue::Text(self.digests.get(row)),
            _ => self.images.value(row, key),
        }
    }
}

/// The order within a run of equal first keys: the remaining keys, then id ascending.
fn by_rest_then_id<R: Rows>(table: &R, a: Row, b: Row, rest: &[(Key, Direction)]) -> Ordering {
    rest.iter()
        .map(|&(key, direction)| match direction {
            Direction::Asc => table.compare(a, b, key),
            Direction::Desc => table.compare(a, b, key).reverse(),
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| table.id(a).cmp(table.id(b)))
}

/// One group's images, sorted by each of the table's keys (ties by id ascending).
struct Sorted {
    views: Vec<(Key, Box<[Row]>)>,
}

impl Sorted {
    fn new<R: Rows>(table: &R, rows: Vec<Row>) -> Self {
        let views = R::KEYS
            .iter()
            .map(|&key| (key, Self::sort(table, rows.clone(), key)))
            .collect();
        Self { views }
    }

    /// `rows` by `key` then id. The values are looked up once, not at every comparison.
    fn sort<R: Rows>(table: &R, rows: Vec<Row>, key: Key) -> Box<[Row]> {
        let mut keyed: Vec<(KeyValue<'_>, &str, Row)> = rows
            .into_iter()
            .map(|row| (table.value(row, key), table.id(row), row))
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        keyed.into_iter().map(|(_, _, row)| row).collect()
    }

    /// The images sorted by `key` then id. Every key of the table's `KEYS` has one.
    fn view(&self, key: Key) -> &[Row] {
        self.views
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[], |(_, view)| view)
    }
}

/// The images of `view` (sorted by name then id) named `name`.
fn name_range<'a, R: Rows>(table: &R, view: &'a [Row], name: &str) -> &'a [Row] {
    let start = view.partition_point(|&x| table.name(x) < name);
    let end = start + view[start..].partition_point(|&x| table.name(x) == name);
    &view[start..end]
}

/// Images that may pass a filter, found in the indexes: slices of them and
/// single images (which may overlap), and how many in all.
struct Candidates<'a> {
    slices: Vec<&'a [Row]>,
    singles: Vec<Row>,
    count: usize,
}

impl<'a> Candidates<'a> {
    fn new(slices: Vec<&'a [Row]>) -> Self {
        let count = slices.iter().map(|s| s.len()).sum();
        Self {
            slices,
            singles: Vec::new(),
            count,
        }
    }

    fn singles(singles: Vec<Row>) -> Self {
        Self {
            count: singles.len(),
            slices: Vec::new(),
            singles,
        }
    }

    /// Whether sorting the candidates (about k log k) beats walking an index of
    /// `total` images, which passes about `size * total / k` of them for a page
    /// when k of them match.
    fn worth_sorting(&self, total: usize, size: usize) -> bool {
        self.count.saturating_mul(self.count) <= size.saturating_add(1).saturating_mul(total)
    }
}

/// A page of positions, in order, and whether more images follow.
#[derive(Debug, Default, PartialEq)]
struct PageRows {
    rows: Vec<Row>,
    more: bool,
}

/// A page from the candidates where sorting them beats walking `view` (see
/// [`Candidates::worth_sorting`]), else from the walk.
fn page_rows<R: Rows>(
    table: &R,
    view: &[Row],
    candidates: Option<Candidates<'_>>,
    order: &[(Key, Direction)],
    after: Option<Row>,
    size: usize,
    accept: impl Fn(Row) -> bool,
) -> PageRows {
    match candidates {
        Some(candidates) if candidates.worth_sorting(view.len(), size) => {
            page_of_candidates(table, candidates, order, after, size, accept)
        }
        _ => page_of(table, view, order, after, size, accept),
    }
}

/// A page from candidates: those that pass `accept`, sorted in `order` (then id
/// ascending), after `after`'s position.
fn page_of_candidates<R: Rows>(
    table: &R,
    candidates: Candidates<'_>,
    order: &[(Key, Direction)],
    after: Option<Row>,
    size: usize,
    accept: impl Fn(Row) -> bool,
) -> PageRows {
    let mut sorted: Vec<Row> = candidates
        .slices
        .iter()
        .flat_map(|slice| slice.iter().copied())
        .chain(candidates.singles.iter().copied())
        .filter(|&row| accept(row))
        .collect();
    sorted.sort_unstable_by(|&a, &b| by_rest_then_id(table, a, b, order));
    // A value given twice (`name IN ("a", "a")`) finds its images twice; they are now adjacent.
    sorted.dedup();
    let start = after.map_or(0, |cursor| {
        sorted.partition_point(|&row| by_rest_then_id(table, row, cursor, order).is_le())
    });
    let rows: Vec<Row> = sorted[start..].iter().take(size + 1).copied().collect();
    let (rows, more) = split_extra(rows, size);
    PageRows { rows, more }
}

/// A page of `view` (sorted by `order[0].0` then id) in `order` (then id
/// ascending): the first `size` images that pass `accept` after `after`'s
/// position, and whether there are more.
fn page_of<R: Rows>(
    table: &R,
    view: &[Row],
    order: &[(Key, Direction)],
    after: Option<Row>,
    size: usize,
    accept: impl Fn(Row) -> bool,
) -> PageRows {
    // One more than asked tells whether another page follows.
    let (rows, more) = split_extra(walk(table, view, order, after, size + 1, &accept), size);
    PageRows { rows, more }
}

fn walk<R: Rows>(
    table: &R,
    view: &[Row],
    order: &[(Key, Direction)],
    after: Option<Row>,
    limit: usize,
    accept: &dyn Fn(Row) -> bool,
) -> Vec<Row> {
    let mut out = Vec::with_capacity(limit.min(view.len()));
    let Some((&(key, direction), rest)) = order.split_first() else {
        return out;
    };
    // Where the walk resumes: after `after` within the run of its key, then the runs beyond.
    let mut next = match after {
        None => match direction {
            Direction::Asc => 0,
            Direction::Desc => view.len(),
        },
        Some(cursor) => {
            let start = view.partition_point(|&x| table.compare(x, cursor, key).is_lt());
            let end =
                start + view[start..].partition_point(|&x| table.compare(x, cursor, key).is_eq());
            emit_run(
                table,
                &view[start..end],
                rest,
                Some(cursor),
                limit,
                accept,
                &mut out,
            );
            match direction {
                Direction::Asc => end,
                Direction::Desc => start,
            }
        }
    };
    if direction == Direction::Asc && rest.is_empty() {
        // The view's own order: walk straight on.
        emit_run(table, &view[next..], rest, None, limit, accept, &mut out);
        return out;
    }
    while out.len() < limit {
        match direction {
            Direction::Asc => {
                if next >= view.len() {
                    break;
                }
                let end = run_end(table, view, next, key);
                emit_run(table, &view[next..end], rest, None, limit, accept, &mut out);
                next = end;
            }
            Direction::Desc => {
                if next == 0 {
                    break;
                }
                let start = run_start(table, view, next, key);
                emit_run(
                    table,
                    &view[start..next],
                    rest,
                    None,
                    limit,
                    accept,
                    &mut out,
                );
                next = start;
            }
        }
    }
    out
}

/// Appends the images of a run (equal on the first key, in id order) that pass
/// `accept` and come after `after`, in the order of `rest` then id, up to `limit` in all.
fn emit_run<R: Rows>(
    table: &R,
    run: &[Row],
    rest: &[(Key, Direction)],
    after: Option<Row>,
    limit: usize,
    accept: &dyn Fn(Row) -> bool,
    out: &mut Vec<Row>,
) {
    if rest.is_empty() {
        let start = after.map_or(0, |c| {
            let cursor_id = table.id(c);
            run.partition_point(|&x| table.id(x) <= cursor_id)
        });
        for &row in &run[start..] {
            if out.len() >= limit {
                return;
            }
            if accept(row) {
                out.push(row);
            }
        }
    } else {
        let mut sorted: Vec<Row> = run.iter().copied().filter(|&x| accept(x)).collect();
        sorted.sort_unstable_by(|&a, &b| by_rest_then_id(table, a, b, rest));
        let start = after.map_or(0, |c| {
            sorted.partition_point(|&x| by_rest_then_id(table, x, c, rest).is_le())
        });
        for &row in &sorted[start..] {
            if out.len() >= limit {
                return;
            }
            out.push(row);
        }
    }
}

/// The end (exclusive) of the run of images equal to `view[start]` on `key`:
/// galloping, so a short run costs a comparison or two and a long one log(length).
fn run_end<R: Rows>(table: &R, view: &[Row], start: usize, key: Key) -> usize {
    let first = view[start];
    let mut equal = start;
    let mut step = 1;
    let bound = loop {
        let probe = start + step;
        if probe >= view.len() {
            break view.len();
        }
        if table.compare(view[probe], first, key).is_ne() {
            break probe;
        }
        equal = probe;
        step *= 2;
    };
    equal + 1 + view[equal + 1..bound].partition_point(|&x| table.compare(x, first, key).is_eq())
}

/// The start of the run of images equal to `view[end - 1]` on `key` (`end` > 0).
fn run_start<R: Rows>(table: &R, view: &[Row], end: usize, key: Key) -> usize {
    let last_index = end - 1;
    let last = view[last_index];
    let mut equal = last_index;
    let mut step = 1;
    let bound = loop {
        let Some(probe) = last_index.checked_sub(step) else {
            break 0;
        };
        if table.compare(view[probe], last, key).is_ne() {
            break probe + 1;
        }
        equal = probe;
        step *= 2;
    };
    bound + view[bound..equal].partition_point(|&x| table.compare(x, last, key).is_ne())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, name: &str, seconds: i64) -> compute::Image {
        compute::Image {
            id: id.into(),
            name: name.into(),
            created_at: Some(crate::proto::Timestamp { seconds, nanos: 0 }),
            ..Default::default()
        }
    }

    fn table(items: Vec<compute::Image>) -> ComputeRows {
        ComputeRows::new(ImageList::from_images(items, |image| &image.id).unwrap())
    }

    fn ids(table: &ComputeRows, rows: &[Row]) -> Vec<String> {
        rows.iter().map(|&row| table.id(row).to_owned()).collect()
    }

    /// The reference order: sort everything with the full comparator.
    fn reference(table: &ComputeRows, order: &[(Key, Direction)]) -> Vec<String> {
        let mut sorted: Vec<Row> = table.images.rows().collect();
        sorted.sort_by(|&a, &b| {
            let (&(key, direction), rest) = order.split_first().unwrap();
            let first = match direction {
                Direction::Asc => table.compare(a, b, key),
                Direction::Desc => table.compare(a, b, key).reverse(),
            };
            first.then_with(|| by_rest_then_id(table, a, b, rest))
        });
        ids(table, &sorted)
    }

    fn paged(table: &ComputeRows, order: &[(Key, Direction)], size: usize) -> Vec<String> {
        let sorted = Sorted::new(table, table.images.rows().collect());
        let view = sorted.view(order[0].0);
        let mut all = Vec::new();
        let mut after: Option<Row> = None;
        loop {
            let page = page_of(table, view, order, after, size, |_| true);
            all.extend(ids(table, &page.rows));
            if !page.more {
                return all;
            }
            after = page.rows.last().copied();
        }
    }

    /// `count` images, ids out of order, with many ties on name (`names`
    /// distinct) and created_at (`times` distinct).
    fn with_ties(count: usize, names: usize, times: i64) -> ComputeRows {
        table(
            (0..count)
                .map(|i| {
                    let seconds = i64::try_from(i).unwrap() % times;
                    image(
                        &format!("id{:03}", (i * 37) % count),
                        &format!("n{}", i % names),
                        seconds,
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn paging_matches_a_full_sort_in_every_order() {
        let table = with_ties(200, 7, 13);
        let orders: Vec<Vec<(Key, Direction)>> = vec![
            vec![(Key::Id, Direction::Asc)],
            vec![(Key::Id, Direction::Desc)],
            vec![(Key::Name, Direction::Asc)],
            vec![(Key::Name, Direction::Desc)],
            vec![(Key::CreatedAt, Direction::Desc)],
            vec![
                (Key::Name, Direction::Desc),
                (Key::CreatedAt, Direction::Asc),
            ],
            vec![
                (Key::CreatedAt, Direction::Asc),
                (Key::Name, Direction::Desc),
            ],
        ];
        for order in &orders {
            let expected = reference(&table, order);
            assert_eq!(expected.len(), 200);
            for size in [1, 3, 7, 50, 1000] {
                assert_eq!(paged(&table, order, size), expected, "{order:?} by {size}");
            }
        }
    }

    #[test]
    fn sorted_candidates_page_like_the_walk() {
        let table = with_ties(300, 11, 17);
        let all: Vec<Row> = table.images.rows().collect();
        let sorted = Sorted::new(&table, all.clone());
        let keep = |row: Row| table.name(row).ends_with('3') || table.name(row) == "n7";
        for order in [
            vec![(Key::Id, Direction::Desc)],
            vec![(Key::Name, Direction::Asc)],
            vec![(Key::CreatedAt, Direction::Desc)],
            vec![
                (Key::Name, Direction::Desc),
                (Key::CreatedAt, Direction::Asc),
            ],
        ] {
            let view = sorted.view(order[0].0);
            for size in [1, 4, 1000] {
                let mut after: Option<Row> = None;
                loop {
                    let walked = page_of(&table, view, &order, after, size, keep);
                    // The same images twice over, as `name IN ("n3", "n3")` would find them.
                    let mut candidates = Candidates::new(vec![&all[..], &all[..]]);
                    candidates.singles = all[..10].to_vec();
                    let picked = page_of_candidates(&table, candidates, &order, after, size, keep);
                    assert_eq!(walked, picked, "{order:?} by {size}");
                    if !walked.more {
                        break;
                    }
                    after = walked.rows.last().copied();
                }
            }
        }
    }

    #[test]
    fn names_are_found_by_range() {
        let items: Vec<_> = ["b", "a", "b", "c", "b"]
            .iter()
            .enumerate()
            .map(|(i, name)| image(&format!("id{i}"), name, 0))
            .collect();
        let table = table(items);
        let sorted = Sorted::new(&table, table.images.rows().collect());
        let view = sorted.view(Key::Name);
        let named = |name: &str| ids(&table, name_range(&table, view, name));
        assert_eq!(named("b"), ["id0", "id2", "id4"]);
        assert_eq!(named("a"), ["id1"]);
        assert!(named("bb").is_empty());
        assert!(named("").is_empty());
    }

    #[test]
    fn runs_are_found_at_every_length() {
        for len in 1..40 {
            let items: Vec<_> = (0..len)
                .map(|i| image(&format!("{i:02}"), "same", 0))
                .collect();
            let table = table(items);
            let sorted = Sorted::new(&table, table.images.rows().collect());
            let view = sorted.view(Key::Name);
            assert_eq!(run_end(&table, view, 0, Key::Name), len);
            assert_eq!(run_start(&table, view, len, Key::Name), 0);
            assert_eq!(run_end(&table, view, 0, Key::Id), 1);
            assert_eq!(run_start(&table, view, len, Key::Id), len - 1);
        }
    }

    #[test]
    fn index_keys_are_read_from_the_stored_bytes() {
        let mut first = image("a", "alpha", 5);
        first.folder_id = "folder".into();
        first.family = "fam".into();
        first.status = Status::Ready as i32;
        first.labels.insert("k".into(), "v".into());
        first.description = "skipped by the key decoder".into();
        let mut second = image("b", "beta", 0);
        second.created_at = None;
        let table = table(vec![first, second]);
        assert_eq!(table.name(0), "alpha");
        assert_eq!(table.folder(0), "folder");
        assert_eq!(table.family(0), "fam");
        assert_eq!(table.status(0), Status::Ready as i32);
        assert_eq!(table.images.created[0], (5, 0));
        assert_eq!(table.name(1), "beta");
        assert_eq!(table.folder(1), "");
        // No created_at sorts before any.
        assert_eq!(table.images.created[1], (i64::MIN, 0));
        assert_eq!(table.compare(1, 0, Key::CreatedAt), Ordering::Less);
    }
}
