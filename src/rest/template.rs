//! `google.api.http` path templates: parsing and matching.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    One,
    /// `**`: the rest of the path (only last, as the spec requires).
    Rest,
}

/// A variable and the segments it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    field_path: String,
    first: usize,
    /// One past the last segment; `None` when it ends in `**`.
    end: Option<usize>,
}

/// Path variables bound by a match: field path and decoded value.
pub type PathVars<'t> = Vec<(&'t str, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    text: String,
    /// `/` and the leading literal segments, each with the `/` after it when
    /// more follows: every matching raw path starts with it, so most routes
    /// are turned down by one comparison.
    literal_prefix: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad path template {template:?}: {problem}")]
pub struct TemplateError {
    template: String,
    problem: &'static str,
}

/// Why a request path is not usable at all (as opposed to simply not matching).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad percent-encoding in the path")]
pub struct BadPercentEncoding;

impl PathTemplate {
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let fail = |problem| TemplateError {
            template: text.to_owned(),
            problem,
        };
        let body = text.strip_prefix('/').ok_or(fail("must start with /"))?;
        // The verb follows the last ':' that is outside any {...}.
        let mut depth = 0usize;
        let mut verb_at = None;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.checked_sub(1).ok_or(fail("unbalanced }"))?,
                ':' if depth == 0 => verb_at = Some(i),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(fail("unbalanced {"));
        }
        let (path, verb) = match verb_at {
            Some(i) => (&body[..i], Some(body[i + 1..].to_owned())),
            None => (body, None),
        };
        if verb.as_deref() == Some("") {
            return Err(fail("empty verb"));
        }

        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in split_outside_braces(path) {
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or(fail("variable must be one segment"))?;
                let (field_path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field_path.is_empty() || !field_path.split('.').all(is_ident) {
                    return Err(fail("bad variable name"));
                }
                let first = segments.len();
                for sub in pattern.split('/') {
                    segments.push(parse_plain_segment(sub).ok_or(fail("bad segment"))?);
                }
                let end = (segments.last() != Some(&Segment::Rest)).then_some(segments.len());
                variables.push(Variable {
                    field_path: field_path.to_owned(),
                    first,
                    end,
                });
            } else {
                segments.push(parse_plain_segment(part).ok_or(fail("bad segment"))?);
            }
        }
        if let Some(pos) = segments.iter().position(|s| *s == Segment::Rest)
            && pos + 1 != segments.len()
        {
            return Err(fail("** must be the last segment"));
        }
        let mut literal_prefix = String::from("/");
        for (i, segment) in segments.iter().enumerate() {
            let Segment::Literal(literal) = segment else {
                break;
            };
            literal_prefix.push_str(literal);
            if i + 1 < segments.len() {
                literal_prefix.push('/');
            }
        }
        Ok(Self {
            text: text.to_owned(),
            literal_prefix,
            segments,
            variables,
            verb,
        })
    }

    /// Matches a raw (still percent-encoded) request path. On a match, returns
    /// each variable's field path with its decoded value.
    pub fn matches(&self, raw_path: &str) -> Result<Option<PathVars<'_>>, BadPercentEncoding> {
        if !raw_path.starts_with(&self.literal_prefix) {
            return Ok(None);
        }
        let Some(body) = raw_path.strip_prefix('/') else {
            return Ok(None);
        };
        let path = match &self.verb {
            Some(verb) => match body
                .strip_suffix(verb.as_str())
                .and_then(|p| p.strip_suffix(':'))
            {
                Some(path) => path,
                None => return Ok(None),
            },
            None => body,
        };
        // No vector of the parts: most routes are rejected on the count or on
        // the first literal, and this runs for every route on every call.
        let count = path.bytes().filter(|&b| b == b'/').count() + 1;
        let fits = match self.segments.last() {
            Some(Segment::Rest) => count >= self.segments.len() - 1,
            _ => count == self.segments.len(),
        };
        if !fits {
            return Ok(None);
        }
        for (segment, part) in self.segments.iter().zip(path.split('/')) {
            match segment {
                Segment::Literal(literal) if literal != part => return Ok(None),
                Segment::One if part.is_empty() => return Ok(None),
                _ => {}
            }
        }
        let mut bound = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let end = variable.end.unwrap_or(count);
            let mut value = String::new();
            for (i, part) in path.split('/').take(end).skip(variable.first).enumerate() {
                if i > 0 {
                    value.push('/');
                }
                percent_decode_into(part, &mut value)?;
            }
            bound.push((variable.field_path.as_str(), value));
        }
        Ok(Some(bound))
    }
}

impl PathTemplate {
    pub fn has_verb(&self) -> bool {
        self.verb.is_some()
    }

    /// The field paths its variables bind, in order.
    pub fn field_paths(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field_path.as_str())
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_outside_braces(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    parts
}

fn parse_plain_segment(text: &str) -> Option<Segment> {
    match text {
        "*" => Some(Segment::One),
        "**" => Some(Segment::Rest),
        "" => None,
        literal if !literal.contains(['{', '}', '*', ':']) => {
            Some(Segment::Literal(literal.into()))
        }
        _ => None,
    }
}

fn is_ident(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Strict percent-decoding: every `%` must start a two-digit hex escape and the
/// result must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, BadPercentEncoding> {
    let mut out = String::new();
    percent_decode_into(text, &mut out)?;
    Ok(out)
}

/// [`percent_decode`] appending to `out`; `out` is unchanged on an error.
fn percent_decode_into(text: &str, out: &mut String) -> Result<(), BadPercentEncoding> {
    if !text.contains('%') {
        out.push_str(text);
        return Ok(());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(BadPercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| BadPercentEncoding)?;
            decoded.push(u8::from_str_radix(hex, 16).map_err(|_| BadPercentEncoding)?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    out.push_str(std::str::from_utf8(&decoded).map_err(|_| BadPercentEncoding)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        PathTemplate::parse(template)
            .unwrap()
            .matches(path)
            .unwrap()
            .map(|v| v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    #[test]
    fn single_variable() {
        assert_eq!(
            vars("/compute/v1/images/{image_id}", "/compute/v1/images/fd8abc"),
            Some(vec![("image_id".into(), "fd8abc".into())])
        );
        assert_eq!(
            vars("/compute/v1/images/{image_id}", "/compute/v1/images"),
            None
        );
        assert_eq!(
            vars("/compute/v1/images/{image_id}", "/compute/v1/images/"),
            None
        );
        assert_eq!(
            vars("/compute/v1/images/{image_id}", "/compute/v1/images/a/b"),
            None
        );
    }

    #[test]
    fn custom_verbs() {
        let t = "/compute/v1/images:latestByFamily";
        assert_eq!(vars(t, "/compute/v1/images:latestByFamily"), Some(vec![]));
        assert_eq!(vars(t, "/compute/v1/images"), None);
        assert_eq!(vars(t, "/compute/v1/images:other"), None);
        assert_eq!(
            vars(
                "/compute/v1/images/{resource_id}:listAccessBindings",
                "/compute/v1/images/fd8x:listAccessBindings"
            ),
            Some(vec![("resource_id".into(), "fd8x".into())])
        );
    }

    #[test]
    fn nested_fields_patterns_and_rest() {
        assert_eq!(
            vars("/v1/{parent.name=shelves/*}/books", "/v1/shelves/s1/books"),
            Some(vec![("parent.name".into(), "shelves/s1".into())])
        );
        assert_eq!(
            vars("/v1/files/{path=**}", "/v1/files/a/b%2Fc/d"),
            Some(vec![("path".into(), "a/b/c/d".into())])
        );
        assert_eq!(vars("/v1/*/x", "/v1/any/x"), Some(vec![]));
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("a%20b").unwrap(), "a b");
        assert!(percent_decode("a%2").is_err());
        assert!(percent_decode("a%zz").is_err());
        assert!(percent_decode("%ff").is_err());
        let t = PathTemplate::parse("/x/{id}").unwrap();
        assert!(t.matches("/x/%G0").is_err());
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in ["x", "/a/{b", "/a/**/c", "/a/{}", "/a:"] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
