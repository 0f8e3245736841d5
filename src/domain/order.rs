//! `order_by`: `<field> [asc|desc]`, comma-separated where an API allows several.
//!
//! ```text
//! order_by = ws* [ key ( ws* "," ws* key )* ] ws* EOF
//! key      = field [ ws+ direction ]
//! field    = ( ALPHA | "_" ) ( ALPHA | DIGIT | "_" | "." )*
//! ```
//!
//! `direction` is `asc` or `desc`, any case. Each API names its fields with a
//! [`SortField`]; ties are always broken by the image id, ascending, so every
//! order is total.

use std::fmt;

use winnow::ascii::multispace1;
use winnow::combinator::{cut_err, opt, preceded};
use winnow::error::{StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::LocatingSlice;
use winnow::token::{one_of, take_while};

use super::check_max_length;
use super::filter::{Input, column_at, expected, separated_to_end};
use crate::error::ApiError;

const FIELD: &str = "order_by";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asc => "asc",
            Self::Desc => "desc",
        }
    }
}

/// The fields one API can order by.
pub trait SortField: Copy + Eq + fmt::Debug + 'static {
    /// Every name `order_by` accepts and its field; a field's first name is
    /// the one canonical text uses.
    const NAMES: &'static [(&'static str, Self)];
    /// The names to list in an error message.
    const KNOWN: &'static str;

    /// The field a name in `order_by` means, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, field)| field)
    }

    /// The name canonical text uses.
    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, field)| *field == self)
            .map_or("", |&(name, _)| name)
    }
}

/// One field of an order and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey<F> {
    pub field: F,
    pub direction: Direction,
}

impl<F: SortField> fmt::Display for SortKey<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field.name(), self.direction.as_str())
    }
}

/// Canonical text of a list of keys: `name asc, created_at desc`.
pub fn canonical<F: SortField>(keys: &[SortKey<F>]) -> String {
    keys.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The request field `order_by`: at most `max_chars` characters, then
/// [`parse`]d into at most `max_keys` keys.
pub fn parse_field<F: SortField>(
    text: &str,
    max_chars: usize,
    max_keys: usize,
) -> Result<Vec<SortKey<F>>, ApiError> {
    check_max_length(FIELD, text, max_chars)?;
    parse(text, max_keys)
}

/// Parses `order_by` into at most `max_keys` keys, each field at most once.
/// Empty (or blank) text is no keys: the API's default order.
pub fn parse<F: SortField>(text: &str, max_keys: usize) -> Result<Vec<SortKey<F>>, ApiError> {
    let words = syntax.parse(LocatingSlice::new(text)).map_err(|err| {
        let found = match text.get(err.offset()..).and_then(super::filter::found) {
            Some(what) => format!("found {what}"),
            None => "found the end of order_by".to_owned(),
        };
        let what = err
            .inner()
            .context()
            .find_map(|c| match c {
                StrContext::Expected(StrContextValue::Description(what)) => Some(*what),
                _ => None,
            })
            .unwrap_or("a field name");
        ApiError::invalid_argument(
            FIELD,
            format!(
                "syntax error at column {}: expected {what}, {found}",
                column_at(text, err.offset())
            ),
        )
    })?;
    if words.len() > max_keys {
        let description = if max_keys == 1 {
            "only one field can be given".to_owned()
        } else {
            format!("at most {max_keys} fields can be given")
        };
        return Err(ApiError::invalid_argument(FIELD, description));
    }
    let mut keys: Vec<SortKey<F>> = Vec::with_capacity(words.len());
    for word in words {
        let field = F::from_name(word.field).ok_or_else(|| {
            ApiError::invalid_argument(
                FIELD,
                format!(
                    "unknown field `{}` at column {}; you can order by {}",
                    word.field,
                    column_at(text, word.field_offset),
                    F::KNOWN
                ),
            )
        })?;
        let direction = match word.direction {
            None => Direction::Asc,
            Some((d, _)) if d.eq_ignore_ascii_case("asc") => Direction::Asc,
            Some((d, _)) if d.eq_ignore_ascii_case("desc") => Direction::Desc,
            Some((d, offset)) => {
                return Err(ApiError::invalid_argument(
                    FIELD,
                    format!(
                        "unknown direction `{d}` at column {}; use asc or desc",
                        column_at(text, offset)
                    ),
                ));
            }
        };
        if keys.iter().any(|k| k.field == field) {
            return Err(ApiError::invalid_argument(
                FIELD,
                format!("field `{}` is given twice", word.field),
            ));
        }
        keys.push(SortKey { field, direction });
    }
    Ok(keys)
}

/// A key as written: the field and the direction word, with their offsets.
struct Word<'t> {
    field: &'t str,
    field_offset: usize,
    direction: Option<(&'t str, usize)>,
}

fn syntax<'i>(input: &mut Input<'i>) -> ModalResult<Vec<Word<'i>>> {
    separated_to_end(input, word, ',', "`,` or the end of order_by")
}

fn name<'i>(input: &mut Input<'i>) -> ModalResult<(&'i str, usize)> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| {
            c.is_ascii_alphanumeric() || c == '_' || c == '.'
        }),
    )
        .take()
        .with_span()
        .map(|(name, span)| (name, span.start))
        .parse_next(input)
}

fn word<'i>(input: &mut Input<'i>) -> ModalResult<Word<'i>> {
    let (field, field_offset) = cut_err(name)
        .context(expected("a field name"))
        .parse_next(input)?;
    let direction = opt(preceded(multispace1, name)).parse_next(input)?;
    Ok(Word {
        field,
        field_offset,
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    // A real API's fields: the grammar is the same for both.
    use crate::domain::container::ContainerSortField as Field;

    fn keys(text: &str) -> Result<Vec<SortKey<Field>>, String> {
        parse::<Field>(text, 3).map_err(|e| e.to_string())
    }

    #[test]
    fn fields_and_directions() {
        assert_eq!(keys(""), Ok(vec![]));
        assert_eq!(keys("   "), Ok(vec![]));
        assert_eq!(
            keys(" createdAt  DESC , name"),
            Ok(vec![
                SortKey {
                    field: Field::CreatedAt,
                    direction: Direction::Desc
                },
                SortKey {
                    field: Field::Name,
                    direction: Direction::Asc
                },
            ])
        );
        assert_eq!(
            canonical(&keys("createdAt desc,name Asc").unwrap()),
            "created_at desc, name asc"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        for (text, expected) in [
            (
                "size",
                "order_by: unknown field `size` at column 1; you can order by name, digest, created_at",
            ),
            (
                "name up",
                "order_by: unknown direction `up` at column 6; use asc or desc",
            ),
            (
                "name asc desc",
                "order_by: syntax error at column 10: expected `,` or the end of order_by, found `desc`",
            ),
            (
                "name,",
                "order_by: syntax error at column 6: expected a field name, found the end of order_by",
            ),
            ("name, name desc", "order_by: field `name` is given twice"),
        ] {
            assert_eq!(keys(text), Err(expected.into()), "{text}");
        }
        assert_eq!(
            parse::<Field>("name, created_at", 1).map_err(|e| e.to_string()),
            Err("order_by: only one field can be given".into())
        );
    }
}
