//! Bearer-token authentication and folder authorization, off unless a tokens
//! file is given (`--auth-tokens`).
//!
//! - [`tokens`]: the tokens file (SHA-256 digests, subjects, folders).
//! - [`store`]: the tokens in force, reread from the file on SIGHUP.
//! - [`layer`]: the tower layer around both ImageServices that finds the caller.
//!
//! Who a caller is and what it may read is `domain::access`.

pub mod layer;
pub mod store;
pub mod tokens;

pub use crate::domain::access::Caller;
pub use layer::AuthLayer;
pub use store::TokenStore;
pub use tokens::{TokenDigest, TokenTable, TokensFileError};
