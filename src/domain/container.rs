//! Queries of `yandex.cloud.containerregistry.v1.ImageService`: List.
//!
//! An image's `name` is the full name of its repository, which starts with the
//! id of its registry: `crpxxxxxxxxxxxxxxxxx/team/app`.

use super::filter::{self, Predicate, column_at};
use super::order::{self, SortField, SortKey};
use super::page::ListRequest;
use super::{FolderId, MAX_FOLDER_ID_CHARS, check_max_length};
use crate::error::ApiError;
use crate::proto::container_registry::ListImagesRequest;

pub const MAX_REGISTRY_ID_CHARS: usize = 50;
pub const MAX_FILTER_CHARS: usize = 1000;
pub const MAX_ORDER_BY_CHARS: usize = 100;
/// `order_by` may name each of its three fields once.
pub const MAX_ORDER_KEYS: usize = 3;

/// The registry part of an image or repository name: what comes before the first `/`.
pub fn registry_of(name: &str) -> Option<&str> {
    name.split_once('/').map(|(registry, _)| registry)
}

/// A registry id: 1 to 50 characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegistryId(String);

string_newtype!(RegistryId);

/// A repository's full name: `[a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RepositoryName(String);

string_newtype!(RepositoryName);

impl RepositoryName {
    /// Whether `name` matches the pattern (a non-empty one).
    pub fn is_valid(name: &str) -> bool {
        name.split('/').all(|component| {
            component.split(['.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
        })
    }
}

/// Whose images a container registry List wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerScope {
    /// The images of one repository (their `name` equals it).
    Repository(RepositoryName),
    /// The images whose name starts with `<registry id>/`.
    Registry(RegistryId),
    /// The images of the catalog's registries in this folder.
    Folder(FolderId),
}

impl ContainerScope {
    /// repository_name wins over registry_id, which wins over folder_id; the
    /// others are still checked against their own rules.
    pub fn parse(
        repository_name: String,
        registry_id: String,
        folder_id: String,
    ) -> Result<Self, ApiError> {
        check_max_length("registry_id", &registry_id, MAX_REGISTRY_ID_CHARS)?;
        if !repository_name.is_empty() && !RepositoryName::is_valid(&repository_name) {
            return Err(ApiError::invalid_argument(
                "repository_name",
                "must match the pattern [a-z0-9]+(?:[._-][a-z0-9]+)*(/([a-z0-9]+(?:[._-][a-z0-9]+)*))*",
            ));
        }
        check_max_length("folder_id", &folder_id, MAX_FOLDER_ID_CHARS)?;
        if !repository_name.is_empty() {
            Ok(Self::Repository(RepositoryName(repository_name)))
        } else if !registry_id.is_empty() {
            Ok(Self::Registry(RegistryId(registry_id)))
        } else if !folder_id.is_empty() {
            Ok(Self::Folder(FolderId::parse("folder_id", folder_id)?))
        } else {
            Err(ApiError::invalid_argument(
                "folder_id",
                "one of repository_name, registry_id or folder_id is required",
            ))
        }
    }

    fn canonical(&self) -> String {
        match self {
            Self::Repository(name) => format!("repository_name={:?}", name.as_str()),
            Self::Registry(id) => format!("registry_id={:?}", id.as_str()),
            Self::Folder(id) => format!("folder_id={:?}", id.as_str()),
        }
    }
}

/// A container registry List filter: only `name = "<value>"`, possibly
/// several joined by AND (all must hold).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerImageFilter {
    names: Vec<String>,
    canonical: String,
}

impl ContainerImageFilter {
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let (names, canonical) = filter::parse_field(text, MAX_FILTER_CHARS, |condition| {
            let column = column_at(text, condition.field.offset);
            if condition.field.node != "name" {
                return Err(ApiError::invalid_argument(
                    "filter",
                    format!(
                        "unknown field `{}` at column {column}; you can filter on name only",
                        condition.field.node
                    ),
                ));
            }
            match &condition.predicate {
                Predicate::Equal(value) => Ok(value.node.clone()),
                other => Err(ApiError::invalid_argument(
                    "filter",
                    format!(
                        "`name {}` at column {column}: only name = \"<value>\" is supported",
                        other.operator()
                    ),
                )),
            }
        })?;
        Ok(Self { names, canonical })
    }

    /// The names an image must have: every one (so two different ones match nothing).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn canonical(&self) -> &str {
        &self.canonical
    }
}

/// What container registry List orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerSortField {
    Name,
    Digest,
    CreatedAt,
}

impl SortField for ContainerSortField {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("name", Self::Name),
        ("digest", Self::Digest),
        ("created_at", Self::CreatedAt),
        ("createdAt", Self::CreatedAt),
    ];
    const KNOWN: &'static str = "name, digest, created_at";
}

/// Which container images a List wants, in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImageQuery {
    pub scope: ContainerScope,
    pub filter: ContainerImageFilter,
    /// Zero to three keys, each field at most once; then id ascending.
    pub order: Vec<SortKey<ContainerSortField>>,
}

impl ContainerImageQuery {
    /// The text page tokens fingerprint: equal for queries that mean the same.
    pub fn canonical(&self) -> String {
        format!(
            "containerregistry.v1.Image {} filter={:?} order_by={}",
            self.scope.canonical(),
            self.filter.canonical(),
            order::canonical(&self.order)
        )
    }
}

/// A parsed container registry `ListImagesRequest`.
pub type ListContainerImages = ListRequest<ContainerImageQuery>;

impl ListContainerImages {
    /// Validates every field; the first problem found is the error.
    pub fn parse(request: ListImagesRequest) -> Result<Self, ApiError> {
        let scope = ContainerScope::parse(
            request.repository_name,
            request.registry_id,
            request.folder_id,
        )?;
        let query = || {
            Ok(ContainerImageQuery {
                scope,
                filter: ContainerImageFilter::parse(&request.filter)?,
                order: order::parse_field(&request.order_by, MAX_ORDER_BY_CHARS, MAX_ORDER_KEYS)?,
            })
        };
        ListRequest::from_parts(
            request.page_size,
            &request.page_token,
            query,
            ContainerImageQuery::canonical,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::Direction;

    fn request(registry: &str, repository: &str, folder: &str) -> ListImagesRequest {
        ListImagesRequest {
            registry_id: registry.into(),
            repository_name: repository.into(),
            folder_id: folder.into(),
            ..Default::default()
        }
    }

    fn scope(registry: &str, repository: &str, folder: &str) -> Result<ContainerScope, String> {
        ListContainerImages::parse(request(registry, repository, folder))
            .map(|list| list.query.scope)
            .map_err(|err| err.to_string())
    }

    #[test]
    fn repository_name_pattern() {
        for good in ["a", "crp1/ubuntu", "crp1/team/app", "a.b_c-d/e", "0/1"] {
            assert!(RepositoryName::is_valid(good), "{good}");
        }
        for bad in [
            "", "A", "a//b", "a/", "/a", "a..b", "a-", "-a", "a b", "a/B", "é",
        ] {
            assert!(!RepositoryName::is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn scope_precedence() {
        assert_eq!(
            scope("reg", "reg/app", "f"),
            Ok(ContainerScope::Repository(RepositoryName("reg/app".into())))
        );
        assert_eq!(
            scope("reg", "", "f"),
            Ok(ContainerScope::Registry(RegistryId("reg".into())))
        );
        assert!(matches!(scope("", "", "f"), Ok(ContainerScope::Folder(_))));
        assert_eq!(
            scope("", "", ""),
            Err("folder_id: one of repository_name, registry_id or folder_id is required".into())
        );
        // Ignored fields still follow their rules.
        assert_eq!(
            scope(&"r".repeat(51), "reg/app", ""),
            Err("registry_id: must be at most 50 characters long, got 51".into())
        );
        assert_eq!(
            scope("reg", "", &"f".repeat(51)),
            Err("folder_id: must be at most 50 characters long, got 51".into())
        );
        assert!(
            scope("reg", "Reg/App", "")
                .unwrap_err()
                .starts_with("repository_name: must match")
        );
    }

    #[test]
    fn filter_is_name_equals_only() {
        let parse = |text: &str| ContainerImageFilter::parse(text).map_err(|e| e.to_string());
        assert_eq!(parse(r#"name = "reg/app""#).unwrap().names(), ["reg/app"]);
        assert_eq!(parse("").unwrap().names(), [] as [String; 0]);
        assert_eq!(
            parse(r#"name != "x""#),
            Err(r#"filter: `name !=` at column 1: only name = "<value>" is supported"#.into())
        );
        assert_eq!(
            parse(r#"name = "x" AND digest = "y""#),
            Err("filter: unknown field `digest` at column 16; you can filter on name only".into())
        );
    }

    #[test]
    fn order_keys() {
        let mut r = request("reg", "", "");
        r.order_by = "name, created_at desc, digest".into();
        let list = ListContainerImages::parse(r).unwrap();
        assert_eq!(list.query.order.len(), 3);
        assert_eq!(list.query.order[1].field, ContainerSortField::CreatedAt);
        assert_eq!(list.query.order[1].direction, Direction::Desc);
        let mut r = request("reg", "", "");
        r.order_by = "id".into();
        assert!(
            ListContainerImages::parse(r)
                .unwrap_err()
                .to_string()
                .starts_with("order_by: unknown field `id`")
        );
    }
}
