//! Shared by the List tests: generated catalogs, a reference order computed the
//! simple way (sort everything), and the checks every INVALID_ARGUMENT must pass.

use image_service::proto::Timestamp;
use image_service::proto::compute::image::Status as ImageStatus;
use image_service::proto::{compute, container_registry};
use image_service::store::catalog::{Catalog, ImageList};
use image_service::store::{MemoryRepository, Repositories};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Backends serving `catalog` from memory, as `serve` does.
pub fn repositories(catalog: Catalog) -> Repositories {
    Repositories::in_memory(MemoryRepository::new(catalog))
}

/// The folder of [`big_compute_catalog`] that holds 3,000 images.
pub const BIG_FOLDER: &str = "b1gbigf0lder00000000";
pub const FAMILIES: [&str; 4] = ["ubuntu-2204-lts", "debian-12", "app-base", "windows-2022"];
/// A name that needs every escape the filter language has.
pub const AWKWARD_NAME: &str = "it's \"quoted\"\\back\tslash";

/// 3,000 images in [`BIG_FOLDER`] and 600 in three other folders: four
/// families and none, every status, ids in no particular order, many equal
/// names and creation times (so ties must be broken by id).
pub fn big_compute_catalog() -> Vec<compute::Image> {
    (0..3600u32)
        .map(|i| {
            let folder = if i < 3000 {
                BIG_FOLDER.to_owned()
            } else {
                format!("b1gotherf0lder{:06}", i % 3)
            };
            let status = if i % 11 == 0 {
                ImageStatus::Error
            } else if i % 13 == 0 {
                ImageStatus::Creating
            } else if i % 17 == 0 {
                ImageStatus::Deleting
            } else {
                ImageStatus::Ready
            };
            let name = if i == 1234 {
                AWKWARD_NAME.to_owned()
            } else {
                format!("img-{:03}", (i * 31) % 700)
            };
            compute::Image {
                // Scrambled, unique (the suffix), 20 characters.
                id: format!("fd8{:06}z{:010}", (i * 7919) % 1_000_000, i),
                folder_id: folder,
                created_at: Some(Timestamp {
                    seconds: 1_750_000_000 + i64::from((i * 104_729) % 1000) * 60,
                    nanos: if i % 4 == 0 { 500_000_000 } else { 0 },
                }),
                name,
                family: match i % 5 {
                    4 => String::new(),
                    f => FAMILIES[f as usize].to_owned(),
                },
                status: status as i32,
                ..Default::default()
            }
        })
        .collect()
}

pub fn created_key(timestamp: Option<&Timestamp>) -> (i64, i32) {
    timestamp.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

/// Ids of `images` sorted by `field` in `direction`, ties by id ascending.
pub fn compute_reference(images: &[&compute::Image], field: &str, desc: bool) -> Vec<String> {
    let mut sorted = images.to_vec();
    sorted.sort_by(|a, b| {
        let primary = match field {
            "id" => a.id.cmp(&b.id),
            "name" => a.name.cmp(&b.name),
            "createdAt" => {
                created_key(a.created_at.as_ref()).cmp(&created_key(b.created_at.as_ref()))
            }
            other => panic!("no reference order for {other}"),
        };
        let primary = if desc { primary.reverse() } else { primary };
        primary.then_with(|| a.id.cmp(&b.id))
    });
    sorted.into_iter().map(|i| i.id.clone()).collect()
}

/// Registries and repositories of [`container_catalog`].
pub const FOLDER_A: &str = "b1gfolderaaaaaaaaaaa";
pub const FOLDER_B: &str = "b1gfolderbbbbbbbbbbb";
/// Listed, in FOLDER_A.
pub const REGISTRY_1: &str = "crpregistry100000001";
/// Listed, in FOLDER_A.
pub const REGISTRY_2: &str = "crpregistry200000002";
/// Listed, in FOLDER_B.
pub const REGISTRY_3: &str = "crpregistry300000003";
/// Not in the catalog's registries.
pub const UNLISTED_REGISTRY: &str = "crpunlisted000000004";

/// Container images in repositories of four registries (one not listed),
/// with repeated digests and creation times, plus the registries.
pub fn container_catalog() -> Catalog {
    let repositories = [
        format!("{REGISTRY_1}/app"),
        format!("{REGISTRY_1}/team/db"),
        format!("{REGISTRY_2}/web"),
        format!("{REGISTRY_3}/x"),
        format!("{UNLISTED_REGISTRY}/y"),
    ];
    let container_images = (0..400u32)
        .map(|i| container_registry::Image {
            id: format!("crp{:06}i{:010}", (i * 7919) % 1_000_000, i),
            name: repositories[(i as usize * 7) % repositories.len()].clone(),
            digest: format!("sha256:{:064x}", (i * 37) % 90),
            compressed_size: i64::from(i) * 1000,
            tags: vec![format!("v{i}")],
            created_at: Some(Timestamp {
                seconds: 1_760_000_000 + i64::from((i * 613) % 120) * 3600,
                nanos: 0,
            }),
            ..Default::default()
        })
        .collect::<Vec<_>>();
    let registry = |id: &str, folder: &str| container_registry::Registry {
        id: id.into(),
        folder_id: folder.into(),
        name: format!("name-of-{id}"),
        status: container_registry::registry::Status::Active as i32,
        ..Default::default()
    };
    Catalog {
        container_images: ImageList::from_images(
            container_images,
            |i: &container_registry::Image| &i.id,
        )
        .expect("unique ids"),
        compute_images: ImageList::default(),
        container_registries: vec![
            registry(REGISTRY_1, FOLDER_A),
            registry(REGISTRY_2, FOLDER_A),
            registry(REGISTRY_3, FOLDER_B),
        ],
    }
}

/// Ids of `images` in the order of `keys` (field, descending), ties by id ascending.
pub fn container_reference(
    images: &[&container_registry::Image],
    keys: &[(&str, bool)],
) -> Vec<String> {
    let mut sorted = images.to_vec();
    sorted.sort_by(|a, b| {
        keys.iter()
            .map(|&(field, desc)| {
                let order = match field {
                    "name" => a.name.cmp(&b.name),
                    "digest" => a.digest.cmp(&b.digest),
                    "created_at" => {
                        created_key(a.created_at.as_ref()).cmp(&created_key(b.created_at.as_ref()))
                    }
                    other => panic!("no reference order for {other}"),
                };
                if desc { order.reverse() } else { order }
            })
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.id.cmp(&b.id))
    });
    sorted.into_iter().map(|i| i.id.clone()).collect()
}

/// An INVALID_ARGUMENT about `field` whose description contains `text`, with
/// the BadRequest and RequestInfo details the API sends.
#[track_caller]
pub fn assert_invalid(status: &Status, field: &str, text: &str) {
    assert_eq!(
        status.code(),
        Code::InvalidArgument,
        "{field}: {}",
        status.message()
    );
    assert!(
        status
            .message()
            .starts_with(&format!("Request validation error: {field}: ")),
        "{}",
        status.message()
    );
    let details = status.get_error_details();
    let violations = &details
        .bad_request()
        .expect("a BadRequest detail")
        .field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, field);
    assert!(
        violations[0].description.contains(text),
        "{text:?} not in {:?}",
        violations[0].description
    );
    assert!(details.request_info().is_some(), "a RequestInfo detail");
}

/// Test images as the catalog holds them.
pub fn compute_list(images: impl IntoIterator<Item = compute::Image>) -> ImageList<compute::Image> {
    ImageList::from_images(images, |i| &i.id).expect("unique ids")
}
