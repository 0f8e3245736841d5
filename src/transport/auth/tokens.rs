//! The tokens file: who may call, stored as SHA-256 digests so that the file
//! itself gives nobody a usable token, and the roles each caller has in which
//! folders.
//!
//! ```json
//! {"tokens": [
//!   {"subject": "ajeci", "subject_type": "serviceAccount", "sha256": "<64 hex digits>",
//!    "roles": {"b1g...": ["editor"], "b1h...": ["compute.images.user"]}},
//!   {"subject": "ci", "sha256": "<64 hex digits>", "folders": ["b1g..."]},
//!   {"subject": "admin", "sha256": "<64 hex digits>", "roles": {"*": ["admin"]}}
//! ]}
//! ```
//!
//! `folders` and `write_folders` (the first form of the file) are short for
//! the roles `viewer` and `editor` in those folders.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::access::{ALL_FOLDERS, Caller, Role, SYSTEM};
use crate::domain::bindings::SUBJECT_TYPES;

const DEFAULT_SUBJECT_TYPE: &str = "userAccount";

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
            let caller = caller_of(&entry).map_err(at)?;
            callers.insert(digest, Arc::new(caller));
        }
        Ok(Self { callers })
    }
}

/// The caller an entry describes, with every role it gives.
fn caller_of(entry: &TokenEntry) -> Result<Caller, String> {
    let subject_type = entry
        .subject_type
        .as_deref()
        .unwrap_or(DEFAULT_SUBJECT_TYPE);
    // The API's subject types but `system`, which is for bindings only.
    let token_types: Vec<&str> = SUBJECT_TYPES.into_iter().filter(|t| *t != SYSTEM).collect();
    if !token_types.contains(&subject_type) {
        return Err(format!(
            "subject_type {subject_type:?} is not one of {}",
            token_types.join(", ")
        ));
    }
    let mut caller = Caller::new(entry.subject.as_str(), subject_type);
    for (field, folders, role) in [
        ("folders", &entry.folders, Role::Viewer),
        ("write_folders", &entry.write_folders, Role::Editor),
    ] {
        let Some(folders) = folders else { continue };
        for folder in folder_list(field, folders)? {
            caller.grant(folder, role);
        }
    }
    for (folder, roles) in &entry.roles {
        if folder.trim().is_empty() {
            return Err("roles has an empty folder id".to_owned());
        }
        if roles.is_empty() {
            return Err(format!(
                "roles of {folder:?} is empty: name at least one role"
            ));
        }
        let mut seen = HashSet::new();
        for id in roles {
            let role = Role::parse(id).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.id()).collect();
                format!(
                    "roles of {folder:?}: unknown role {id:?} (known: {})",
                    known.join(", ")
                )
            })?;
            if !seen.insert(id) {
                return Err(format!("roles of {folder:?} lists {id:?} twice"));
            }
            caller.grant(folder, role);
        }
    }
    Ok(caller)
}

/// The folders of `folders` or `write_folders`: ids, or `*` alone for every folder.
fn folder_list<'a>(field: &str, folders: &'a [String]) -> Result<Vec<&'a str>, String> {
    if folders.is_empty() {
        return Err(format!(
            "{field} is empty: list folder ids, or [\"{ALL_FOLDERS}\"] for every folder"
        ));
    }
    if folders.iter().any(|f| f == ALL_FOLDERS) && folders.len() > 1 {
        return Err(format!(
            "{field} mixes \"{ALL_FOLDERS}\" (every folder) with folder ids"
        ));
    }
    let mut seen = HashSet::with_capacity(folders.len());
    for folder in folders {
        if folder.trim().is_empty() {
            return Err(format!("{field} holds an empty folder id"));
        }
        if !seen.insert(folder.as_str()) {
            return Err(format!("{field} lists {folder:?} twice"));
        }
    }
    Ok(folders.iter().map(String::as_str).collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    /// The subject's id: what bindings name and operations record as `created_by`.
    subject: String,
    #[serde(default)]
    subject_type: Option<String>,
    sha256: String,
    /// The folders it reads (role `viewer`).
    #[serde(default)]
    folders: Option<Vec<String>>,
    /// The folders it also writes (role `editor`).
    #[serde(default)]
    write_folders: Option<Vec<String>>,
    /// Roles by folder id (`*`: every folder).
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
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
    use crate::domain::access::{Action, Resource, Service, permits};

    fn may(caller: &Caller, action: Action, service: Service, folder: &str) -> bool {
        permits(caller, action, &Resource::in_folder(service, Some(folder)))
    }

    fn may_read(caller: &Caller, folder: &str) -> bool {
        may(caller, Action::Read, Service::Compute, folder)
    }

    fn may_write(caller: &Caller, folder: &str) -> bool {
        may(caller, Action::Write, Service::Compute, folder)
    }

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
        assert!(may_read(caller, "f1"));
        assert!(!may_read(caller, "f2"));
        assert!(table.caller(b"Secret").is_none());
        assert!(!may_write(caller, "f1"));
        assert_eq!(caller.subject_type(), "userAccount");
        let writer = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "p", "sha256": "{DIGEST_OF_SECRET}", "folders": ["f1"], "write_folders": ["f2"]}}]}}"#
        ))
        .unwrap();
        let caller = writer.caller(b"secret").unwrap();
        assert!(may_write(caller, "f2") && !may_write(caller, "f1"));
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
    fn gives_the_roles_it_lists() {
        let table = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "aje1", "subject_type": "serviceAccount", "sha256": "{DIGEST_OF_SECRET}",
                "roles": {{"f1": ["compute.images.user"], "f2": ["viewer", "compute.admin"], "*": ["container-registry.images.puller"]}}}}]}}"#
        ))
        .unwrap();
        let caller = table.caller(b"secret").unwrap();
        assert_eq!(
            (caller.subject(), caller.subject_type()),
            ("aje1", "serviceAccount")
        );
        assert!(may_read(caller, "f1") && !may_write(caller, "f1"));
        assert!(may(caller, Action::ManageAccess, Service::Compute, "f2"));
        assert!(!may(
            caller,
            Action::Write,
            Service::ContainerRegistry,
            "f2"
        ));
        assert!(may(caller, Action::Read, Service::ContainerRegistry, "any"));
        assert!(!may_read(caller, "f3"));
        // A token with no roles at all is still a caller: bindings can give it some.
        let bare = TokenTable::from_json(&format!(
            r#"{{"tokens": [{{"subject": "u", "sha256": "{DIGEST_OF_SECRET}"}}]}}"#
        ))
        .unwrap();
        assert!(!may_read(bare.caller(b"secret").unwrap(), "f1"));
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
            (
                format!(
                    r#"{{"tokens": [{{"subject": "a", "sha256": "{DIGEST_OF_SECRET}", "roles": {{"f": ["edtor"]}}}}]}}"#
                ),
                "tokens[0] (\"a\"): roles of \"f\": unknown role \"edtor\" (known: viewer, editor,",
            ),
            (
                format!(
                    r#"{{"tokens": [{{"subject": "a", "sha256": "{DIGEST_OF_SECRET}", "roles": {{"f": []}}}}]}}"#
                ),
                "roles of \"f\" is empty",
            ),
            (
                format!(
                    r#"{{"tokens": [{{"subject": "a", "sha256": "{DIGEST_OF_SECRET}", "roles": {{"f": ["viewer", "viewer"]}}}}]}}"#
                ),
                "roles of \"f\" lists \"viewer\" twice",
            ),
            (
                format!(
                    r#"{{"tokens": [{{"subject": "a", "subject_type": "system", "sha256": "{DIGEST_OF_SECRET}"}}]}}"#
                ),
                "subject_type \"system\" is not one of userAccount, serviceAccount, federatedUser",
            ),
        ];
        for (text, expected) in cases {
            let err = TokenTable::from_json(&text).err().unwrap();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
