//! The filter language of Yandex Cloud list calls, as a grammar.
//!
//! ```text
//! filter     = ws* [ condition ( ws* AND ws* condition )* ] ws* EOF
//! condition  = field ws* predicate
//! predicate  = "=" ws* value
//!            | "!=" ws* value
//!            | IN ws* list
//!            | NOT ws+ IN ws* list
//! list       = "(" ws* value ( ws* "," ws* value )* ws* ")"
//! value      = quoted | bare
//! quoted     = '"' ( char | escape )* '"' | "'" ( char | escape )* "'"
//! escape     = "\" ( "\" | '"' | "'" | "?" | "a" | "b" | "f" | "n" | "r" | "t" | "v" | "0"
//!                  | "x" hex hex | "u" hex hex hex hex )
//! bare       = ( ALPHA | DIGIT | "_" | "-" | "." | ":" | "/" )+   but not a keyword
//! field      = ( ALPHA | "_" ) ( ALPHA | DIGIT | "_" | "." )*
//! ```
//!
//! Keywords (`AND`, `IN`, `NOT`, and `OR`, reserved) are case-insensitive and
//! end at a word boundary. This module knows nothing of which fields exist: it
//! turns text into a [`Filter`] tree, and each API then checks the fields and
//! values it supports ([`super::compute`], [`super::container`]). A [`Filter`]
//! prints back ([`fmt::Display`]) in a canonical form that parses to an equal
//! tree, which is also what page tokens fingerprint.

use std::fmt::{self, Write as _};

use winnow::ascii::{Caseless, multispace0, multispace1};
use winnow::combinator::{alt, cut_err, eof, fail, not, opt, preceded, terminated};
use winnow::error::{ContextError, ErrMode, StrContext, StrContextValue};
use winnow::prelude::*;
use winnow::stream::LocatingSlice;
use winnow::token::{any, one_of, take_while};

use super::check_max_length;
use crate::error::ApiError;

pub(super) type Input<'i> = LocatingSlice<&'i str>;

const FIELD: &str = "filter";

/// A parsed filter: its conditions, all of which must hold. No conditions
/// (an empty filter) matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    pub conditions: Vec<Condition>,
}

/// `<field> <predicate>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub field: Spanned<String>,
    pub predicate: Predicate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Predicate {
    Equal(Spanned<String>),
    NotEqual(Spanned<String>),
    /// One or more values.
    In(Vec<Spanned<String>>),
    /// One or more values.
    NotIn(Vec<Spanned<String>>),
}

impl Predicate {
    /// The values this predicate tests against, and whether it is negated
    /// (`!=`, `NOT IN`): `=` is `IN` with one value.
    pub fn values(&self) -> (&[Spanned<String>], bool) {
        match self {
            Self::Equal(value) => (std::slice::from_ref(value), false),
            Self::NotEqual(value) => (std::slice::from_ref(value), true),
            Self::In(values) => (values, false),
            Self::NotIn(values) => (values, true),
        }
    }

    /// The operator as written in canonical text.
    pub fn operator(&self) -> &'static str {
        match self {
            Self::Equal(_) => "=",
            Self::NotEqual(_) => "!=",
            Self::In(_) => "IN",
            Self::NotIn(_) => "NOT IN",
        }
    }
}

/// A node with the byte offset in the filter text where it starts, for error
/// messages. The offset does not take part in equality: two trees are equal
/// when they say the same thing, however the text was spaced or quoted.
#[derive(Debug, Clone, Eq)]
pub struct Spanned<T> {
    pub node: T,
    pub offset: usize,
}

impl<T> Spanned<T> {
    pub fn new(node: T, offset: usize) -> Self {
        Self { node, offset }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.node == other.node
    }
}

/// Why a text is not a filter: the 1-based column (in characters) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("syntax error at column {column}: {problem}")]
pub struct SyntaxError {
    pub column: usize,
    pub problem: String,
}

/// The 1-based column (in characters) of a byte offset into `text`.
pub fn column_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    // Offsets come from the parser and sit on char boundaries; count up to the
    // nearest boundary at or before `offset` all the same.
    text.char_indices().take_while(|(i, _)| *i < offset).count() + 1
}

/// Parses filter text. Whitespace only, or nothing, is the empty filter.
pub fn parse(text: &str) -> Result<Filter, SyntaxError> {
    filter
        .parse(LocatingSlice::new(text))
        .map_err(|err| syntax_error(text, err.offset(), err.inner()))
}

/// The request field `filter`: at most `max_chars` characters, parsed, each
/// condition read by `read`. The conditions read, and the canonical text.
pub fn parse_field<T>(
    text: &str,
    max_chars: usize,
    read: impl FnMut(&Condition) -> Result<T, ApiError>,
) -> Result<(Vec<T>, String), ApiError> {
    check_max_length(FIELD, text, max_chars)?;
    let tree = parse(text).map_err(|err| ApiError::invalid_argument(FIELD, err.to_string()))?;
    let conditions = tree.conditions.iter().map(read).collect::<Result<_, _>>()?;
    Ok((conditions, tree.to_string()))
}

/// Words that can't be bare values: they would read as the grammar's own.
const KEYWORDS: [&str; 4] = ["and", "or", "not", "in"];

fn is_keyword(word: &str) -> bool {
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

fn is_field_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

fn is_bare_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
}

/// Whether `value` can be written without quotes (the canonical form always quotes).
pub fn is_bare_value(value: &str) -> bool {
    !value.is_empty() && value.chars().all(is_bare_char) && !is_keyword(value)
}

pub(super) fn expected(what: &'static str) -> StrContext {
    StrContext::Expected(StrContextValue::Description(what))
}

/// `ws* [ item ( ws* separator ws* item )* ] ws* EOF`, the shape of the
/// filter and of `order_by`; `end` is what the error expects after an item.
pub(super) fn separated_to_end<'i, O, S>(
    input: &mut Input<'i>,
    mut item: impl Parser<Input<'i>, O, ErrMode<ContextError>>,
    mut separator: impl Parser<Input<'i>, S, ErrMode<ContextError>>,
    end: &'static str,
) -> ModalResult<Vec<O>> {
    multispace0.parse_next(input)?;
    let mut items = Vec::new();
    if opt(eof).parse_next(input)?.is_none() {
        items.push(item.parse_next(input)?);
        loop {
            multispace0.parse_next(input)?;
            if opt(separator.by_ref()).parse_next(input)?.is_none() {
                break;
            }
            multispace0.parse_next(input)?;
            items.push(item.parse_next(input)?);
        }
    }
    multispace0.parse_next(input)?;
    cut_err(eof).context(expected(end)).parse_next(input)?;
    Ok(items)
}

fn filter(input: &mut Input<'_>) -> ModalResult<Filter> {
    let conditions = separated_to_end(
        input,
        condition,
        keyword("and"),
        "`AND` or the end of the filter",
    )?;
    Ok(Filter { conditions })
}

fn condition(input: &mut Input<'_>) -> ModalResult<Condition> {
    let field = cut_err(field)
        .context(expected("a field name"))
        .parse_next(input)?;
    multispace0.parse_next(input)?;
    let predicate = cut_err(predicate)
        .context(expected("`=`, `!=`, `IN` or `NOT IN`"))
        .parse_next(input)?;
    Ok(Condition { field, predicate })
}

fn field(input: &mut Input<'_>) -> ModalResult<Spanned<String>> {
    (one_of(is_field_start), take_while(0.., is_field_char))
        .take()
        .with_span()
        .map(|(name, span): (&str, _)| Spanned::new(name.to_owned(), span.start))
        .parse_next(input)
}

fn predicate(input: &mut Input<'_>) -> ModalResult<Predicate> {
    alt((
        preceded(("!=", multispace0), cut_err(value)).map(Predicate::NotEqual),
        preceded(('=', multispace0), cut_err(value)).map(Predicate::Equal),
        preceded((keyword("in"), multispace0), cut_err(list)).map(Predicate::In),
        preceded(
            (
                keyword("not"),
                cut_err(multispace1).context(expected("`IN` after `NOT`")),
                cut_err(keyword("in")).context(expected("`IN` after `NOT`")),
                multispace0,
            ),
            cut_err(list),
        )
        .map(Predicate::NotIn),
    ))
    .parse_next(input)
}

/// A case-insensitive keyword that ends at a word boundary (`IN` but not `INTO`).
fn keyword<'i>(word: &'static str) -> impl Parser<Input<'i>, (), ErrMode<ContextError>> {
    terminated(Caseless(word), not(one_of(is_bare_char))).void()
}

fn list(input: &mut Input<'_>) -> ModalResult<Vec<Spanned<String>>> {
    cut_err('(')
        .context(expected("`(` opening the list of values"))
        .parse_next(input)?;
    multispace0.parse_next(input)?;
    let mut values = vec![value.parse_next(input)?];
    loop {
        multispace0.parse_next(input)?;
        if opt(',').parse_next(input)?.is_none() {
            break;
        }
        multispace0.parse_next(input)?;
        values.push(value.parse_next(input)?);
    }
    cut_err(')')
        .context(expected("`,` or `)`"))
        .parse_next(input)?;
    Ok(values)
}

fn value(input: &mut Input<'_>) -> ModalResult<Spanned<String>> {
    cut_err(alt((quoted('"'), quoted('\''), bare)))
        .context(expected("a value (a string in quotes)"))
        .with_span()
        .map(|(value, span)| Spanned::new(value, span.start))
        .parse_next(input)
}

fn bare(input: &mut Input<'_>) -> ModalResult<String> {
    take_while(1.., is_bare_char)
        .verify(|word: &str| !is_keyword(word))
        .map(str::to_owned)
        .parse_next(input)
}

fn quoted<'i>(mut quote: char) -> impl Parser<Input<'i>, String, ErrMode<ContextError>> {
    move |input: &mut Input<'i>| {
        quote.parse_next(input)?;
        let mut text = String::new();
        loop {
            let chunk = take_while(0.., |c| c != quote && c != '\\').parse_next(input)?;
            text.push_str(chunk);
            let before = input.checkpoint();
            match opt(any).parse_next(input)? {
                Some(c) if c == quote => return Ok(text),
                // take_while stopped at a backslash.
                Some(_) => match escape(input) {
                    Some(c) => text.push(c),
                    None => {
                        // Point the error at the backslash.
                        input.reset(&before);
                        return cut_err(fail)
                            .context(StrContext::Label(
                                r#"escape sequence: use \\, \', \", \n, \t, \r, \a, \b, \f, \v, \0, \xHH (ASCII) or \uHHHH"#,
                            ))
                            .parse_next(input);
                    }
                },
                None => {
                    return cut_err(fail)
                        .context(StrContext::Label("string: no closing quote"))
                        .parse_next(input);
                }
            }
        }
    }
}

/// The character an escape stands for, read after its backslash; None when
/// it is not one of the escapes of the grammar.
fn escape(input: &mut Input<'_>) -> Option<char> {
    let c = any::<_, ErrMode<ContextError>>.parse_next(input).ok()?;
    match c {
        '\\' | '"' | '\'' | '?' => Some(c),
        'a' => Some('\u{07}'),
        'b' => Some('\u{08}'),
        'f' => Some('\u{0C}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{0B}'),
        '0' => Some('\0'),
        'x' => hex_digits(input, 2)
            .filter(|code| *code < 0x80)
            .and_then(char::from_u32),
        'u' => hex_digits(input, 4).and_then(char::from_u32),
        _ => None,
    }
}

/// Exactly `count` hex digits as a number, or None (consuming what it read).
fn hex_digits(input: &mut Input<'_>, count: usize) -> Option<u32> {
    let digits: &str =
        take_while::<_, _, ErrMode<ContextError>>(count..=count, |c: char| c.is_ascii_hexdigit())
            .parse_next(input)
            .ok()?;
    u32::from_str_radix(digits, 16).ok()
}

fn syntax_error(text: &str, offset: usize, err: &ContextError) -> SyntaxError {
    let mut labels = Vec::new();
    let mut expectations = Vec::new();
    for context in err.context() {
        match context {
            StrContext::Label(label) => labels.push(*label),
            StrContext::Expected(value) => expectations.push(value.to_string()),
            _ => {}
        }
    }
    let found = match text.get(offset..) {
        Some(rest) => found(rest).map_or_else(
            || "found the end of the filter".to_owned(),
            |what| format!("found {what}"),
        ),
        None => "found the end of the filter".to_owned(),
    };
    let problem = match (labels.first(), expectations.first()) {
        (Some(label), _) => format!("invalid {label}"),
        (None, Some(first)) => format!("expected {first}, {found}"),
        (None, None) => format!("unexpected input, {found}"),
    };
    SyntaxError {
        column: column_at(text, offset),
        problem,
    }
}

/// What the text at an error holds, for the message: a whole word (`OR`,
/// not `O`) or one character; None at the end.
pub fn found(rest: &str) -> Option<String> {
    let word_len = rest
        .char_indices()
        .find(|(_, c)| !is_bare_char(*c))
        .map_or(rest.len(), |(i, _)| i);
    if word_len > 0 {
        let word: String = rest[..word_len].chars().take(40).collect();
        return Some(format!("`{word}`"));
    }
    rest.chars().next().map(show_char)
}

fn show_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    }
}

impl fmt::Display for Filter {
    /// The canonical text: `field = "value"`, `field IN ("a", "b")`, joined by ` AND `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, condition) in self.conditions.iter().enumerate() {
            if i > 0 {
                f.write_str(" AND ")?;
            }
            write!(f, "{condition}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.field.node, self.predicate.operator())?;
        match &self.predicate {
            Predicate::Equal(value) | Predicate::NotEqual(value) => write_quoted(f, &value.node),
            Predicate::In(values) | Predicate::NotIn(values) => {
                f.write_char('(')?;
                for (i, value) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_quoted(f, &value.node)?;
                }
                f.write_char(')')
            }
        }
    }
}

/// A value in double quotes with the escapes [`escape`] reads back.
pub fn write_quoted(out: &mut impl fmt::Write, value: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in value.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            c if c.is_ascii_control() => write!(out, "\\x{:02X}", c as u32)?,
            c if c.is_control() => write!(out, "\\u{:04X}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(field: &str, value: &str) -> Condition {
        Condition {
            field: Spanned::new(field.into(), 0),
            predicate: Predicate::Equal(Spanned::new(value.into(), 0)),
        }
    }

    fn values(items: &[&str]) -> Vec<Spanned<String>> {
        items.iter().map(|v| Spanned::new((*v).into(), 0)).collect()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn empty_and_blank_are_the_empty_filter() {
        assert_eq!(parse("").unwrap(), Filter::default());
        assert_eq!(parse(" \t\n ").unwrap(), Filter::default());
    }

    #[test]
    fn each_operator() {
        let filter = parse(
            r#"name = "a" AND family != 'b' and status IN ("READY", 'ERROR') AnD id NOT IN ("x")"#,
        )
        .unwrap();
        assert_eq!(
            filter.conditions,
            vec![
                eq("name", "a"),
                Condition {
                    field: Spanned::new("family".into(), 0),
                    predicate: Predicate::NotEqual(Spanned::new("b".into(), 0)),
                },
                Condition {
                    field: Spanned::new("status".into(), 0),
                    predicate: Predicate::In(values(&["READY", "ERROR"])),
                },
                Condition {
                    field: Spanned::new("id".into(), 0),
                    predicate: Predicate::NotIn(values(&["x"])),
                },
            ]
        );
    }

    #[test]
    fn spacing_is_free_where_unambiguous() {
        let tight = parse(r#"name="a"AND status IN("READY","ERROR")"#).unwrap();
        let loose =
            parse(" name  =  \"a\"\n  AND\tstatus  in  (  \"READY\" ,  \"ERROR\" )  ").unwrap();
        assert_eq!(tight, loose);
        assert_eq!(
            tight.to_string(),
            r#"name = "a" AND status IN ("READY", "ERROR")"#
        );
    }

    #[test]
    fn bare_values() {
        let filter = parse("status = READY AND family = ubuntu-2204-lts").unwrap();
        assert_eq!(
            filter.conditions,
            vec![eq("status", "READY"), eq("family", "ubuntu-2204-lts")]
        );
        assert_eq!(
            filter.to_string(),
            r#"status = "READY" AND family = "ubuntu-2204-lts""#
        );
    }

    #[test]
    fn escapes() {
        let filter =
            parse(r#"name = "q\"s\'b\\n\n t\t r\r a\a b\b f\f v\v z\0 x\x41 u\u00e9 ?\?""#)
                .unwrap();
        assert_eq!(
            filter.conditions,
            vec![eq(
                "name",
                "q\"s'b\\n\n t\t r\r a\u{7} b\u{8} f\u{c} v\u{b} z\0 xA u\u{e9} ??"
            )]
        );
        assert_eq!(
            parse(r"name = 'it\'s'").unwrap().conditions,
            vec![eq("name", "it's")]
        );
        // A quote of the other kind needs no escape.
        assert_eq!(
            parse(r#"name = 'say "hi"'"#).unwrap().conditions,
            vec![eq("name", r#"say "hi""#)]
        );
    }

    #[test]
    fn canonical_text_escapes_what_needs_it() {
        let filter = Filter {
            conditions: vec![eq("name", "a\"b\\c\nd\u{1}e\u{85}é'")],
        };
        let text = filter.to_string();
        assert_eq!(text, r#"name = "a\"b\\c\nd\x01e\u0085é'""#);
        assert_eq!(parse(&text).unwrap(), filter);
    }

    #[test]
    fn errors_point_at_the_column() {
        for (text, expected) in [
            (
                r#"name ~ "a""#,
                "syntax error at column 6: expected `=`, `!=`, `IN` or `NOT IN`, found `~`",
            ),
            (
                r#"name = "a" OR family = "b""#,
                "syntax error at column 12: expected `AND` or the end of the filter, found `OR`",
            ),
            (
                r#"name = "a" AND"#,
                "syntax error at column 15: expected a field name, found the end of the filter",
            ),
            (
                r#"name = "abc"#,
                "syntax error at column 12: invalid string: no closing quote",
            ),
            (
                "name = ",
                "syntax error at column 8: expected a value (a string in quotes), found the end of the filter",
            ),
            (
                "name = AND",
                "syntax error at column 8: expected a value (a string in quotes), found `AND`",
            ),
            (
                r#"name IN ()"#,
                "syntax error at column 10: expected a value (a string in quotes), found `)`",
            ),
            (
                r#"name IN ("a" "b")"#,
                "syntax error at column 14: expected `,` or `)`, found `\"`",
            ),
            (
                r#"name IN "a""#,
                "syntax error at column 9: expected `(` opening the list of values, found `\"`",
            ),
            (
                r#"name NOT ("a")"#,
                "syntax error at column 10: expected `IN` after `NOT`, found `(`",
            ),
            (
                r#"name INTO ("a")"#,
                "syntax error at column 6: expected `=`, `!=`, `IN` or `NOT IN`, found `INTO`",
            ),
            (
                r#"= "a""#,
                "syntax error at column 1: expected a field name, found `=`",
            ),
            // Columns count characters, not bytes.
            (
                "name = \"ééé\" ~",
                "syntax error at column 14: expected `AND` or the end of the filter, found `~`",
            ),
        ] {
            assert_eq!(error(text), expected, "{text}");
        }
        for (text, start) in [
            (
                r#"name = "a\qb""#,
                "syntax error at column 10: invalid escape",
            ),
            (
                r#"name = "\x80""#,
                "syntax error at column 9: invalid escape",
            ),
            (
                r#"name = "\ud800""#,
                "syntax error at column 9: invalid escape",
            ),
        ] {
            assert!(error(text).starts_with(start), "{text}: {}", error(text));
        }
    }

    #[test]
    fn offsets_locate_fields_and_values() {
        let text = r#"name = "a" AND  status IN ("X", 'Y')"#;
        let filter = parse(text).unwrap();
        let status = &filter.conditions[1];
        assert_eq!(column_at(text, status.field.offset), 17);
        let (values, negated) = status.predicate.values();
        assert!(!negated);
        assert_eq!(column_at(text, values[1].offset), 33);
    }
}

#[cfg(test)]
mod properties {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::{Condition, Filter, Predicate, Spanned, parse};

    fn value() -> impl Strategy<Value = Spanned<String>> {
        prop_oneof![
            any::<String>(),
            // Heavy on the characters that need care: quotes, backslashes, controls.
            "[\"'\\\\a-z \\n\\t\\r\\x00-\\x1f\\x7f\u{80}-\u{9f}é]{0,12}",
            "[a-z][-a-z0-9]{0,10}",
        ]
        .prop_map(|v| Spanned::new(v, 0))
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let field = "[a-zA-Z_][a-zA-Z0-9_.]{0,12}".prop_map(|f| Spanned::new(f, 0));
        let predicate = prop_oneof![
            value().prop_map(Predicate::Equal),
            value().prop_map(Predicate::NotEqual),
            vec(value(), 1..4).prop_map(Predicate::In),
            vec(value(), 1..4).prop_map(Predicate::NotIn),
        ];
        (field, predicate).prop_map(|(field, predicate)| Condition { field, predicate })
    }

    fn filter_tree() -> impl Strategy<Value = Filter> {
        vec(condition(), 0..5).prop_map(|conditions| Filter { conditions })
    }

    /// Text near the grammar: its tokens and characters, shuffled.
    fn filterish_text() -> impl Strategy<Value = String> {
        vec(
            prop_oneof![
                Just("name".to_owned()),
                Just("status".to_owned()),
                Just(" AND ".to_owned()),
                Just(" and".to_owned()),
                Just(" IN ".to_owned()),
                Just("NOT IN".to_owned()),
                Just(" NOT ".to_owned()),
                Just("=".to_owned()),
                Just("!=".to_owned()),
                Just("(".to_owned()),
                Just(")".to_owned()),
                Just(",".to_owned()),
                Just("\"".to_owned()),
                Just("'".to_owned()),
                Just("\\".to_owned()),
                Just("\\x".to_owned()),
                Just("\\u".to_owned()),
                "[a-zA-Z0-9_ \\t\\n.:/-]{1,4}",
                any::<char>().prop_map(String::from),
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn canonical_text_parses_to_the_same_tree(tree in filter_tree()) {
            let text = tree.to_string();
            let parsed = parse(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&tree), "canonical text: {}", text);
        }

        #[test]
        fn any_text_parses_or_fails_cleanly(text in prop_oneof![any::<String>(), filterish_text()]) {
            match parse(&text) {
                // What parses prints canonically, and that parses to the same tree.
                Ok(tree) => {
                    let canonical = tree.to_string();
                    prop_assert_eq!(parse(&canonical), Ok(tree));
                }
                Err(err) => {
                    prop_assert!(err.column >= 1 && err.column <= text.chars().count() + 1);
                }
            }
        }

        #[test]
        fn list_parsers_never_panic(text in prop_oneof![any::<String>(), filterish_text()]) {
            use crate::domain::compute::{ComputeImageFilter, ComputeSortField};
            use crate::domain::container::{ContainerImageFilter, ContainerSortField};
            use crate::domain::page::{QueryFingerprint, decode_token};
            let _ = ComputeImageFilter::parse(&text);
            let _ = ContainerImageFilter::parse(&text);
            let _ = crate::domain::order::parse::<ComputeSortField>(&text, 1);
            let _ = crate::domain::order::parse::<ContainerSortField>(&text, 3);
            prop_assert!(decode_token(&text, &QueryFingerprint::of("q")).is_err() || text.is_empty());
        }
    }
}
