//! The catalog file: parsing, validation and the built-in demo catalog.
//!
//! Each image is read with the proto3 JSON mapping (lowerCamelCase or snake_case
//! names, int64 as string or number, enums by name or number, RFC 3339
//! timestamps), so what the REST API or `yc --format json` prints loads as it is.
//! A catalog is either loaded whole or refused with an error that names the
//! file, the entry and the problem.

mod list;

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

pub use list::{Duplicate, ImageList};

use crate::domain::{MAX_FOLDER_ID_CHARS, MAX_IMAGE_ID_CHARS, rules};
use crate::proto::{self, compute, container_registry};
pub(crate) use list::EncodedImages;

/// The demo catalog served when no `--catalog` is given.
pub const DEMO_CATALOG_JSON: &str = include_str!("demo.json");
const DEMO_SOURCE: &str = "built-in demo catalog";

const COMPUTE_IMAGES: &str = "computeImages";
const CONTAINER_IMAGES: &str = "containerRegistryImages";
const CONTAINER_REGISTRIES: &str = "containerRegistries";

/// Limits on compute image fields: the API's (`domain::rules`). A catalog
/// entry must have a name; its patterns are the API's to enforce on Create.
const MAX_NAME_CHARS: usize = rules::IMAGE_NAME.max_chars;
const MAX_DESCRIPTION_CHARS: usize = rules::IMAGE_DESCRIPTION.max_chars;
const MAX_LABELS: usize = rules::MAX_LABELS;

/// A validated catalog: every id present, unique within its list, at most 50
/// characters and printable ASCII (so a page token can carry it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Catalog {
    pub compute_images: ImageList<compute::Image>,
    pub container_images: ImageList<container_registry::Image>,
    /// The registries whose folder is known: a folder_id List of container
    /// images finds the images of these. Each has a folder id. Few, so kept
    /// decoded.
    pub container_registries: Vec<container_registry::Registry>,
}

/// Where in the catalog a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    pub list: &'static str,
    pub index: usize,
    pub id: Option<String>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.list, self.index)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id:?})")?;
        }
        Ok(())
    }
}

/// Why a catalog was refused. Displays as `SOURCE: LIST[INDEX] (id "ID"): PROBLEM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("catalog {source_name}: {}{problem}", entry.as_ref().map(|e| format!("{e}: ")).unwrap_or_default())]
pub struct CatalogError {
    pub source_name: String,
    pub entry: Option<EntryRef>,
    pub problem: String,
}

/// The top level of a catalog file. Unknown keys are refused, not ignored.
/// Keys in lowerCamelCase, or as the proto names them (the field names).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CatalogFile<'a> {
    #[serde(default, borrow, alias = "compute_images")]
    compute_images: Vec<&'a RawValue>,
    #[serde(default, borrow, alias = "container_registry_images")]
    container_registry_images: Vec<&'a RawValue>,
    #[serde(default, borrow, alias = "container_registries")]
    container_registries: Vec<&'a RawValue>,
}

impl Catalog {
    /// Reads and validates a catalog file.
    pub fn from_file(path: &Path) -> Result<Self, CatalogError> {
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| CatalogError {
            source_name: source_name.clone(),
            entry: None,
            problem: format!("cannot read the file: {err}"),
        })?;
        Self::from_json(&source_name, &text)
    }

    /// The built-in demo catalog.
    pub fn demo() -> Result<Self, CatalogError> {
        Self::from_json(DEMO_SOURCE, DEMO_CATALOG_JSON)
    }

    /// Parses and validates catalog JSON; `source_name` is what errors call it.
    pub fn from_json(source_name: &str, text: &str) -> Result<Self, CatalogError> {
        let fail = |entry: Option<EntryRef>, problem: String| CatalogError {
            source_name: source_name.to_owned(),
            entry,
            problem,
        };
        let file: CatalogFile<'_> =
            serde_json::from_str(text).map_err(|err| fail(None, format!("invalid JSON: {err}")))?;
        let pool = proto::descriptor_pool()
            .map_err(|err| fail(None, format!("built-in descriptors are broken: {err}")))?;
        let compute_images = parse_entries::<compute::Image>(&file.compute_images, pool, &fail)?;
        let container_images = parse_entries(&file.container_registry_images, pool, &fail)?;
        let registries = parse_entries::<container_registry::Registry>;
        let container_registries = registries(&file.container_registries, pool, &fail)?
            .iter()
            .collect();

        Ok(Self {
            compute_images,
            container_images,
            container_registries,
        })
    }

    /// The catalog as a catalog file: proto3 JSON (lowerCamelCase names,
    /// defaults left out, keys sorted), one list per kind, one entry per line
    /// in the order held.
    /// [`Catalog::from_json`] reads it back to an equal catalog.
    pub fn to_json(&self) -> Result<String, CatalogError> {
        let fail = |problem: String| CatalogError {
            source_name: "export".to_owned(),
            entry: None,
            problem,
        };
        let pool = proto::descriptor_pool()
            .map_err(|err| fail(format!("built-in descriptors are broken: {err}")))?;
        let descriptor = |name: &str| {
            pool.get_message_by_name(name)
                .ok_or_else(|| fail(format!("built-in descriptors lack {name}")))
        };
        let compute = descriptor("yandex.cloud.compute.v1.Image")?;
        let container = descriptor("yandex.cloud.containerregistry.v1.Image")?;
        let registry = descriptor("yandex.cloud.containerregistry.v1.Registry")?;
        // Each list as its entries' encodings, made one at a time as written.
        type Encoded<'a> = Box<dyn Iterator<Item = Vec<u8>> + 'a>;
        let lists: [(&str, &MessageDescriptor, Encoded<'_>); 3] = [
            (
                COMPUTE_IMAGES,
                &compute,
                Box::new(self.compute_images.iter().map(|i| i.encode_to_vec())),
            ),
            (
                CONTAINER_IMAGES,
                &container,
                Box::new(self.container_images.iter().map(|i| i.encode_to_vec())),
            ),
            (
                CONTAINER_REGISTRIES,
                &registry,
                Box::new(self.container_registries.iter().map(Message::encode_to_vec)),
            ),
        ];
        let mut out = String::from("{\n");
        for (number, (list, descriptor, items)) in lists.into_iter().enumerate() {
            if number > 0 {
                out.push_str(",\n");
            }
            write_list(&mut out, list, items, descriptor).map_err(&fail)?;
        }
        out.push_str("\n}\n");
        Ok(out)
    }

    /// A one-line summary for logs and `check-catalog`.
    pub fn summary(&self) -> String {
        format!(
            "{} compute images, {} container registry images, {} container registries",
            self.compute_images.len(),
            self.container_images.len(),
            self.container_registries.len()
        )
    }
}

/// What the loader knows of one kind of entry: its list's name, its message
/// type, its id and its own rules.
trait Entry: Message + Default + DeserializeOwned {
    const LIST: &'static str;
    const MESSAGE: &'static str;
    fn id(&self) -> &String;
    fn validate(&self) -> Result<(), String>;
}

macro_rules! entry {
    ($type:ty, $list:expr, $message:literal, $validate:expr) => {
        impl Entry for $type {
            const LIST: &'static str = $list;
            const MESSAGE: &'static str = $message;
            fn id(&self) -> &String {
                &self.id
            }
            fn validate(&self) -> Result<(), String> {
                $validate(self)
            }
        }
    };
}

entry!(
    compute::Image,
    COMPUTE_IMAGES,
    "yandex.cloud.compute.v1.Image",
    validate_compute_image
);
entry!(
    container_registry::Image,
    CONTAINER_IMAGES,
    "yandex.cloud.containerregistry.v1.Image",
    |_| Ok(())
);
entry!(
    container_registry::Registry,
    CONTAINER_REGISTRIES,
    "yandex.cloud.containerregistry.v1.Registry",
    validate_registry
);

/// One list of the file, parsed and checked, or the error naming the entry.
fn parse_entries<T: Entry>(
    raw_entries: &[&RawValue],
    pool: &DescriptorPool,
    fail: &impl Fn(Option<EntryRef>, String) -> CatalogError,
) -> Result<ImageList<T>, CatalogError> {
    let descriptor = pool
        .get_message_by_name(T::MESSAGE)
        .ok_or_else(|| fail(None, format!("built-in descriptors lack {}", T::MESSAGE)))?;
    parse_list::<T>(T::LIST, raw_entries, &descriptor, T::id, T::validate)
        .map_err(|(entry, problem)| fail(Some(entry), problem))
}

/// Entries one loader thread takes at a time: big enough that handing out work
/// costs nothing, small enough that two threads finish close together.
const CHUNK_ENTRIES: usize = 2048;

/// Parses one list of images or registries, checking ids (present, short enough, unique) and
/// the per-type rules in `validate`, on every core: JSON parsing is most of the
/// start-up time, and entries are independent.
/// The error is the one a front-to-back pass would meet first.
fn parse_list<T: Message + Default + DeserializeOwned>(
    list: &'static str,
    raw_entries: &[&RawValue],
    descriptor: &MessageDescriptor,
    id_of: impl Fn(&T) -> &String + Sync,
    validate: impl Fn(&T) -> Result<(), String> + Sync,
) -> Result<ImageList<T>, (EntryRef, String)> {
    let chunks: Vec<&[&RawValue]> = raw_entries.chunks(CHUNK_ENTRIES).collect();
    let parse_chunk = |number: usize, descriptor: &MessageDescriptor| {
        parse_chunk(
            list,
            number * CHUNK_ENTRIES,
            chunks[number],
            descriptor,
            &id_of,
            &validate,
        )
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(chunks.len());
    let mut parsed: Vec<(usize, ParsedChunk)> = if threads <= 1 {
        (0..chunks.len())
            .map(|n| (n, parse_chunk(n, descriptor)))
            .collect()
    } else {
        // Threads take chunk numbers in turn; once a chunk fails, later chunks
        // can't change the outcome and are skipped.
        let next = AtomicUsize::new(0);
        let first_failed = AtomicUsize::new(usize::MAX);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let descriptor = own_descriptor(descriptor);
                        let mut done = Vec::new();
                        loop {
                            let number = next.fetch_add(1, Ordering::Relaxed);
                            if number >= chunks.len()
                                || number > first_failed.load(Ordering::Relaxed)
                            {
                                return done;
                            }
                            let chunk = parse_chunk(number, &descriptor);
                            if chunk.failure.is_some() {
                                first_failed.fetch_min(number, Ordering::Relaxed);
                            }
                            done.push((number, chunk));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().expect("a catalog loader thread panicked"))
                .collect()
        })
    };
    parsed.sort_unstable_by_key(|(number, _)| *number);

    // Chunks up to the first failed one, all present: a chunk is skipped only
    // after an earlier one failed.
    let mut failure = None;
    let mut images = Vec::with_capacity(parsed.len());
    for (_, chunk) in parsed {
        images.push(chunk.images);
        if chunk.failure.is_some() {
            failure = chunk.failure;
            break;
        }
    }
    // A repeated id before the failing entry is met first, so it is reported first.
    let images = ImageList::from_chunks(images).map_err(|dup| {
        (
            EntryRef {
                list,
                index: dup.position,
                id: Some(dup.id),
            },
            format!("duplicate id, first used by {list}[{}]", dup.first),
        )
    })?;
    match failure {
        Some(failure) => Err(failure),
        None => Ok(images),
    }
}

/// The same message descriptor in a descriptor pool of the calling thread's
/// own, for the entries the generated parser turns down. Descriptors are reference-counted handles into their pool, and the
/// JSON parser takes and drops them for every field: threads sharing one pool
/// spend more time passing its counter's cache line around than parsing (2
/// threads took twice the CPU time of 1).
fn own_descriptor(shared: &MessageDescriptor) -> MessageDescriptor {
    DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET)
        .ok()
        .and_then(|pool| pool.get_message_by_name(shared.full_name()))
        .unwrap_or_else(|| shared.clone())
}

/// One chunk's images, up to and without its first bad entry.
struct ParsedChunk {
    images: EncodedImages,
    failure: Option<(EntryRef, String)>,
}

fn parse_chunk<T: Message + Default + DeserializeOwned>(
    list: &'static str,
    first_index: usize,
    raw_entries: &[&RawValue],
    descriptor: &MessageDescriptor,
    id_of: &impl Fn(&T) -> &String,
    validate: &impl Fn(&T) -> Result<(), String>,
) -> ParsedChunk {
    let mut images = EncodedImages::default();
    let mut scratch = Vec::new();
    for (offset, raw) in raw_entries.iter().enumerate() {
        let index = first_index + offset;
        let entry = |id: Option<&str>| EntryRef {
            list,
            index,
            id: id.map(str::to_owned),
        };
        let checked = parse_entry::<T>(raw.get(), descriptor, &mut scratch)
            .map_err(|problem| (entry(best_effort_id(raw.get()).as_deref()), problem))
            .and_then(|item| {
                check_entry(id_of(&item), &item, validate)
                    .map_err(|problem| (entry(Some(id_of(&item))), problem))?;
                Ok(item)
            });
        match checked {
            Ok(item) => images.push(id_of(&item), &item),
            Err(failure) => {
                return ParsedChunk {
                    images,
                    failure: Some(failure),
                };
            }
        }
    }
    ParsedChunk {
        images,
        failure: None,
    }
}

/// `"list": [entry, ...]` with one entry per line.
fn write_list(
    out: &mut String,
    list: &str,
    items: impl Iterator<Item = Vec<u8>>,
    descriptor: &MessageDescriptor,
) -> Result<(), String> {
    out.push_str(&format!("  {list:?}: ["));
    let mut empty = true;
    for (index, item) in items.enumerate() {
        empty = false;
        let message = DynamicMessage::decode(descriptor.clone(), item.as_slice())
            .map_err(|err| format!("{list}[{index}]: cannot encode: {err}"))?;
        let value = message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|err| format!("{list}[{index}]: cannot write JSON: {err}"))?;
        out.push_str(if index == 0 { "\n    " } else { ",\n    " });
        write_sorted(out, &value);
    }
    out.push_str(if empty { "]" } else { "\n  ]" });
    Ok(())
}

/// Compact JSON with every object's keys in sorted order: map fields
/// (`labels`) have no order of their own, and the same catalog must export to
/// the same bytes.
fn write_sorted(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(item) = object.get(key) {
                    write_sorted(out, item);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The id rules every image follows, then the per-type ones.
fn check_entry<T>(
    id: &str,
    item: &T,
    validate: &impl Fn(&T) -> Result<(), String>,
) -> Result<(), String> {
    if id.is_empty() {
        return Err("id is empty".into());
    }
    let chars = id.chars().count();
    if chars > MAX_IMAGE_ID_CHARS {
        return Err(format!(
            "id is {chars} characters long, at most {MAX_IMAGE_ID_CHARS} allowed"
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("id must be printable ASCII without spaces (page tokens carry it)".into());
    }
    validate(item)
}

/// One entry's JSON, read with the proto3 JSON mapping into `T`. `scratch` is
/// a buffer the caller keeps between entries.
///
/// pbjson's generated serde reads a typical entry in a fraction of the time
/// of prost-reflect's descriptor-driven parser (about 10 µs a compute image).
/// But it refuses `null` for scalar, repeated and map fields, which proto3
/// JSON allows, and its errors say less; so whatever it turns down is read
/// again by prost-reflect, whose verdict and message stand.
fn parse_entry<T: Message + Default + DeserializeOwned>(
    json: &str,
    descriptor: &MessageDescriptor,
    scratch: &mut Vec<u8>,
) -> Result<T, String> {
    match serde_json::from_str(json) {
        Ok(item) => Ok(item),
        Err(_) => parse_entry_by_descriptor(json, descriptor, scratch),
    }
}

/// The descriptor-driven reading of [`parse_entry`]. Its errors start with
/// the path of the field they are in (`os.type: ...`, `labels.env: ...`,
/// `productIds[1]: ...`), tracked only here, off the fast path.
fn parse_entry_by_descriptor<T: Message + Default>(
    json: &str,
    descriptor: &MessageDescriptor,
    scratch: &mut Vec<u8>,
) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let mut track = serde_path_to_error::Track::new();
    let message = DynamicMessage::deserialize(
        descriptor.clone(),
        serde_path_to_error::Deserializer::new(&mut deserializer, &mut track),
    )
    .map_err(|err| with_field_path(&track.path(), &err))?;
    deserializer.end().map_err(|err| without_position(&err))?;
    // What `transcode_to` does, less a pass: its `encode_to_vec` first walks
    // the whole message to size a new buffer. A Vec grows as needed, so
    // `encode_raw` can't run out of room.
    scratch.clear();
    message.encode_raw(scratch);
    T::decode(scratch.as_slice())
        .map_err(|err| format!("cannot convert to {}: {err}", descriptor.full_name()))
}

/// `path: problem`, or just the problem when it is about the entry as a whole.
fn with_field_path(path: &serde_path_to_error::Path, err: &serde_json::Error) -> String {
    let problem = without_position(err);
    if path.iter().next().is_none() {
        return problem;
    }
    format!("{path}: {problem}")
}

/// serde_json's message without its `at line L column C`: the position is in
/// the entry's own text, not in the file, so it would only mislead.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match text.strip_suffix(&suffix) {
        Some(problem) => problem.to_owned(),
        None => text,
    }
}

/// The `id` of an entry that failed to parse, if it has a readable one, to make
/// the error easier to find.
fn best_effort_id(json: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(json).ok()?.id
}

fn validate_registry(registry: &container_registry::Registry) -> Result<(), String> {
    if registry.folder_id.is_empty() {
        return Err("folderId is empty".into());
    }
    let chars = registry.folder_id.chars().count();
    if chars > MAX_FOLDER_ID_CHARS {
        return Err(format!(
            "folderId is {chars} characters long, at most {MAX_FOLDER_ID_CHARS} allowed"
        ));
    }
    Ok(())
}

fn validate_compute_image(image: &compute::Image) -> Result<(), String> {
    let name_chars = image.name.chars().count();
    if !(1..=MAX_NAME_CHARS).contains(&name_chars) {
        return Err(format!(
            "name must be 1-{MAX_NAME_CHARS} characters long, got {name_chars}"
        ));
    }
    let description_chars = image.description.chars().count();
    if description_chars > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description must be at most {MAX_DESCRIPTION_CHARS} characters long, got {description_chars}"
        ));
    }
    if image.labels.len() > MAX_LABELS {
        return Err(format!(
            "at most {MAX_LABELS} labels allowed, got {}",
            image.labels.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why `c.json` holding `json` is refused.
    fn refusal(json: &str) -> String {
        Catalog::from_json("c.json", json).unwrap_err().to_string()
    }

    #[test]
    fn demo_catalog_is_valid_and_not_empty() {
        let demo = Catalog::demo().unwrap();
        assert!(demo.compute_images.len() >= 4);
        assert!(demo.container_images.len() >= 2);
    }

    /// `count` compute images `{"id": "img<i>", "name": "n<i>"}`, with `edit`
    /// changing some entries' JSON.
    fn many_images(count: usize, edit: impl Fn(usize, String) -> String) -> String {
        let entries: Vec<String> = (0..count)
            .map(|i| edit(i, format!(r#"{{"id": "img{i}", "name": "n{i}"}}"#)))
            .collect();
        format!(r#"{{"computeImages": [{}]}}"#, entries.join(","))
    }

    #[test]
    fn a_catalog_of_many_chunks_loads_whole() {
        let count = CHUNK_ENTRIES * 3 + 5;
        let catalog = Catalog::from_json("c.json", &many_images(count, |_, e| e)).unwrap();
        assert_eq!(catalog.compute_images.len(), count);
        for i in [0, 1, CHUNK_ENTRIES - 1, CHUNK_ENTRIES, count - 1] {
            let image = catalog.compute_images.get(&format!("img{i}")).unwrap();
            assert_eq!(image.unwrap().name, format!("n{i}"));
        }
        let names: Vec<String> = catalog.compute_images.iter().map(|i| i.name).collect();
        assert_eq!(names.len(), count);
        assert_eq!(names[CHUNK_ENTRIES + 7], format!("n{}", CHUNK_ENTRIES + 7));
    }

    #[test]
    fn across_chunks_the_first_problem_in_file_order_is_reported() {
        let count = CHUNK_ENTRIES * 4;
        let late_bad = CHUNK_ENTRIES * 3 + 1;
        let early_dup = CHUNK_ENTRIES + 2;
        // A repeated id in chunk 1, an unknown field in chunk 3: the repeat is first.
        let json = many_images(count, |i, entry| match i {
            _ if i == early_dup => r#"{"id": "img5", "name": "x"}"#.into(),
            _ if i == late_bad => r#"{"id": "bad", "name": "x", "nope": 1}"#.into(),
            _ => entry,
        });
        let err = Catalog::from_json("c.json", &json).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"catalog c.json: computeImages[{early_dup}] (id "img5"): duplicate id, first used by computeImages[5]"#
            )
        );
        // An invalid entry in chunk 1, a repeat in chunk 2: the invalid entry is first.
        let early_bad = CHUNK_ENTRIES + 3;
        let late_dup = CHUNK_ENTRIES * 2 + 9;
        let json = many_images(count, |i, entry| match i {
            _ if i == early_bad => r#"{"id": "bad", "name": ""}"#.into(),
            _ if i == late_dup => r#"{"id": "img0", "name": "x"}"#.into(),
            _ => entry,
        });
        let err = Catalog::from_json("c.json", &json).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                r#"catalog c.json: computeImages[{early_bad}] (id "bad"): name must be 1-63 characters long, got 0"#
            )
        );
    }

    #[test]
    fn demo_catalog_lists_the_registries_of_its_container_images() {
        let demo = Catalog::demo().unwrap();
        for image in demo.container_images.iter() {
            let registry = crate::domain::container::registry_of(&image.name).unwrap();
            assert!(
                demo.container_registries.iter().any(|r| r.id == registry),
                "{registry}"
            );
        }
    }

    #[test]
    fn registries_are_checked_like_images() {
        assert_eq!(
            refusal(
                r#"{"containerRegistries": [{"id": "r1", "folderId": "f"}, {"id": "r1", "folder_id": "g"}]}"#
            ),
            r#"catalog c.json: containerRegistries[1] (id "r1"): duplicate id, first used by containerRegistries[0]"#
        );
        assert_eq!(
            refusal(r#"{"container_registries": [{"id": "r1"}]}"#),
            r#"catalog c.json: containerRegistries[0] (id "r1"): folderId is empty"#
        );
        let ok = Catalog::from_json(
            "c.json",
            r#"{"containerRegistries": [{"id": "r1", "folderId": "f", "name": "n", "status": "ACTIVE",
                "createdAt": "2025-01-01T00:00:00Z", "labels": {"a": "b"}}]}"#,
        )
        .unwrap();
        assert_eq!(ok.container_registries[0].name, "n");
    }

    #[test]
    fn exported_json_reads_back_equal() {
        let demo = Catalog::demo().unwrap();
        let json = demo.to_json().unwrap();
        assert_eq!(Catalog::from_json("export", &json).unwrap(), demo);
        let empty = Catalog::default().to_json().unwrap();
        assert_eq!(Catalog::from_json("e", &empty).unwrap(), Catalog::default());
    }

    /// prost-reflect's descriptor-driven reading, the loader's reference.
    fn reference_parse<T: Message + Default>(full_name: &str, json: &str) -> Result<T, String> {
        let pool = proto::descriptor_pool().unwrap();
        let descriptor = pool.get_message_by_name(full_name).unwrap();
        parse_entry_by_descriptor(json, &descriptor, &mut Vec::new())
    }

    /// pbjson's generated reading alone.
    fn generated_parse<T: DeserializeOwned>(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn entries_read_as_prost_reflect_reads_them() {
        let accepted = [
            // Every field, by JSON name.
            r#"{"id": "fd8a", "folderId": "f1", "createdAt": "2024-02-29T23:59:59.5Z",
                "name": "n", "description": "d", "labels": {"b": "2", "a": "1"},
                "family": "ubuntu", "size": "10", "storageSize": 20, "minDiskSize": "30",
                "productIds": ["p1", "p2"], "status": "READY",
                "os": {"type": "LINUX", "nvidia": {"driver": "535"}}, "pooled": true,
                "hardwareGeneration": {"generation2Features": {}},
                "kmsKey": {"keyId": "k", "versionId": "v"}}"#,
            // By proto field names, enums by number, a time zone offset.
            r#"{"id": "fd8b", "folder_id": "f1", "created_at": "2024-01-01T03:00:00+03:00",
                "min_disk_size": 7, "status": 2, "os": {"type": 2},
                "hardware_generation": {"legacy_features": {"pci_topology": "PCI_TOPOLOGY_V2"}}}"#,
            // Nanoseconds and the earliest time proto3 JSON allows.
            r#"{"id": "fd8d", "createdAt": "0001-01-01T00:00:00.000000001Z"}"#,
        ];
        for json in accepted {
            let ours: compute::Image = generated_parse(json).unwrap();
            let theirs: compute::Image =
                reference_parse("yandex.cloud.compute.v1.Image", json).unwrap();
            assert_eq!(ours, theirs, "{json}");
        }
        let container = r#"{"id": "crp1", "name": "r/app", "digest": "sha256:ab",
            "compressedSize": "5", "config": {"id": "b1", "digest": "sha256:cd", "size": 3,
            "urls": ["u"]}, "layers": [{"id": "b2", "size": "4"}], "tags": ["v1"],
            "createdAt": "2023-05-06T07:08:09Z"}"#;
        let ours: container_registry::Image = generated_parse(container).unwrap();
        let theirs: container_registry::Image =
            reference_parse("yandex.cloud.containerregistry.v1.Image", container).unwrap();
        assert_eq!(ours, theirs);

        let refused = [
            r#"{"id": "x", "colour": "blue"}"#,
            r#"{"id": "x", "status": "SHINY"}"#,
            r#"{"id": "x", "size": "many"}"#,
            r#"{"id": "x", "createdAt": "yesterday"}"#,
            r#"{"id": "x", "pooled": "yes"}"#,
            r#"{"id": 7}"#,
        ];
        let pool = proto::descriptor_pool().unwrap();
        let descriptor = pool
            .get_message_by_name("yandex.cloud.compute.v1.Image")
            .unwrap();
        for json in refused {
            assert!(generated_parse::<compute::Image>(json).is_err(), "{json}");
            let theirs = reference_parse::<compute::Image>("yandex.cloud.compute.v1.Image", json)
                .unwrap_err();
            // prost-reflect's verdict and problem, after the path of the field.
            let ours =
                parse_entry::<compute::Image>(json, &descriptor, &mut Vec::new()).unwrap_err();
            let problem = theirs
                .rsplit_once(" at line ")
                .map_or(theirs.as_str(), |(p, _)| p);
            assert!(ours.ends_with(problem), "{json}: {ours} / {theirs}");
        }
    }

    #[test]
    fn every_kind_of_type_error_names_file_entry_and_field() {
        let cases = [
            // (list, entry, expected problem)
            (
                "computeImages",
                r#"{"id": "x", "storageSize": {"a": 1}}"#,
                "storageSize: invalid type: map, expected a 64-bit signed integer or decimal string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "size": "many"}"#,
                "size: invalid digit found in string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "minDiskSize": true}"#,
                "minDiskSize: invalid type: boolean `true`, expected a 64-bit signed integer or decimal string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "name": 5}"#,
                "name: invalid type: integer `5`, expected a string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "pooled": "yes"}"#,
                "pooled: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "computeImages",
                r#"{"id": "x", "status": "SHINY"}"#,
                "status: unrecognized enum value 'SHINY'",
            ),
            (
                "computeImages",
                r#"{"id": "x", "createdAt": "yesterday"}"#,
                "createdAt: invalid rfc3339 timestamp: invalid date",
            ),
            (
                "computeImages",
                r#"{"id": "x", "labels": {"a": 1}}"#,
                "labels.a: invalid type: integer `1`, expected a string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "labels": ["a"]}"#,
                "labels: invalid type: sequence, expected a map",
            ),
            (
                "computeImages",
                r#"{"id": "x", "productIds": ["a", 2]}"#,
                "productIds[1]: invalid type: integer `2`, expected a string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "productIds": "a"}"#,
                "productIds: invalid type: string \"a\", expected a list",
            ),
            (
                "computeImages",
                r#"{"id": "x", "os": "linux"}"#,
                "os: invalid type: string \"linux\", expected a map",
            ),
            (
                "computeImages",
                r#"{"id": "x", "os": {"type": "PLAN9"}}"#,
                "os.type: unrecognized enum value 'PLAN9'",
            ),
            (
                "computeImages",
                r#"{"id": "x", "hardwareGeneration": {"legacyFeatures": {"pciTopology": 9.5}}}"#,
                "hardwareGeneration.legacyFeatures.pciTopology: invalid type: floating point `9.5`, expected a string or integer",
            ),
            (
                "computeImages",
                r#"{"id": "x", "kmsKey": {"keyId": []}}"#,
                "kmsKey.keyId: invalid type: sequence, expected a string",
            ),
            (
                "computeImages",
                r#"{"id": "x", "colour": "blue"}"#,
                "unrecognized field name 'colour'",
            ),
            (
                "containerRegistryImages",
                r#"{"id": "x", "layers": [{"id": "b", "size": "big"}]}"#,
                "layers[0].size: invalid digit found in string",
            ),
            (
                "containerRegistryImages",
                r#"{"id": "x", "config": {"urls": [1]}}"#,
                "config.urls[0]: invalid type: integer `1`, expected a string",
            ),
            (
                "containerRegistryImages",
                r#"{"id": "x", "tags": {"v": 1}}"#,
                "tags: invalid type: map, expected a list",
            ),
            (
                "containerRegistries",
                r#"{"id": "x", "folderId": "f", "labels": {"k": false}}"#,
                "labels.k: invalid type: boolean `false`, expected a string",
            ),
        ];
        let mut wrong = Vec::new();
        for (list, entry, problem) in cases {
            let json = format!(r#"{{"{list}": [{entry}]}}"#);
            let err = Catalog::from_json("c.json", &json).unwrap_err().to_string();
            let want = format!(r#"catalog c.json: {list}[0] (id "x"): {problem}"#);
            if err != want {
                wrong.push(format!("{entry}\n   got: {err}\n  want: {want}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        // An entry that isn't an object, and an id of the wrong type: no field inside to name.
        let err = Catalog::from_json("c.json", r#"{"computeImages": [[1]]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalog c.json: computeImages[0]: invalid type: sequence, expected a map"
        );
        let err = Catalog::from_json("c.json", r#"{"computeImages": [{"id": 7}]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "catalog c.json: computeImages[0]: id: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn null_fields_the_generated_parser_refuses_still_load() {
        // proto3 JSON allows null for any field; pbjson's code takes it only
        // for message fields, so the loader falls back to prost-reflect.
        let json = r#"{"id": "fd8c", "name": "c", "description": null, "size": null, "labels": null,
            "productIds": null, "status": null, "createdAt": null, "os": null}"#;
        assert!(generated_parse::<compute::Image>(json).is_err());
        let pool = proto::descriptor_pool().unwrap();
        let descriptor = pool
            .get_message_by_name("yandex.cloud.compute.v1.Image")
            .unwrap();
        let image: compute::Image = parse_entry(json, &descriptor, &mut Vec::new()).unwrap();
        assert_eq!(
            image,
            compute::Image {
                id: "fd8c".into(),
                name: "c".into(),
                ..Default::default()
            }
        );
        let catalog = Catalog::from_json(
            "c.json",
            &format!(r#"{{"computeImages": [{json}, {{"id": "fd8d", "name": "d"}}]}}"#),
        )
        .unwrap();
        assert_eq!(catalog.compute_images.len(), 2);
    }

    #[test]
    fn ids_must_be_printable_ascii() {
        let err = Catalog::from_json(
            "c.json",
            r#"{"computeImages": [{"id": "fd8 a", "name": "a"}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }

    #[test]
    fn errors_name_source_entry_and_problem() {
        assert_eq!(
            refusal(r#"{"computeImages": [{"id": "a", "name": "n"}, {"id": "a", "name": "m"}]}"#),
            r#"catalog c.json: computeImages[1] (id "a"): duplicate id, first used by computeImages[0]"#
        );
    }
}
