//! The catalog file: parsing, validation and the built-in demo catalog.
//!
//! Each image is read with the proto3 JSON mapping (lowerCamelCase or snake_case
//! names, int64 as string or number, enums by name or number, RFC 3339
//! timestamps), so what the REST API or `yc --format json` prints loads as it is.
//! A catalog is either loaded whole or refused with an error that names the
//! file, the entry and the problem.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::{MAX_FOLDER_ID_CHARS, MAX_IMAGE_ID_CHARS};
use crate::proto::{self, compute, container_registry};

/// The demo catalog served when no `--catalog` is given.
pub const DEMO_CATALOG_JSON: &str = include_str!("demo.json");
const DEMO_SOURCE: &str = "built-in demo catalog";

const COMPUTE_IMAGES: &str = "computeImages";
const CONTAINER_IMAGES: &str = "containerRegistryImages";
const CONTAINER_REGISTRIES: &str = "containerRegistries";

/// Limits on compute image fields from the resource's documentation.
const MAX_NAME_CHARS: usize = 63;
const MAX_DESCRIPTION_CHARS: usize = 256;
const MAX_LABELS: usize = 64;

/// A validated catalog: every id present, unique within its list, at most 50
/// characters and printable ASCII (so a page token can carry it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Catalog {
    pub compute_images: Vec<compute::Image>,
    pub container_images: Vec<container_registry::Image>,
    /// The registries whose folder is known: a folder_id List of container
    /// images finds the images of these. Each has a folder id.
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile<'a> {
    #[serde(default, borrow, rename = "computeImages", alias = "compute_images")]
    compute_images: Vec<&'a RawValue>,
    #[serde(
        default,
        borrow,
        rename = "containerRegistryImages",
        alias = "container_registry_images"
    )]
    container_images: Vec<&'a RawValue>,
    #[serde(
        default,
        borrow,
        rename = "containerRegistries",
        alias = "container_registries"
    )]
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
        let descriptor = |name: &str| {
            pool.get_message_by_name(name)
                .ok_or_else(|| fail(None, format!("built-in descriptors lack {name}")))
        };

        let compute_images = parse_list::<compute::Image>(
            COMPUTE_IMAGES,
            &file.compute_images,
            &descriptor("yandex.cloud.compute.v1.Image")?,
            |image| &image.id,
            validate_compute_image,
        )
        .map_err(|(entry, problem)| fail(Some(entry), problem))?;
        let container_images = parse_list::<container_registry::Image>(
            CONTAINER_IMAGES,
            &file.container_images,
            &descriptor("yandex.cloud.containerregistry.v1.Image")?,
            |image| &image.id,
            |_| Ok(()),
        )
        .map_err(|(entry, problem)| fail(Some(entry), problem))?;
        let container_registries = parse_list::<container_registry::Registry>(
            CONTAINER_REGISTRIES,
            &file.container_registries,
            &descriptor("yandex.cloud.containerregistry.v1.Registry")?,
            |registry| &registry.id,
            validate_registry,
        )
        .map_err(|(entry, problem)| fail(Some(entry), problem))?;

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
        let mut out = String::from("{\n");
        write_list(&mut out, COMPUTE_IMAGES, &self.compute_images, &compute).map_err(&fail)?;
        out.push_str(",\n");
        write_list(
            &mut out,
            CONTAINER_IMAGES,
            &self.container_images,
            &container,
        )
        .map_err(&fail)?;
        out.push_str(",\n");
        write_list(
            &mut out,
            CONTAINER_REGISTRIES,
            &self.container_registries,
            &registry,
        )
        .map_err(&fail)?;
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

/// Parses one list of images or registries, checking ids (present, short enough, unique) and
/// the per-type rules in `validate`.
fn parse_list<T: Message + Default>(
    list: &'static str,
    raw_entries: &[&RawValue],
    descriptor: &MessageDescriptor,
    id_of: impl Fn(&T) -> &String,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<Vec<T>, (EntryRef, String)> {
    let mut first_index_of: HashMap<String, usize> = HashMap::with_capacity(raw_entries.len());
    let mut items = Vec::with_capacity(raw_entries.len());
    for (index, raw) in raw_entries.iter().enumerate() {
        let entry = |id: Option<&str>| EntryRef {
            list,
            index,
            id: id.map(str::to_owned),
        };
        let item: T = parse_entry(raw.get(), descriptor)
            .map_err(|problem| (entry(best_effort_id(raw.get()).as_deref()), problem))?;
        let id = id_of(&item);
        let located = |problem: String| (entry(Some(id)), problem);
        if id.is_empty() {
            return Err(located("id is empty".into()));
        }
        let chars = id.chars().count();
        if chars > MAX_IMAGE_ID_CHARS {
            return Err(located(format!(
                "id is {chars} characters long, at most {MAX_IMAGE_ID_CHARS} allowed"
            )));
        }
        if !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(located(
                "id must be printable ASCII without spaces (page tokens carry it)".into(),
            ));
        }
        validate(&item).map_err(located)?;
        if let Some(first) = first_index_of.insert(id.clone(), index) {
            return Err(located(format!(
                "duplicate id, first used by {list}[{first}]"
            )));
        }
        items.push(item);
    }
    Ok(items)
}

/// `"list": [entry, ...]` with one entry per line.
fn write_list<T: Message>(
    out: &mut String,
    list: &str,
    items: &[T],
    descriptor: &MessageDescriptor,
) -> Result<(), String> {
    out.push_str(&format!("  {list:?}: ["));
    for (index, item) in items.iter().enumerate() {
        let message = DynamicMessage::decode(descriptor.clone(), item.encode_to_vec().as_slice())
            .map_err(|err| format!("{list}[{index}]: cannot encode: {err}"))?;
        let value = message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .map_err(|err| format!("{list}[{index}]: cannot write JSON: {err}"))?;
        out.push_str(if index == 0 { "\n    " } else { ",\n    " });
        write_sorted(out, &value);
    }
    out.push_str(if items.is_empty() { "]" } else { "\n  ]" });
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

fn parse_entry<T: Message + Default>(
    json: &str,
    descriptor: &MessageDescriptor,
) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize(descriptor.clone(), &mut deserializer)
        .map_err(|err| err.to_string())?;
    deserializer.end().map_err(|err| err.to_string())?;
    message
        .transcode_to::<T>()
        .map_err(|err| format!("cannot convert to {}: {err}", descriptor.full_name()))
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

    #[test]
    fn demo_catalog_is_valid_and_not_empty() {
        let demo = Catalog::demo().unwrap();
        assert!(demo.compute_images.len() >= 4);
        assert!(demo.container_images.len() >= 2);
    }

    #[test]
    fn demo_catalog_lists_the_registries_of_its_container_images() {
        let demo = Catalog::demo().unwrap();
        for image in &demo.container_images {
            let registry = crate::domain::container::registry_of(&image.name).unwrap();
            assert!(
                demo.container_registries.iter().any(|r| r.id == registry),
                "{registry}"
            );
        }
    }

    #[test]
    fn registries_are_checked_like_images() {
        let err = Catalog::from_json(
            "c.json",
            r#"{"containerRegistries": [{"id": "r1", "folderId": "f"}, {"id": "r1", "folder_id": "g"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"catalog c.json: containerRegistries[1] (id "r1"): duplicate id, first used by containerRegistries[0]"#
        );
        let err = Catalog::from_json("c.json", r#"{"container_registries": [{"id": "r1"}]}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
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
        let err = Catalog::from_json(
            "c.json",
            r#"{"computeImages": [{"id": "a", "name": "n"}, {"id": "a", "name": "m"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"catalog c.json: computeImages[1] (id "a"): duplicate id, first used by computeImages[0]"#
        );
    }
}
