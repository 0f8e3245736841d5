//! The embedded backend: the whole catalog in hash maps and pre-sorted vectors,
//! built once and read without locks.
//!
//! Indexes:
//! - every image by id, decoded (Get, and the position a page token names),
//!   and encoded in the catalog's [`ImageList`]s: the gRPC Get sends the
//!   stored protobuf bytes as they are instead of encoding the image again;
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

use async_trait::async_trait;
use bytes::Bytes;

use super::{ComputeImageRepository, ContainerImageRepository, ListError, Page, RepositoryError};
use crate::catalog::{Catalog, ImageList};
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

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Index<T> = Map<Box<str>, Arc<T>>;
/// Per family: the READY images of one folder by (`created_at`, id).
type Families = Map<Box<str>, Box<[Arc<compute::Image>]>>;

/// An immutable snapshot of a validated catalog, indexed for every query.
pub struct MemoryRepository {
    compute: Index<compute::Image>,
    container: Index<container_registry::Image>,
    /// The same images encoded, for the encoded lookups.
    compute_encoded: ImageList<compute::Image>,
    container_encoded: ImageList<container_registry::Image>,
    compute_folders: Map<Box<str>, ComputeFolder>,
    /// Folder, then family: the READY images by (`created_at`, id).
    compute_families: Map<Box<str>, Families>,
    container_repositories: Map<Box<str>, Sorted<container_registry::Image>>,
    container_registries: Map<Box<str>, Sorted<container_registry::Image>>,
    container_folders: Map<Box<str>, Sorted<container_registry::Image>>,
    /// Registry id to folder id, for authorization.
    registry_folders: Map<Box<str>, Box<str>>,
}

impl MemoryRepository {
    /// Serves a catalog. Ids are already known to be unique: [`Catalog`] checked them.
    pub fn new(catalog: Catalog) -> Self {
        // The List indexes hold decoded images; the encoded lists stay for Get.
        let compute_images: Vec<Arc<compute::Image>> =
            catalog.compute_images.iter().map(Arc::new).collect();
        let container_images: Vec<Arc<container_registry::Image>> =
            catalog.container_images.iter().map(Arc::new).collect();

        type Groups<T> = Map<Box<str>, Vec<Arc<T>>>;
        let mut folders: Groups<compute::Image> = Map::default();
        let mut families: Map<Box<str>, Groups<compute::Image>> = Map::default();
        for image in &compute_images {
            if image.folder_id.is_empty() {
                continue;
            }
            folders
                .entry(image.folder_id.as_str().into())
                .or_default()
                .push(image.clone());
            if !image.family.is_empty() && image.status == Status::Ready as i32 {
                families
                    .entry(image.folder_id.as_str().into())
                    .or_default()
                    .entry(image.family.as_str().into())
                    .or_default()
                    .push(image.clone());
            }
        }
        let compute_families = families
            .into_iter()
            .map(|(folder, families)| {
                let families = families
                    .into_iter()
                    .map(|(family, mut images)| {
                        images.sort_unstable_by(|a, b| by_key_then_id(&**a, &**b, Key::CreatedAt));
                        (family, images.into_boxed_slice())
                    })
                    .collect();
                (folder, families)
            })
            .collect();

        let registry_folders: Map<&str, &str> = catalog
            .container_registries
            .iter()
            .map(|r| (r.id.as_str(), r.folder_id.as_str()))
            .collect();
        let mut repositories: Groups<container_registry::Image> = Map::default();
        let mut registries: Groups<container_registry::Image> = Map::default();
        let mut container_folders: Groups<container_registry::Image> = Map::default();
        for image in &container_images {
            if image.name.is_empty() {
                continue;
            }
            repositories
                .entry(image.name.as_str().into())
                .or_default()
                .push(image.clone());
            let Some(registry) = registry_of(&image.name) else {
                continue;
            };
            registries
                .entry(registry.into())
                .or_default()
                .push(image.clone());
            if let Some(folder) = registry_folders.get(registry) {
                container_folders
                    .entry((*folder).into())
                    .or_default()
                    .push(image.clone());
            }
        }

        Self {
            compute: by_id(&compute_images),
            container: by_id(&container_images),
            compute_encoded: catalog.compute_images,
            container_encoded: catalog.container_images,
            compute_folders: folders
                .into_iter()
                .map(|(folder, images)| (folder, ComputeFolder::new(images)))
                .collect(),
            compute_families,
            container_repositories: sorted_groups(repositories),
            container_registries: sorted_groups(registries),
            container_folders: sorted_groups(container_folders),
            registry_folders: catalog
                .container_registries
                .iter()
                .map(|r| (r.id.as_str().into(), r.folder_id.as_str().into()))
                .collect(),
        }
    }

    pub fn compute_len(&self) -> usize {
        self.compute.len()
    }

    pub fn container_len(&self) -> usize {
        self.container.len()
    }
}

fn by_id<T: Sortable>(items: &[Arc<T>]) -> Index<T> {
    let mut map = Index::with_capacity_and_hasher(items.len(), Default::default());
    for item in items {
        map.insert(item.id().into(), item.clone());
    }
    map
}

/// One compute folder's indexes.
struct ComputeFolder {
    sorted: Sorted<compute::Image>,
    /// By family (`""` for none), every status, in id order.
    families: Map<Box<str>, Box<[Arc<compute::Image>]>>,
    /// By status number, in id order.
    statuses: Map<i32, Box<[Arc<compute::Image>]>>,
}

impl ComputeFolder {
    fn new(images: Vec<Arc<compute::Image>>) -> Self {
        let mut families: Map<Box<str>, Vec<Arc<compute::Image>>> = Map::default();
        let mut statuses: Map<i32, Vec<Arc<compute::Image>>> = Map::default();
        for image in &images {
            families
                .entry(image.family.as_str().into())
                .or_default()
                .push(image.clone());
            statuses
                .entry(image.status)
                .or_default()
                .push(image.clone());
        }
        fn in_id_order<K: Eq + std::hash::Hash>(
            groups: Map<K, Vec<Arc<compute::Image>>>,
        ) -> Map<K, Box<[Arc<compute::Image>]>> {
            groups
                .into_iter()
                .map(|(key, mut images)| {
                    images.sort_unstable_by(|a, b| a.id.cmp(&b.id));
                    (key, images.into_boxed_slice())
                })
                .collect()
        }
        Self {
            sorted: Sorted::new(images),
            families: in_id_order(families),
            statuses: in_id_order(statuses),
        }
    }
}

fn sorted_groups<T: Sortable>(groups: Map<Box<str>, Vec<Arc<T>>>) -> Map<Box<str>, Sorted<T>> {
    groups
        .into_iter()
        .map(|(name, items)| (name, Sorted::new(items)))
        .collect()
}

/// The image a page token continues after: it must still exist.
fn cursor<'a, T>(index: &'a Index<T>, after: Option<&ImageId>) -> Result<Option<&'a T>, ListError> {
    match after {
        None => Ok(None),
        Some(id) => index
            .get(id.as_str())
            .map(|item| Some(&**item))
            .ok_or_else(|| ListError::CursorNotFound(id.clone())),
    }
}

#[async_trait]
impl ComputeImageRepository for MemoryRepository {
    async fn get_compute_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        Ok(self.compute.get(id.as_str()).cloned())
    }

    async fn get_compute_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Ok(self.compute_encoded.get_encoded(id.as_str()))
    }

    async fn list_compute_images(
        &self,
        query: &ComputeImageQuery,
        page: &PageRequest,
    ) -> Result<Page<compute::Image>, ListError> {
        let after = cursor(&self.compute, page.after.as_ref())?;
        let Some(folder) = self.compute_folders.get(query.folder_id.as_str()) else {
            return Ok(Page::default());
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
        let accept = |image: &compute::Image| {
            image.folder_id == query.folder_id.as_str() && compute_matches(&query.filter, image)
        };
        Ok(match self.compute_candidates(folder, &query.filter) {
            Some(candidates) if candidates.worth_sorting(view.len(), size) => {
                page_of_candidates(candidates, &order, after, size, accept)
            }
            _ => page_of(view, &order, after, size, accept),
        })
    }

    async fn latest_compute_image_by_family(
        &self,
        folder: &FolderId,
        family: &Family,
    ) -> Result<Option<Arc<compute::Image>>, RepositoryError> {
        let images = self
            .compute_families
            .get(folder.as_str())
            .and_then(|families| families.get(family.as_str()));
        Ok(images.and_then(|images| {
            // The newest created_at is the last run; its first image has the smallest id.
            (!images.is_empty())
                .then(|| images[run_start(images, images.len(), Key::CreatedAt)].clone())
        }))
    }
}

impl MemoryRepository {
    /// The images that can pass `filter`, from the index of its most selective
    /// condition on id, name, family or status; None when it has no such condition.
    fn compute_candidates<'a>(
        &'a self,
        folder: &'a ComputeFolder,
        filter: &ComputeImageFilter,
    ) -> Option<Candidates<'a, compute::Image>> {
        filter
            .conditions()
            .iter()
            .filter_map(|condition| match condition {
                ComputeCondition::Id(ids) if !ids.negated() => Some(Candidates::new(
                    ids.values()
                        .iter()
                        .filter_map(|id| self.compute.get(id.as_str()))
                        .map(std::slice::from_ref)
                        .collect(),
                )),
                ComputeCondition::Name(names) if !names.negated() => Some(Candidates::new(
                    names
                        .values()
                        .iter()
                        .map(|name| name_range(folder.sorted.view(Key::Name), name))
                        .collect(),
                )),
                ComputeCondition::Family(families) if !families.negated() => Some(Candidates::new(
                    families
                        .values()
                        .iter()
                        .filter_map(|family| folder.families.get(family.as_str()))
                        .map(|images| &**images)
                        .collect(),
                )),
                ComputeCondition::Status(statuses) if !statuses.negated() => Some(Candidates::new(
                    statuses
                        .values()
                        .iter()
                        .filter_map(|status| folder.statuses.get(&(*status as i32)))
                        .map(|images| &**images)
                        .collect(),
                )),
                _ => None,
            })
            .min_by_key(|candidates| candidates.count)
    }
}

fn compute_matches(filter: &ComputeImageFilter, image: &compute::Image) -> bool {
    filter.conditions().iter().all(|condition| match condition {
        ComputeCondition::Id(set) => set.matches(image.id.as_str()),
        ComputeCondition::Name(set) => set.matches(image.name.as_str()),
        ComputeCondition::Family(set) => set.matches(image.family.as_str()),
        // A status number the enum doesn't know is none of the named ones.
        ComputeCondition::Status(set) => {
            Status::try_from(image.status).map_or(set.negated(), |status| set.matches(&status))
        }
    })
}

#[async_trait]
impl ContainerImageRepository for MemoryRepository {
    async fn get_container_image(
        &self,
        id: &ImageId,
    ) -> Result<Option<Arc<container_registry::Image>>, RepositoryError> {
        Ok(self.container.get(id.as_str()).cloned())
    }

    async fn get_container_image_encoded(
        &self,
        id: &ImageId,
    ) -> Result<Option<Bytes>, RepositoryError> {
        Ok(self.container_encoded.get_encoded(id.as_str()))
    }

    async fn registry_folder(&self, registry_id: &str) -> Result<Option<String>, RepositoryError> {
        Ok(self
            .registry_folders
            .get(registry_id)
            .map(|f| f.to_string()))
    }

    async fn list_container_images(
        &self,
        query: &ContainerImageQuery,
        page: &PageRequest,
    ) -> Result<Page<container_registry::Image>, ListError> {
        let after = cursor(&self.container, page.after.as_ref())?;
        let scope = match &query.scope {
            ContainerScope::Repository(name) => self.container_repositories.get(name.as_str()),
            ContainerScope::Registry(id) => self.container_registries.get(id.as_str()),
            ContainerScope::Folder(id) => self.container_folders.get(id.as_str()),
        };
        let Some(scope) = scope else {
            return Ok(Page::default());
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
        let accept = |image: &container_registry::Image| container_matches(&query.filter, image);
        // Every name of the filter must match, so any one of them narrows the scope.
        let candidates = query
            .filter
            .names()
            .first()
            .map(|name| Candidates::new(vec![name_range(scope.view(Key::Name), name)]));
        Ok(match candidates {
            Some(candidates) if candidates.worth_sorting(view.len(), size) => {
                page_of_candidates(candidates, &order, after, size, accept)
            }
            _ => page_of(view, &order, after, size, accept),
        })
    }
}

fn container_matches(filter: &ContainerImageFilter, image: &container_registry::Image) -> bool {
    filter.names().iter().all(|name| *name == image.name)
}

/// The fields the indexes sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Id,
    Name,
    Digest,
    CreatedAt,
}

/// An image the indexes can sort.
trait Sortable {
    /// The keys a [`Sorted`] of this type keeps a vector for.
    const KEYS: &'static [Key];
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn compare(&self, other: &Self, key: Key) -> Ordering;
}

/// `created_at` as a sortable pair; an image without one sorts first.
fn timestamp_key(timestamp: Option<&prost_types::Timestamp>) -> (i64, i32) {
    timestamp.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

impl Sortable for compute::Image {
    const KEYS: &'static [Key] = &[Key::Id, Key::Name, Key::CreatedAt];

    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn compare(&self, other: &Self, key: Key) -> Ordering {
        match key {
            Key::Id => self.id.cmp(&other.id),
            Key::Name => self.name.cmp(&other.name),
            Key::CreatedAt => timestamp_key(self.created_at.as_ref())
                .cmp(&timestamp_key(other.created_at.as_ref())),
            // Compute images have no digest.
            Key::Digest => Ordering::Equal,
        }
    }
}

impl Sortable for container_registry::Image {
    const KEYS: &'static [Key] = &[Key::Id, Key::Name, Key::Digest, Key::CreatedAt];

    fn id(&self) -> &str {
        &self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn compare(&self, other: &Self, key: Key) -> Ordering {
        match key {
            Key::Id => self.id.cmp(&other.id),
            Key::Name => self.name.cmp(&other.name),
            Key::Digest => self.digest.cmp(&other.digest),
            Key::CreatedAt => timestamp_key(self.created_at.as_ref())
                .cmp(&timestamp_key(other.created_at.as_ref())),
        }
    }
}

fn by_key_then_id<T: Sortable>(a: &T, b: &T, key: Key) -> Ordering {
    a.compare(b, key).then_with(|| a.id().cmp(b.id()))
}

/// The order within a run of equal first keys: the remaining keys, then id ascending.
fn by_rest_then_id<T: Sortable>(a: &T, b: &T, rest: &[(Key, Direction)]) -> Ordering {
    rest.iter()
        .map(|&(key, direction)| match direction {
            Direction::Asc => a.compare(b, key),
            Direction::Desc => a.compare(b, key).reverse(),
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| a.id().cmp(b.id()))
}

/// One group's images, sorted by each of `T::KEYS` (ties by id ascending).
struct Sorted<T> {
    views: Vec<(Key, Box<[Arc<T>]>)>,
}

impl<T: Sortable> Sorted<T> {
    fn new(items: Vec<Arc<T>>) -> Self {
        let views = T::KEYS
            .iter()
            .map(|&key| {
                let mut view = items.clone();
                view.sort_unstable_by(|a, b| by_key_then_id(&**a, &**b, key));
                (key, view.into_boxed_slice())
            })
            .collect();
        Self { views }
    }

    /// The images sorted by `key` then id. Every key of `T::KEYS` has one.
    fn view(&self, key: Key) -> &[Arc<T>] {
        self.views
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[], |(_, view)| view)
    }
}

/// The images of `view` (sorted by name then id) named `name`.
fn name_range<'a, T: Sortable>(view: &'a [Arc<T>], name: &str) -> &'a [Arc<T>] {
    let start = view.partition_point(|x| x.name() < name);
    let end = start + view[start..].partition_point(|x| x.name() == name);
    &view[start..end]
}

/// Images that may pass a filter, found in the indexes: slices of them (which
/// may overlap) and how many in all.
struct Candidates<'a, T> {
    slices: Vec<&'a [Arc<T>]>,
    count: usize,
}

impl<'a, T> Candidates<'a, T> {
    fn new(slices: Vec<&'a [Arc<T>]>) -> Self {
        let count = slices.iter().map(|s| s.len()).sum();
        Self { slices, count }
    }

    /// Whether sorting the candidates (about k log k) beats walking an index of
    /// `total` images, which passes about `size * total / k` of them for a page
    /// when k of them match.
    fn worth_sorting(&self, total: usize, size: usize) -> bool {
        self.count.saturating_mul(self.count) <= size.saturating_add(1).saturating_mul(total)
    }
}

/// A page from candidates: those that pass `accept`, sorted in `order` (then id
/// ascending), after `after`'s position.
fn page_of_candidates<T: Sortable>(
    candidates: Candidates<'_, T>,
    order: &[(Key, Direction)],
    after: Option<&T>,
    size: usize,
    accept: impl Fn(&T) -> bool,
) -> Page<T> {
    let mut sorted: Vec<&Arc<T>> = candidates
        .slices
        .iter()
        .flat_map(|slice| slice.iter())
        .filter(|item| accept(item))
        .collect();
    sorted.sort_unstable_by(|a, b| by_rest_then_id(&***a, &***b, order));
    // A value given twice (`name IN ("a", "a")`) finds its images twice; they are now adjacent.
    sorted.dedup_by(|a, b| a.id() == b.id());
    let start = after.map_or(0, |cursor| {
        sorted.partition_point(|item| by_rest_then_id(&***item, cursor, order).is_le())
    });
    let mut items: Vec<Arc<T>> = sorted[start..]
        .iter()
        .take(size + 1)
        .map(|item| Arc::clone(item))
        .collect();
    let more = items.len() > size;
    items.truncate(size);
    Page { items, more }
}

/// A page of `view` (sorted by `order[0].0` then id) in `order` (then id
/// ascending): the first `size` images that pass `accept` after `after`'s
/// position, and whether there are more.
fn page_of<T: Sortable>(
    view: &[Arc<T>],
    order: &[(Key, Direction)],
    after: Option<&T>,
    size: usize,
    accept: impl Fn(&T) -> bool,
) -> Page<T> {
    // One more than asked tells whether another page follows.
    let mut items = walk(view, order, after, size + 1, &accept);
    let more = items.len() > size;
    items.truncate(size);
    Page { items, more }
}

fn walk<T: Sortable>(
    view: &[Arc<T>],
    order: &[(Key, Direction)],
    after: Option<&T>,
    limit: usize,
    accept: &dyn Fn(&T) -> bool,
) -> Vec<Arc<T>> {
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
            let start = view.partition_point(|x| x.compare(cursor, key).is_lt());
            let end = start + view[start..].partition_point(|x| x.compare(cursor, key).is_eq());
            emit_run(
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
        emit_run(&view[next..], rest, None, limit, accept, &mut out);
        return out;
    }
    while out.len() < limit {
        match direction {
            Direction::Asc => {
                if next >= view.len() {
                    break;
                }
                let end = run_end(view, next, key);
                emit_run(&view[next..end], rest, None, limit, accept, &mut out);
                next = end;
            }
            Direction::Desc => {
                if next == 0 {
                    break;
                }
                let start = run_start(view, next, key);
                emit_run(&view[start..next], rest, None, limit, accept, &mut out);
                next = start;
            }
        }
    }
    out
}

/// Appends the images of a run (equal on the first key, in id order) that pass
/// `accept` and come after `after`, in the order of `rest` then id, up to `limit` in all.
fn emit_run<T: Sortable>(
    run: &[Arc<T>],
    rest: &[(Key, Direction)],
    after: Option<&T>,
    limit: usize,
    accept: &dyn Fn(&T) -> bool,
    out: &mut Vec<Arc<T>>,
) {
    if rest.is_empty() {
        let start = after.map_or(0, |c| run.partition_point(|x| x.id() <= c.id()));
        for item in &run[start..] {
            if out.len() >= limit {
                return;
            }
            if accept(item) {
                out.push(item.clone());
            }
        }
    } else {
        let mut sorted: Vec<&Arc<T>> = run.iter().filter(|x| accept(x)).collect();
        sorted.sort_unstable_by(|a, b| by_rest_then_id(&***a, &***b, rest));
        let start = after.map_or(0, |c| {
            sorted.partition_point(|x| by_rest_then_id(&***x, c, rest).is_le())
        });
        for item in &sorted[start..] {
            if out.len() >= limit {
                return;
            }
            out.push((*item).clone());
        }
    }
}

/// The end (exclusive) of the run of images equal to `view[start]` on `key`:
/// galloping, so a short run costs a comparison or two and a long one log(length).
fn run_end<T: Sortable>(view: &[Arc<T>], start: usize, key: Key) -> usize {
    let first = &view[start];
    let mut equal = start;
    let mut step = 1;
    let bound = loop {
        let probe = start + step;
        if probe >= view.len() {
            break view.len();
        }
        if view[probe].compare(first, key).is_ne() {
            break probe;
        }
        equal = probe;
        step *= 2;
    };
    equal + 1 + view[equal + 1..bound].partition_point(|x| x.compare(first, key).is_eq())
}

/// The start of the run of images equal to `view[end - 1]` on `key` (`end` > 0).
fn run_start<T: Sortable>(view: &[Arc<T>], end: usize, key: Key) -> usize {
    let last_index = end - 1;
    let last = &view[last_index];
    let mut equal = last_index;
    let mut step = 1;
    let bound = loop {
        let Some(probe) = last_index.checked_sub(step) else {
            break 0;
        };
        if view[probe].compare(last, key).is_ne() {
            break probe + 1;
        }
        equal = probe;
        step *= 2;
    };
    bound + view[bound..equal].partition_point(|x| x.compare(last, key).is_ne())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, name: &str, seconds: i64) -> Arc<compute::Image> {
        Arc::new(compute::Image {
            id: id.into(),
            name: name.into(),
            created_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
            ..Default::default()
        })
    }

    /// The reference order: sort everything with the full comparator.
    fn reference(items: &[Arc<compute::Image>], order: &[(Key, Direction)]) -> Vec<String> {
        let mut sorted = items.to_vec();
        sorted.sort_by(|a, b| {
            let (&(key, direction), rest) = order.split_first().unwrap();
            let first = match direction {
                Direction::Asc => a.compare(b, key),
                Direction::Desc => a.compare(b, key).reverse(),
            };
            first.then_with(|| by_rest_then_id(&**a, &**b, rest))
        });
        sorted.iter().map(|i| i.id.clone()).collect()
    }

    fn paged(
        items: &[Arc<compute::Image>],
        order: &[(Key, Direction)],
        size: usize,
    ) -> Vec<String> {
        let sorted = Sorted::new(items.to_vec());
        let view = sorted.view(order[0].0);
        let mut all = Vec::new();
        let mut after: Option<Arc<compute::Image>> = None;
        loop {
            let page = page_of(view, order, after.as_deref(), size, |_| true);
            all.extend(page.items.iter().map(|i| i.id.clone()));
            if !page.more {
                return all;
            }
            after = page.items.last().cloned();
        }
    }

    #[test]
    fn paging_matches_a_full_sort_in_every_order() {
        // Many ties on name and created_at, ids out of order.
        let items: Vec<_> = (0..200)
            .map(|i| {
                image(
                    &format!("id{:03}", (i * 37) % 200),
                    &format!("n{}", i % 7),
                    i % 13,
                )
            })
            .collect();
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
            let expected = reference(&items, order);
            for size in [1, 3, 7, 50, 1000] {
                assert_eq!(paged(&items, order, size), expected, "{order:?} by {size}");
            }
        }
    }

    #[test]
    fn sorted_candidates_page_like_the_walk() {
        let items: Vec<_> = (0..300)
            .map(|i| {
                image(
                    &format!("id{:03}", (i * 37) % 300),
                    &format!("n{}", i % 11),
                    i % 17,
                )
            })
            .collect();
        let sorted = Sorted::new(items.clone());
        let keep = |image: &compute::Image| image.name.ends_with('3') || image.name == "n7";
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
                let mut after: Option<Arc<compute::Image>> = None;
                loop {
                    let walked = page_of(view, &order, after.as_deref(), size, keep);
                    // The same images twice over, as `name IN ("n3", "n3")` would find them.
                    let candidates = Candidates::new(vec![&items[..], &items[..]]);
                    let picked =
                        page_of_candidates(candidates, &order, after.as_deref(), size, keep);
                    assert_eq!(walked, picked, "{order:?} by {size}");
                    if !walked.more {
                        break;
                    }
                    after = walked.items.last().cloned();
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
        let sorted = Sorted::new(items);
        let view = sorted.view(Key::Name);
        let ids = |name: &str| -> Vec<String> {
            name_range(view, name)
                .iter()
                .map(|i| i.id.clone())
                .collect()
        };
        assert_eq!(ids("b"), ["id0", "id2", "id4"]);
        assert_eq!(ids("a"), ["id1"]);
        assert!(ids("bb").is_empty());
        assert!(ids("").is_empty());
    }

    #[test]
    fn runs_are_found_at_every_length() {
        for len in 1..40 {
            let items: Vec<_> = (0..len)
                .map(|i| image(&format!("{i:02}"), "same", 0))
                .collect();
            let sorted = Sorted::new(items);
            let view = sorted.view(Key::Name);
            assert_eq!(run_end(view, 0, Key::Name), len);
            assert_eq!(run_start(view, len, Key::Name), 0);
            assert_eq!(run_end(view, 0, Key::Id), 1);
            assert_eq!(run_start(view, len, Key::Id), len - 1);
        }
    }
}
