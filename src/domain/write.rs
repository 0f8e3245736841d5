//! The compute writes' requests, parsed once into values that keep every
//! official field rule (`rules`): what Create and Update will act on. A
//! request that breaks a rule is INVALID_ARGUMENT naming the field.

use std::collections::BTreeMap;

use super::rules::{self, IMAGE_DESCRIPTION, IMAGE_FAMILY, IMAGE_NAME, TextRule};
use super::{FolderId, ImageId};
use crate::error::ApiError;
use crate::proto::compute::create_image_request::Source;
use crate::proto::compute::{CreateImageRequest, UpdateImageRequest};

/// `min_disk_size`: 4 MiB to 4 TiB; 0 means unset.
pub const MIN_DISK_SIZE: std::ops::RangeInclusive<i64> = 4 << 20..=4 << 40;

/// Each of `product_ids`, and the disk and snapshot a Create can start from
/// (an image source is an `ImageId`, which keeps the same rule).
const PRODUCT_ID: TextRule = TextRule::new("product_ids", 50, None);
const SOURCE_DISK_ID: TextRule = TextRule::new("disk_id", 50, None);
const SOURCE_SNAPSHOT_ID: TextRule = TextRule::new("snapshot_id", 50, None);

/// The paths `update_mask` may name, by their proto and their JSON names.
const UPDATABLE: [(&str, &str, Updatable); 4] = [
    ("name", "name", Updatable::Name),
    ("description", "description", Updatable::Description),
    ("min_disk_size", "minDiskSize", Updatable::MinDiskSize),
    ("labels", "labels", Updatable::Labels),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Updatable {
    Name,
    Description,
    MinDiskSize,
    Labels,
}

/// What a new image is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Image(ImageId),
    Disk(String),
    Snapshot(String),
    Uri(String),
}

/// A valid Create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewImage {
    pub folder_id: FolderId,
    pub request: CreateImageRequest,
    pub source: ImageSource,
}

impl NewImage {
    pub fn parse(request: CreateImageRequest) -> Result<Self, ApiError> {
        let folder_id = FolderId::parse("folder_id", request.folder_id.clone())?;
        IMAGE_NAME.check(&request.name)?;
        IMAGE_DESCRIPTION.check(&request.description)?;
        rules::check_labels(&request.labels)?;
        IMAGE_FAMILY.check(&request.family)?;
        check_min_disk_size(request.min_disk_size)?;
        for product_id in &request.product_ids {
            PRODUCT_ID.check(product_id)?;
        }
        let source = match &request.source {
            Some(Source::ImageId(id)) => {
                ImageSource::Image(ImageId::parse("image_id", id.clone())?)
            }
            Some(Source::DiskId(id)) => ImageSource::Disk(checked(SOURCE_DISK_ID, id)?),
            Some(Source::SnapshotId(id)) => ImageSource::Snapshot(checked(SOURCE_SNAPSHOT_ID, id)?),
            Some(Source::Uri(uri)) => ImageSource::Uri(uri.clone()),
            None => {
                return Err(ApiError::invalid_argument(
                    "source",
                    "exactly one of image_id, disk_id, snapshot_id, uri is required",
                ));
            }
        };
        Ok(Self {
            folder_id,
            request,
            source,
        })
    }
}

/// A valid Update request: the image and the fields it sets (None: kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUpdate {
    pub image_id: ImageId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub min_disk_size: Option<i64>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl ImageUpdate {
    /// Without `update_mask` every updatable field is set from the request
    /// (those left out reset to their defaults); with it, only the paths named.
    pub fn parse(request: UpdateImageRequest) -> Result<Self, ApiError> {
        let image_id = ImageId::parse("image_id", request.image_id)?;
        let mut named = Vec::new();
        match &request.update_mask {
            None => named.extend(UPDATABLE.iter().map(|(_, _, field)| *field)),
            Some(mask) => {
                for path in &mask.paths {
                    let field = UPDATABLE
                        .iter()
                        .find(|(proto, json, _)| path == proto || path == json)
                        .map(|(_, _, field)| *field)
                        .ok_or_else(|| {
                            ApiError::invalid_argument(
                                "update_mask",
                                format!("unknown path {path:?}: use name, description, min_disk_size or labels"),
                            )
                        })?;
                    named.push(field);
                }
            }
        }
        let sets = |field: Updatable| named.contains(&field);
        let name = sets(Updatable::Name).then_some(request.name);
        let description = sets(Updatable::Description).then_some(request.description);
        let min_disk_size = sets(Updatable::MinDiskSize).then_some(request.min_disk_size);
        let labels = sets(Updatable::Labels).then_some(request.labels);
        if let Some(name) = &name {
            IMAGE_NAME.check(name)?;
        }
        if let Some(description) = &description {
            IMAGE_DESCRIPTION.check(description)?;
        }
        if let Some(size) = min_disk_size {
            check_min_disk_size(size)?;
        }
        if let Some(labels) = &labels {
            rules::check_labels(labels)?;
        }
        Ok(Self {
            image_id,
            name,
            description,
            min_disk_size,
            labels,
        })
    }
}

fn checked(rule: TextRule, value: &str) -> Result<String, ApiError> {
    rule.check(value)?;
    Ok(value.to_owned())
}

fn check_min_disk_size(size: i64) -> Result<(), ApiError> {
    if size == 0 || MIN_DISK_SIZE.contains(&size) {
        return Ok(());
    }
    Err(ApiError::invalid_argument(
        "min_disk_size",
        format!(
            "must be 0 (unset) or from {} to {} bytes, got {size}",
            MIN_DISK_SIZE.start(),
            MIN_DISK_SIZE.end()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A change to a valid request.
    type Edit = fn(&mut CreateImageRequest);

    fn create(edit: impl FnOnce(&mut CreateImageRequest)) -> Result<NewImage, String> {
        let mut request = CreateImageRequest {
            folder_id: "b1gfolder".into(),
            name: "my-image".into(),
            source: Some(Source::Uri(
                "https://storage.yandexcloud.net/b/i.qcow2".into(),
            )),
            ..Default::default()
        };
        edit(&mut request);
        NewImage::parse(request).map_err(|err| err.to_string())
    }

    #[test]
    fn a_create_keeps_every_field_rule() {
        assert!(create(|_| {}).is_ok());
        assert!(create(|r| r.min_disk_size = 4 << 20).is_ok());
        let field_of = |result: Result<NewImage, String>| {
            let err = result.expect_err("refused");
            err.split(':').next().unwrap_or_default().to_owned()
        };
        let cases: [(&str, Edit); 12] = [
            ("folder_id", |r| r.folder_id.clear()),
            ("folder_id", |r| r.folder_id = "f".repeat(51)),
            ("name", |r| r.name = "My image".into()),
            ("description", |r| r.description = "d".repeat(257)),
            ("labels", |r| {
                r.labels.insert("Env".into(), "x".into());
            }),
            ("family", |r| r.family = "ab".into()),
            ("min_disk_size", |r| r.min_disk_size = 1024),
            ("min_disk_size", |r| r.min_disk_size = (4 << 40) + 1),
            ("product_ids", |r| r.product_ids = vec!["p".repeat(51)]),
            ("source", |r| r.source = None),
            ("image_id", |r| {
                r.source = Some(Source::ImageId(String::new()))
            }),
            ("disk_id", |r| {
                r.source = Some(Source::DiskId("d".repeat(51)))
            }),
        ];
        for (field, edit) in cases {
            assert_eq!(field_of(create(edit)), field, "{field}");
        }
    }

    #[test]
    fn an_update_sets_what_its_mask_names() {
        let request = |paths: Option<&[&str]>| UpdateImageRequest {
            image_id: "fd8abc".into(),
            update_mask: paths.map(|paths| prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            name: "new-name".into(),
            description: String::new(),
            min_disk_size: 0,
            labels: [("env".to_owned(), "prod".to_owned())].into(),
        };
        let all = ImageUpdate::parse(request(None)).unwrap();
        assert_eq!(all.name.as_deref(), Some("new-name"));
        assert_eq!(all.description.as_deref(), Some(""));
        assert_eq!(all.min_disk_size, Some(0));
        assert!(all.labels.is_some());
        let labels_only = ImageUpdate::parse(request(Some(&["labels"]))).unwrap();
        assert_eq!(labels_only.name, None);
        assert!(labels_only.labels.is_some());
        let by_json_name = ImageUpdate::parse(request(Some(&["minDiskSize", "name"]))).unwrap();
        assert_eq!(by_json_name.min_disk_size, Some(0));
        assert_eq!(by_json_name.name.as_deref(), Some("new-name"));
        let refusal = |request: UpdateImageRequest| match ImageUpdate::parse(request) {
            Ok(update) => panic!("accepted: {update:?}"),
            Err(err) => err.to_string(),
        };
        let unknown = refusal(request(Some(&["family"])));
        assert!(
            unknown.starts_with("update_mask: unknown path \"family\""),
            "{unknown}"
        );
        let mut bad = request(Some(&["name"]));
        bad.name = "Bad Name".into();
        assert!(refusal(bad).starts_with("name: "));
        let mut no_id = request(None);
        no_id.image_id.clear();
        assert!(refusal(no_id).starts_with("image_id: "));
    }
}
