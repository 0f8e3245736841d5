//! The tokens in force, and their reload: on SIGHUP (the signal that rereads
//! the catalog and the TLS files too) the `--auth-tokens` file is read again
//! and, when it is valid, replaces the tokens whole, so a token is added or
//! revoked without a restart. A file that can't be used keeps the tokens in
//! force and is logged with the error start-up would have refused it with.
//!
//! Calls read the table through an `ArcSwap`: no lock on the call path, and a
//! call sees either the old table or the new one, never a mix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use super::tokens::{TokenTable, TokensFileError};

/// The tokens file and the table read from it last.
pub struct TokenStore {
    path: PathBuf,
    current: ArcSwap<TokenTable>,
}

impl TokenStore {
    /// Reads and checks the file; any problem refuses the start.
    pub fn load(path: &Path) -> Result<Self, TokensFileError> {
        let table = TokenTable::from_file(path)?;
        Ok(Self {
            path: path.to_owned(),
            current: ArcSwap::from_pointee(table),
        })
    }

    /// The table in force.
    pub fn current(&self) -> Guard<Arc<TokenTable>> {
        self.current.load()
    }

    /// Rereads the file and puts its tokens in force; on error the tokens in
    /// force stay. Returns how many tokens the file holds.
    pub fn reload(&self) -> Result<usize, TokensFileError> {
        let table = TokenTable::from_file(&self.path)?;
        let count = table.len();
        self.current.store(Arc::new(table));
        Ok(count)
    }

    /// Reloads, logging the outcome (for the SIGHUP handler).
    pub fn reload_and_log(&self) {
        match self.reload() {
            Ok(tokens) => {
                tracing::info!(file = %self.path.display(), tokens, "auth tokens reloaded");
            }
            Err(err) => tracing::error!(
                file = %self.path.display(),
                "auth tokens reload failed, still using the previous tokens: {err}"
            ),
        }
    }
}

/// Rereads the tokens file on every SIGHUP until the task is aborted. The
/// handler is registered before this returns, so a SIGHUP that comes once
/// serving has begun never meets the default action (termination).
pub fn reload_on_hangup(store: Arc<TokenStore>) -> std::io::Result<JoinHandle<()>> {
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            store.reload_and_log();
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::transport::auth::TokenDigest;

    fn tokens_json(subject: &str, token: &str) -> String {
        format!(
            r#"{{"tokens": [{{"subject": "{subject}", "sha256": "{}", "folders": ["*"]}}]}}"#,
            TokenDigest::of(token.as_bytes()).to_hex()
        )
    }

    fn write(path: &Path, text: &str) {
        let mut file = std::fs::File::create(path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn reload_replaces_the_tokens_and_a_bad_file_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        write(&path, &tokens_json("old", "old-token"));
        let store = TokenStore::load(&path).unwrap();
        assert!(store.current().caller(b"old-token").is_some());

        write(&path, &tokens_json("new", "new-token"));
        assert_eq!(store.reload().unwrap(), 1);
        assert!(store.current().caller(b"old-token").is_none());
        let caller = store.current().caller(b"new-token").cloned().unwrap();
        assert_eq!(caller.subject(), "new");

        write(&path, r#"{"tokens": [{"subject": "x"}]}"#);
        let err = store.reload().unwrap_err();
        assert!(err.to_string().contains("tokens.json"), "{err}");
        assert!(store.current().caller(b"new-token").is_some());

        std::fs::remove_file(&path).unwrap();
        assert!(store.reload().is_err());
        assert!(store.current().caller(b"new-token").is_some());
    }
}
