//! The List queries as SQL: the scope and filter as conditions on indexed
//! columns, the order as ORDER BY (ties by id ascending), and the page token's
//! position as a keyset condition whose values the database looks up itself
//! from the cursor's id: only the id travels in the token.
//!
//! Values are always parameters, never spliced into the text; a set of values
//! is one array parameter, so the text depends only on the query's shape and
//! its prepared statement is reused.

use std::fmt::Write as _;

use tokio_postgres::types::ToSql;

use crate::domain::compute::{ComputeCondition, ComputeImageQuery, ComputeSortField};
use crate::domain::container::{ContainerImageQuery, ContainerScope, ContainerSortField};
use crate::domain::order::Direction;
use crate::domain::page::PageRequest;

/// SQL text and the values of its parameters, in order.
pub struct Statement {
    pub text: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            values: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder (`$n`).
    fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|value| &**value as &(dyn ToSql + Sync))
            .collect()
    }
}

/// One sort column and its direction.
type Column = (&'static str, Direction);

const CREATED_AT: [&str; 2] = ["created_at_seconds", "created_at_nanos"];

pub fn compute_list(query: &ComputeImageQuery, page: &PageRequest) -> Statement {
    let mut statement = Statement::new("SELECT i.body FROM compute_images i WHERE i.folder_id = ");
    let folder = statement.bind(query.folder_id.as_str().to_owned());
    statement.text.push_str(&folder);
    for condition in query.filter.conditions() {
        let (column, placeholder, negated) = match condition {
            ComputeCondition::Id(set) => {
                ("id", statement.bind(set.values().to_vec()), set.negated())
            }
            ComputeCondition::Name(set) => {
                ("name", statement.bind(set.values().to_vec()), set.negated())
            }
            ComputeCondition::Family(set) => (
                "family",
                statement.bind(set.values().to_vec()),
                set.negated(),
            ),
            ComputeCondition::Status(set) => {
                let numbers: Vec<i32> = set.values().iter().map(|s| *s as i32).collect();
                ("status", statement.bind(numbers), set.negated())
            }
        };
        let not = if negated { "NOT " } else { "" };
        let _ = write!(
            statement.text,
            " AND {not}(i.{column} = ANY({placeholder}))"
        );
    }
    let direction = query.order.direction;
    let mut columns: Vec<Column> = match query.order.field {
        ComputeSortField::Id => vec![],
        ComputeSortField::Name => vec![("name", direction)],
        ComputeSortField::CreatedAt => CREATED_AT.iter().map(|c| (*c, direction)).collect(),
    };
    let id_direction = match query.order.field {
        ComputeSortField::Id => direction,
        _ => Direction::Asc,
    };
    columns.push(("id", id_direction));
    finish(statement, "compute_images", &columns, page)
}

pub fn container_list(query: &ContainerImageQuery, page: &PageRequest) -> Statement {
    let mut statement = Statement::new("SELECT i.body FROM container_images i WHERE ");
    match &query.scope {
        ContainerScope::Repository(name) => {
            let p = statement.bind(name.as_str().to_owned());
            let _ = write!(statement.text, "i.name = {p}");
        }
        ContainerScope::Registry(id) => {
            let p = statement.bind(id.as_str().to_owned());
            let _ = write!(statement.text, "i.registry_id = {p}");
        }
        ContainerScope::Folder(id) => {
            let p = statement.bind(id.as_str().to_owned());
            let _ = write!(
                statement.text,
                "i.registry_id IN (SELECT r.id FROM container_registries r WHERE r.folder_id = {p})"
            );
        }
    }
    if !query.filter.names().is_empty() {
        let p = statement.bind(query.filter.names().to_vec());
        let _ = write!(statement.text, " AND i.name = ALL({p})");
    }
    let mut columns: Vec<Column> = Vec::new();
    for key in &query.order {
        match key.field {
            ContainerSortField::Name => columns.push(("name", key.direction)),
            ContainerSortField::Digest => columns.push(("digest", key.direction)),
            ContainerSortField::CreatedAt => {
                columns.extend(CREATED_AT.iter().map(|c| (*c, key.direction)));
            }
        }
    }
    columns.push(("id", Direction::Asc));
    finish(statement, "container_images", &columns, page)
}

/// Adds the keyset condition after the cursor, ORDER BY and LIMIT.
fn finish(
    mut statement: Statement,
    table: &str,
    columns: &[Column],
    page: &PageRequest,
) -> Statement {
    if let Some(after) = &page.after {
        let cursor = statement.bind(after.as_str().to_owned());
        let condition = after_cursor(table, &cursor, columns);
        let _ = write!(statement.text, " AND {condition}");
    }
    let order = columns
        .iter()
        .map(|(column, direction)| format!("i.{column} {}", sql_direction(*direction)))
        .collect::<Vec<_>>()
        .join(", ");
    let limit = statement.bind(super::limit(page.size.get()));
    let _ = write!(statement.text, " ORDER BY {order} LIMIT {limit}");
    statement
}

fn sql_direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    }
}

/// Rows strictly after the cursor's position in `columns` order. The columns
/// are split into runs of one direction; each run compares as a row value
/// (which an index can range-scan), the next run deciding only between equals:
/// `R1 > C1 OR (R1 = C1 AND (R2 < C2 OR ...))`, led by the redundant bound
/// `R1 >= C1` so the first run bounds the scan. The cursor's values are
/// looked up by id; a cursor that is gone makes them NULL and matches nothing.
fn after_cursor(table: &str, cursor: &str, columns: &[Column]) -> String {
    let mut runs: Vec<(Direction, Vec<&str>)> = Vec::new();
    for &(column, direction) in columns {
        match runs.last_mut() {
            Some((d, run)) if *d == direction => run.push(column),
            _ => runs.push((direction, vec![column])),
        }
    }
    let row = |run: &[&str]| {
        let names: Vec<String> = run.iter().map(|c| format!("i.{c}")).collect();
        format!("({})", names.join(", "))
    };
    let cursor_row = |run: &[&str]| {
        let values: Vec<String> = run
            .iter()
            .map(|c| format!("(SELECT c.{c} FROM {table} c WHERE c.id = {cursor})"))
            .collect();
        format!("({})", values.join(", "))
    };
    let mut condition = String::new();
    for (direction, run) in runs.iter().rev() {
        let op = match direction {
            Direction::Asc => ">",
            Direction::Desc => "<",
        };
        let (r, c) = (row(run), cursor_row(run));
        condition = if condition.is_empty() {
            format!("{r} {op} {c}")
        } else {
            format!("({r} {op} {c} OR ({r} = {c} AND {condition}))")
        };
    }
    if let Some((direction, run)) = runs.first().filter(|_| runs.len() > 1) {
        let op = match direction {
            Direction::Asc => ">=",
            Direction::Desc => "<=",
        };
        condition = format!("{} {op} {} AND {condition}", row(run), cursor_row(run));
    }
    condition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_direction_is_one_row_comparison() {
        let condition = after_cursor(
            "t",
            "$2",
            &[("name", Direction::Asc), ("id", Direction::Asc)],
        );
        assert_eq!(
            condition,
            "(i.name, i.id) > ((SELECT c.name FROM t c WHERE c.id = $2), (SELECT c.id FROM t c WHERE c.id = $2))"
        );
    }

    #[test]
    fn mixed_directions_nest() {
        let condition = after_cursor("t", "$9", &[("a", Direction::Desc), ("id", Direction::Asc)]);
        let a = "(SELECT c.a FROM t c WHERE c.id = $9)";
        let id = "(SELECT c.id FROM t c WHERE c.id = $9)";
        assert_eq!(
            condition,
            format!("(i.a) <= ({a}) AND ((i.a) < ({a}) OR ((i.a) = ({a}) AND (i.id) > ({id})))")
        );
    }
}
