//! The image rules of the API, as data: the length and pattern of each text
//! field of an image, and the limits on its labels. The catalog loader checks
//! entries with them; Create and Update will check requests with them.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::error::ApiError;

/// A text field: at most `max_chars` characters, matching `pattern` when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRule {
    pub field: &'static str,
    pub max_chars: usize,
    /// A whole-value pattern (anchored when used).
    pub pattern: Option<&'static str>,
}

/// An image's name: empty, or a lowercase letter, then up to 61 of `-_a-z0-9`, ending without `-_`.
pub const IMAGE_NAME: TextRule =
    TextRule::new("name", 63, Some("|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?"));

pub const IMAGE_DESCRIPTION: TextRule = TextRule::new("description", 256, None);

/// An image family: empty, or 3 to 63 of `-a-z0-9`, starting with a letter.
pub const IMAGE_FAMILY: TextRule =
    TextRule::new("family", 63, Some("|[a-z][-a-z0-9]{1,61}[a-z0-9]"));

/// A label key: 1 to 63 characters, starting with a lowercase letter.
pub const LABEL_KEY: TextRule = TextRule::new("labels", 63, Some(r"[a-z][-_./\\@0-9a-z]*"));

/// A label value: up to 63 characters.
pub const LABEL_VALUE: TextRule = TextRule::new("labels", 63, Some(r"[-_./\\@0-9a-z]*"));

/// The most labels an image may have.
pub const MAX_LABELS: usize = 64;

const RULES: [TextRule; 5] = [
    IMAGE_NAME,
    IMAGE_DESCRIPTION,
    IMAGE_FAMILY,
    LABEL_KEY,
    LABEL_VALUE,
];

/// Each rule's pattern compiled once, anchored, by pattern text.
static PATTERNS: LazyLock<BTreeMap<&'static str, Regex>> = LazyLock::new(|| {
    RULES
        .iter()
        .filter_map(|rule| rule.pattern)
        .filter_map(|pattern| {
            // The patterns are constants above, checked by a test to compile.
            Regex::new(&format!("^(?:{pattern})$"))
                .ok()
                .map(|regex| (pattern, regex))
        })
        .collect()
});

impl TextRule {
    pub const fn new(field: &'static str, max_chars: usize, pattern: Option<&'static str>) -> Self {
        Self {
            field,
            max_chars,
            pattern,
        }
    }

    /// Whether `value` keeps the rule; the error names the field.
    pub fn check(&self, value: &str) -> Result<(), ApiError> {
        let chars = value.chars().count();
        if chars > self.max_chars {
            return Err(ApiError::invalid_argument(
                self.field,
                format!(
                    "must be at most {} characters long, got {chars}",
                    self.max_chars
                ),
            ));
        }
        if let Some(pattern) = self.pattern
            && !PATTERNS
                .get(pattern)
                .is_some_and(|regex| regex.is_match(value))
        {
            return Err(ApiError::invalid_argument(
                self.field,
                format!("{value:?} does not match the pattern {pattern}"),
            ));
        }
        Ok(())
    }
}

/// An image's labels: at most [`MAX_LABELS`], each key and value by its rule.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::invalid_argument(
            "labels",
            format!("at most {MAX_LABELS} labels allowed, got {}", labels.len()),
        ));
    }
    for (key, value) in labels {
        LABEL_KEY.check(key)?;
        LABEL_VALUE.check(value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for rule in RULES {
            if let Some(pattern) = rule.pattern {
                assert!(PATTERNS.contains_key(pattern), "{pattern}");
            }
        }
    }

    #[test]
    fn names_and_families_follow_the_api_patterns() {
        for ok in [
            "",
            "a",
            "ubuntu-22-04-lts-v20251020",
            "a_b",
            &"a".repeat(63),
        ] {
            assert!(IMAGE_NAME.check(ok).is_ok(), "{ok}");
        }
        for bad in ["A", "1a", "a-", "a_", "ubuntu 22", &"a".repeat(64), "é"] {
            assert!(IMAGE_NAME.check(bad).is_err(), "{bad}");
        }
        for ok in ["", "abc", "ubuntu-2204-lts", &"a".repeat(63)] {
            assert!(IMAGE_FAMILY.check(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "a_b_c", "Abc", "abc-", "1abc"] {
            assert!(IMAGE_FAMILY.check(bad).is_err(), "{bad}");
        }
        assert!(IMAGE_DESCRIPTION.check(&"é".repeat(256)).is_ok());
        let err = IMAGE_DESCRIPTION.check(&"é".repeat(257)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "description: must be at most 256 characters long, got 257"
        );
    }

    #[test]
    fn labels_are_checked_by_count_key_and_value() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(check_labels(&labels(&[("env", "prod"), ("team.a/b@c", "x_1.2")])).is_ok());
        assert!(check_labels(&labels(&[("env", "")])).is_ok());
        for bad in [
            ("", "v"),
            ("Env", "v"),
            ("1env", "v"),
            ("env", "Prod"),
            ("env", "a b"),
        ] {
            let err = check_labels(&labels(&[bad])).unwrap_err();
            assert!(err.to_string().starts_with("labels: "), "{err}");
        }
        let many: BTreeMap<String, String> =
            (0..65).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_labels(&many).is_err());
        let long_key = "k".repeat(64);
        assert!(check_labels(&labels(&[(long_key.as_str(), "v")])).is_err());
    }
}
