//! Queries of `yandex.cloud.compute.v1.ImageService`: List and GetLatestByFamily.

use super::filter::{self, column_at};
use super::order::{self, Direction, SortField, SortKey};
use super::page::ListRequest;
use super::{FolderId, ValueSet, check_length};
use crate::error::ApiError;
use crate::proto::compute::image::Status;
use crate::proto::compute::{GetImageLatestByFamilyRequest, ListImagesRequest};

pub const MAX_FILTER_CHARS: usize = 1000;
pub const MAX_ORDER_BY_CHARS: usize = 100;
/// Longest family name the pattern `[a-z][-a-z0-9]{1,61}[a-z0-9]` allows.
pub const MAX_FAMILY_CHARS: usize = 63;

/// An image family name: `[a-z][-a-z0-9]{1,61}[a-z0-9]`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Family(String);

impl Family {
    pub fn parse(field: &'static str, value: String) -> Result<Self, ApiError> {
        check_length(field, &value, MAX_FAMILY_CHARS)?;
        let valid = matches!(value.as_bytes(), [first, middle @ .., last]
            if first.is_ascii_lowercase()
                && !middle.is_empty()
                && middle
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && (last.is_ascii_lowercase() || last.is_ascii_digit()));
        if !valid {
            return Err(ApiError::invalid_argument(
                field,
                "must match the pattern [a-z][-a-z0-9]{1,61}[a-z0-9]",
            ));
        }
        Ok(Self(value))
    }
}

string_newtype!(Family, Display);

/// GetLatestByFamily: the newest READY image of a family in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestByFamily {
    pub folder_id: FolderId,
    pub family: Family,
}

impl LatestByFamily {
    pub fn parse(request: GetImageLatestByFamilyRequest) -> Result<Self, ApiError> {
        Ok(Self {
            folder_id: FolderId::parse("folder_id", request.folder_id)?,
            family: Family::parse("family", request.family)?,
        })
    }
}

/// One condition of a compute filter, on a field we filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeCondition {
    Id(ValueSet<String>),
    Name(ValueSet<String>),
    Family(ValueSet<String>),
    Status(ValueSet<Status>),
}

/// A compute List filter: conditions on `id`, `name`, `family` and `status`, all of which hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComputeImageFilter {
    conditions: Vec<ComputeCondition>,
    /// The filter's canonical text (see [`Filter`]'s Display).
    canonical: String,
}

const FILTER_FIELDS: &str = "id, name, family, status";
const STATUS_NAMES: &str = "STATUS_UNSPECIFIED, CREATING, READY, ERROR, DELETING";

impl ComputeImageFilter {
    /// Parses `filter` (at most 1000 characters).
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let (conditions, canonical) = filter::parse_field(text, MAX_FILTER_CHARS, |condition| {
            let (values, negated) = condition.predicate.values();
            let strings =
                || ValueSet::new(values.iter().map(|v| v.node.clone()).collect(), negated);
            match condition.field.node.as_str() {
                "id" => Ok(ComputeCondition::Id(strings())),
                "name" => Ok(ComputeCondition::Name(strings())),
                "family" => Ok(ComputeCondition::Family(strings())),
                "status" => {
                    let statuses = values
                            .iter()
                            .map(|v| {
                                Status::from_str_name(&v.node).ok_or_else(|| {
                                    ApiError::invalid_argument(
                                        "filter",
                                        format!(
                                            "unknown status {} at column {}; a status is one of {STATUS_NAMES}",
                                            quoted(&v.node),
                                            column_at(text, v.offset)
                                        ),
                                    )
                                })
                            })
                            .collect::<Result<_, _>>()?;
                    Ok(ComputeCondition::Status(ValueSet::new(statuses, negated)))
                }
                other => Err(ApiError::invalid_argument(
                    "filter",
                    format!(
                        "unknown field `{other}` at column {}; you can filter on {FILTER_FIELDS}",
                        column_at(text, condition.field.offset)
                    ),
                )),
            }
        })?;
        Ok(Self {
            conditions,
            canonical,
        })
    }

    pub fn conditions(&self) -> &[ComputeCondition] {
        &self.conditions
    }

    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// A value as the filter's canonical text writes it, for messages.
fn quoted(value: &str) -> String {
    let mut text = String::new();
    // Writing to a String can't fail.
    let _ = filter::write_quoted(&mut text, value);
    text
}

/// What compute List orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputeSortField {
    Id,
    Name,
    CreatedAt,
}

impl SortField for ComputeSortField {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("id", Self::Id),
        ("name", Self::Name),
        ("createdAt", Self::CreatedAt),
        ("created_at", Self::CreatedAt),
    ];
    const KNOWN: &'static str = "id, name, createdAt (or created_at)";
}

/// Which images of a folder a compute List wants, in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputeImageQuery {
    pub folder_id: FolderId,
    pub filter: ComputeImageFilter,
    /// One key; ties (and only `name` or `createdAt` can tie) go by id ascending.
    pub order: SortKey<ComputeSortField>,
}

impl ComputeImageQuery {
    /// The text page tokens fingerprint: equal for queries that mean the same.
    pub fn canonical(&self) -> String {
        format!(
            "compute.v1.Image folder_id={:?} filter={:?} order_by={}",
            self.folder_id.as_str(),
            self.filter.canonical(),
            self.order
        )
    }
}

/// A parsed compute `ListImagesRequest`.
pub type ListComputeImages = ListRequest<ComputeImageQuery>;

impl ListComputeImages {
    /// Validates every field; the first problem found is the error.
    pub fn parse(request: ListImagesRequest) -> Result<Self, ApiError> {
        let folder_id = FolderId::parse("folder_id", request.folder_id)?;
        let query = || {
            let filter = ComputeImageFilter::parse(&request.filter)?;
            let order = order::parse_field(&request.order_by, MAX_ORDER_BY_CHARS, 1)?
                .into_iter()
                .next()
                .unwrap_or(SortKey {
                    field: ComputeSortField::Id,
                    direction: Direction::Asc,
                });
            Ok(ComputeImageQuery {
                folder_id,
                filter,
                order,
            })
        };
        ListRequest::from_parts(
            request.page_size,
            &request.page_token,
            query,
            ComputeImageQuery::canonical,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(folder: &str, filter: &str, order_by: &str) -> ListImagesRequest {
        ListImagesRequest {
            folder_id: folder.into(),
            page_size: 0,
            page_token: String::new(),
            filter: filter.into(),
            order_by: order_by.into(),
        }
    }

    fn error(request: ListImagesRequest) -> String {
        ListComputeImages::parse(request).unwrap_err().to_string()
    }

    #[test]
    fn family_pattern() {
        for good in [
            "abc",
            "ubuntu-2204-lts",
            "a1b",
            "a-1",
            &format!("a{}", "b".repeat(62)),
        ] {
            assert!(Family::parse("family", good.to_owned()).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            "1ab",
            "abc-",
            "Abc",
            "ab_c",
            "ab c",
            &format!("a{}", "b".repeat(63)),
        ] {
            let err = Family::parse("family", bad.to_owned())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("family: "), "{bad}: {err}");
        }
        assert_eq!(
            Family::parse("family", String::new())
                .unwrap_err()
                .to_string(),
            "family: required field is empty"
        );
    }

    #[test]
    fn defaults_and_canonical_query() {
        let list = ListComputeImages::parse(request("f", "", "")).unwrap();
        assert_eq!(list.page.size.get(), 100);
        assert_eq!(list.page.after, None);
        assert_eq!(
            list.query.canonical(),
            r#"compute.v1.Image folder_id="f" filter="" order_by=id asc"#
        );
        // Spelling doesn't change the query.
        let a = ListComputeImages::parse(request(
            "f",
            "status=READY and name in ('x')",
            "created_at DESC",
        ))
        .unwrap();
        let b = ListComputeImages::parse(request(
            "f",
            r#"status = "READY" AND name IN ("x")"#,
            "createdAt desc",
        ))
        .unwrap();
        assert_eq!(a.query.canonical(), b.query.canonical());
    }

    #[test]
    fn filter_fields_and_values() {
        let list = ListComputeImages::parse(request(
            "f",
            r#"id = "a" AND name != "b" AND family IN ("c", "d") AND status NOT IN ("ERROR", "DELETING")"#,
            "",
        ))
        .unwrap();
        assert_eq!(
            list.query.filter.conditions(),
            &[
                ComputeCondition::Id(ValueSet::new(vec!["a".into()], false)),
                ComputeCondition::Name(ValueSet::new(vec!["b".into()], true)),
                ComputeCondition::Family(ValueSet::new(vec!["c".into(), "d".into()], false)),
                ComputeCondition::Status(ValueSet::new(
                    vec![Status::Error, Status::Deleting],
                    true
                )),
            ]
        );
        assert_eq!(
            error(request("f", r#"name = "a" AND size = "1""#, "")),
            "filter: unknown field `size` at column 16; you can filter on id, name, family, status"
        );
        assert_eq!(
            error(request("f", r#"status IN ("READY", "BROKEN")"#, "")),
            "filter: unknown status \"BROKEN\" at column 21; a status is one of STATUS_UNSPECIFIED, CREATING, READY, ERROR, DELETING"
        );
    }

    #[test]
    fn field_rules() {
        assert_eq!(
            error(request("", "", "")),
            "folder_id: required field is empty"
        );
        assert_eq!(
            error(request(&"f".repeat(51), "", "")),
            "folder_id: must be at most 50 characters long, got 51"
        );
        assert_eq!(
            error(request("f", &"x".repeat(1001), "")),
            "filter: must be at most 1000 characters long, got 1001"
        );
        assert_eq!(
            error(request("f", "", &"x".repeat(101))),
            "order_by: must be at most 100 characters long, got 101"
        );
        assert_eq!(
            error(request("f", "", "name, id")),
            "order_by: only one field can be given"
        );
        assert!(error(request("f", "", "size")).starts_with("order_by: unknown field `size`"));
        let mut long_token = request("f", "", "");
        long_token.page_token = "A".repeat(101);
        assert_eq!(
            error(long_token),
            "page_token: must be at most 100 characters long, got 101"
        );
        let mut big = request("f", "", "");
        big.page_size = 1001;
        assert!(error(big).starts_with("page_size: "));
    }
}
