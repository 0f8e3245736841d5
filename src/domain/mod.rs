//! Request values parsed once at the edge into types that cannot hold an invalid value.
//!
//! `filter` and `order` are the grammars of list calls, `page` the page size and
//! token; `compute` and `container` put them together into each API's queries.

/// The methods of a string newtype `$name(String)` whose value was checked on
/// the way in: `as_str`, Debug as the string, and on request Display as the
/// string and a `parse` that checks only the length (1 to `$max` characters).
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }
    };
    ($name:ident, Display) => {
        string_newtype!($name);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
    ($name:ident, Display, max = $max:path) => {
        string_newtype!($name, Display);

        impl $name {
            /// Checks `value` as the request field `field`; the error names that field.
            pub fn parse(
                field: &'static str,
                value: String,
            ) -> Result<Self, $crate::error::ApiError> {
                $crate::domain::check_length(field, &value, $max)?;
                Ok(Self(value))
            }
        }
    };
}

pub mod access;
pub mod bindings;
pub mod compute;
pub mod container;
pub mod encoded;
pub mod filter;
pub mod operation;
pub mod order;
pub mod page;
pub mod rules;
pub mod write;

use crate::error::ApiError;

/// The most characters an image id may have (the API's `length: <=50`).
pub const MAX_IMAGE_ID_CHARS: usize = 50;
/// The most characters a folder id may have (the API's `length: <=50`).
pub const MAX_FOLDER_ID_CHARS: usize = 50;

/// A syntactically valid image id: 1 to 50 characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageId(String);

string_newtype!(ImageId, Display, max = MAX_IMAGE_ID_CHARS);

/// A folder id: 1 to 50 characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FolderId(String);

string_newtype!(FolderId, Display, max = MAX_FOLDER_ID_CHARS);

/// The values a filter condition tests a field against: `=` and `IN` want the
/// field to be one of them, `!=` and `NOT IN` (negated) none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueSet<T> {
    values: Vec<T>,
    negated: bool,
}

impl<T> ValueSet<T> {
    pub fn new(values: Vec<T>, negated: bool) -> Self {
        Self { values, negated }
    }

    pub fn values(&self) -> &[T] {
        &self.values
    }

    pub fn negated(&self) -> bool {
        self.negated
    }

    /// Whether a field holding `value` meets the condition.
    pub fn matches<Q>(&self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: PartialEq + ?Sized,
    {
        self.values.iter().any(|v| v.borrow() == value) != self.negated
    }
}

/// A required string of at most `max` characters (Unicode scalar values, as the API counts).
pub fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid_argument(field, "required field is empty"));
    }
    check_max_length(field, value, max)
}

/// An optional string (empty allowed) of at most `max` characters.
pub fn check_max_length(field: &'static str, value: &str, max: usize) -> Result<(), ApiError> {
    // Byte length bounds the character count from above: skip the count when it can't exceed.
    if value.len() > max {
        let chars = value.chars().count();
        if chars > max {
            return Err(ApiError::invalid_argument(
                field,
                format!("must be at most {max} characters long, got {chars}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_fifty_characters() {
        assert!(ImageId::parse("image_id", "a".into()).is_ok());
        assert!(ImageId::parse("image_id", "x".repeat(50)).is_ok());
        // 50 two-byte characters are 100 bytes but still 50 characters.
        assert!(ImageId::parse("image_id", "é".repeat(50)).is_ok());
    }

    #[test]
    fn rejects_empty_and_too_long_naming_the_field() {
        let empty = ImageId::parse("image_id", String::new()).unwrap_err();
        assert_eq!(empty.to_string(), "image_id: required field is empty");
        let long = ImageId::parse("image_id", "x".repeat(51)).unwrap_err();
        assert_eq!(
            long.to_string(),
            "image_id: must be at most 50 characters long, got 51"
        );
    }
}
