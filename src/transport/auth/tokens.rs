//! The tokens file: who may call, stored as SHA-256 digests so that the file
//! itself gives nobody a usable token.
//!
//! ```json
//! {"tokens": [
//!   {"subject": "ci", "sha256": "<64 hex digits>", "folders": ["b1g..."]},
//!   {"subject": "pipeline", "sha256": "<64 hex digits>", "folders": ["b1g..."],
//!    "write_folders": ["b1g..."]},
//!   {"subject": "admin", "sha256": "<64 hex digits>", "folders": ["*"], "write_folders": ["*"]}
//! ]}
//! ```

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::access::{Caller, FolderAccess};

/// The folder entry that grants every folder.
pub const ALL_FOLDERS: &str = "*";

/// The SHA-256 digest of a token. Equality is constant-time, so a lookup that
/// ends in a comparison tells nothing about how many leading bytes matched.
#[derive(Clone, Copy)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &[u8]) -> Self {
        Self(Sha256::digest(token).into())
    }

    /// Lower-case hex, as the tokens file holds it.
    pub fn to_hex(self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        text
    }

    /// Exactly 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = char::from(pair[0]).to_digit(16)?;
            let low = char::from(pair[1]).to_digit(16)?;
            *out = u8::try_from(high << 4 | low).ok()?;
        }
        Some(Self(digest))
    }
}

impl PartialEq for TokenDigest {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for TokenDigest {}

impl Hash for TokenDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// The callers the tokens file names, by the digest of their token.
#[derive(Default)]
pub struct TokenTable {
    callers: HashMap<TokenDigest, Arc<Caller>>,
}

impl TokenTable {
    /// The caller whose token this is. The presented token is hashed first, so
    /// the table is searched by digest and never holds or compares a token.
    pub fn caller(&self, token: &[u8]) -> Option<&Arc<Caller>> {
        self.callers.get(&TokenDigest::of(token))
    }

    pub fn len(&self) -> usize {
        self.callers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    /// Reads and validates a tokens file.
    pub fn from_file(path: &Path) -> Result<Self, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|err| TokensFileError {
            path: path.to_owned(),
            problem: format!("cannot read: {err}"),
        })?;
        Self::from_json(&text).map_err(|problem| TokensFileError {
            path: path.to_owned(),
            problem,
        })
    }

    /// Parses and validates a tokens file's text; the error names the entry and the problem.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: TokensFile =
            serde_json::from_str(text).map_err(|err| format!("not a valid tokens file: {err}"))?;
        if file.tokens.is_empty() {
            return Err("\"tokens\" is empty: no caller could ever be let in".to_owned());
        }
        let mut callers = HashMap::with_capacity(file.tokens.len());
        let mut first_with: HashMap<TokenDigest, usize> = HashMap::new();
        for (index, entry) in file.tokens.into_iter().enumerate() {
            let at = |problem: String| format!("tokens[{index}] ({:?}): {problem}", entry.subject);
            if entry.subject.trim().is_empty() {
                return Err(format!("tokens[{index}]: subject is empty"));
            }
            let digest = TokenDigest::from_hex(&entry.sha256).ok_or_else(|| {
                at("sha256 must be 64 hex digits (the SHA-256 of the token; see `image-service hash-token`)".to_owned())
            })?;
            if let Some(first) = first_with.insert(digest, index) {
                return Err(at(format!(
                    "sha256 duplicates the one of tokens[{first}]: each token must be listed once"
                )));
            }
            let folders = folder_access(&entry.folders).map_err(at)?;
            let writes = if entry.write_folders.is_empty() {
                FolderAccess::Only(HashSet::new())
            } else {
                folder_access(&entry.write_folders)
                    .map_err(|problem| at(format!("write_{problem}")))?
            };
            callers.insert(
                digest,
                Arc::new(Caller::with_writes(entry.subject, folders, writes)),
            );
        }
        Ok(Self { callers })
    }
}

fn folder_access(folders: &[String]) -> Result<FolderAccess, String> {
    if folders.is_empty() {
        return Err(format!(
            "folders is empty: list folder ids, or [\"{ALL_FOLDERS}\"] for every folder"
        ));
    }
    if folders.iter().any(|f| f == ALL_FOLDERS) {
        if folders.len() > 1 {
            return Err(format!(
                "folders mixes \"{ALL_FOLDERS}\" (every folder) with folder ids"
            ));
        }
        return Ok(FolderAccess::All);
    }
    let mut set = HashSet::with_capacity(folders.len());
    for folder in folders {
        if folder.trim().is_empty() {
            return Err("folders holds an empty folder id".to_owned());
        }
        if !set.insert(folder.as_str().into()) {
            return Err(format!("folders lists {folder:?} twice"));
        }
    }
    Ok(FolderAccess::Only(set))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    subject: String,
    sha256: String,
    folders: Vec<String>,
    /// The folders it may also write (Create, Update, Delete); none when absent.
    #[serde(default)]
    write_folders: Vec<String>,
}

/// A tokens file that can't be used; the start is refused.
#[derive(Debug, thiserror::Error)]
#[error("auth tokens file {}: {problem}", path.display())]
pub struct TokensFileError {
    pub path: PathBuf,
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST_OF_SECRET: &str =
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn digests_round_trip_through_hex() {
        let digest = TokenDigest::of(b"secret");
        assert_eq!(digest.to_hex(), DIGEST_OF_SECRET);
        assert!(TokenDigest::from_hex(DIGEST_OF_SECRET) == Some(digest));
        assert!(TokenDigest::from_hex(&DIGEST_OF_SECRET.to_uppercase()) == Some(digest));
        assert!(TokenDigest::from_hex(&DIGEST_OF_SECRET[1..]).is_none());
        assert!(TokenDigest::from_hex(&DIGEST_OF_SECRET.replace('2', "g")).is_none());
        assert!(TokenDigest::from_hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn finds_callers_by_their_token() {
        let table = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "ci", "sha256": "{DIGEST_OF_SECRET}", "folders": ["f1"]}}]}}"#
        ))
        .unwrap();
        let caller = table.caller(b"secret").unwrap();
        assert_eq!(caller.subject(), "ci");
        assert!(caller.may_read("f1"));
        assert!(!caller.may_read("f2"));
        assert!(table.caller(b"Secret").is_none());
        assert!(!caller.may_write("f1"));
        let writer = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "p", "sha256": "{DIGEST_OF_SECRET}", "folders": ["f1"], "write_folders": ["f2"]}}]}}"#
        ))
        .unwrap();
        let caller = writer.caller(b"secret").unwrap();
        assert!(caller.may_write("f2") && !caller.may_write("f1"));
        let bad = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "p", "sha256": "{DIGEST_OF_SECRET}", "folders": ["f1"], "write_folders": ["f2", "f2"]}}]}}"#
        ));
        assert!(
            bad.err()
                .unwrap()
                .contains("write_folders lists \"f2\" twice")
        );
    }

    #[test]
    fn refuses_bad_entries_naming_them() {
        let entry = |subject: &str, sha: &str, folders: &str| {
            format!(r#"{{"subject": "{subject}", "sha256": "{sha}", "folders": {folders}}}"#)
        };
        let file = |entries: &[String]| format!(r#"{{"tokens": [{}]}}"#, entries.join(","));
        let ok = entry("a", DIGEST_OF_SECRET, r#"["f"]"#);
        let cases = [
            (file(&[]), "\"tokens\" is empty"),
            (
                file(&[ok.clone(), entry("b", DIGEST_OF_SECRET, r#"["g"]"#)]),
                "tokens[1] (\"b\"): sha256 duplicates the one of tokens[0]",
            ),
            (
                file(&[entry("b", "abc", r#"["g"]"#)]),
                "tokens[0] (\"b\"): sha256 must be 64 hex digits",
            ),
            (
                file(&[entry("b", DIGEST_OF_SECRET, "[]")]),
                "tokens[0] (\"b\"): folders is empty",
            ),
            (
                file(&[entry("b", DIGEST_OF_SECRET, r#"["*", "f"]"#)]),
                "folders mixes",
            ),
            (
                file(&[entry("b", DIGEST_OF_SECRET, r#"["f", "f"]"#)]),
                "lists \"f\" twice",
            ),
            (
                file(&[entry(" ", DIGEST_OF_SECRET, r#"["f"]"#)]),
                "tokens[0]: subject is empty",
            ),
            (
                r#"{"tokens": [{"subject": "a", "token": "x", "folders": ["f"]}]}"#.to_owned(),
                "unknown field `token`",
            ),
        ];
        for (text, expected) in cases {
            let err = TokenTable::from_json(&text).err().unwrap();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
