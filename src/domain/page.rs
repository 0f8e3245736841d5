//! Paging: `page_size`, and the keyset page token.
//!
//! A page token says "continue after image X of query Q". In bytes:
//!
//! ```text
//! version (1) | fingerprint of Q (8) | id of X (1..=58) | MAC (8)
//! ```
//!
//! in URL-safe base64 without padding: at most 100 characters for any id of
//! at most 58 bytes (the catalog keeps ids to 50 ASCII characters), within the
//! API's own limit on `page_token`. The fingerprint is the first 8 bytes of the
//! SHA-256 of the query's canonical text (scope, filter, order), so a token can't
//! be carried over to another query. The MAC is HMAC-SHA256 over everything
//! before it, truncated to 8 bytes, so an altered token is refused. The key is
//! built in, so tokens outlive a restart and work on every replica; it detects
//! tampering, it is no secret: a forged token could only name a position in a
//! query its caller may run anyway.
//!
//! Only the id travels: the backend finds that image's sort key, so a page costs
//! the same at page 1 and page 1,000.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::{ImageId, check_max_length};
use crate::error::ApiError;

pub const PAGE_SIZE_FIELD: &str = "page_size";
pub const PAGE_TOKEN_FIELD: &str = "page_token";

/// `page_size` 0 means this many.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;
/// The API's `length: <=100` on `page_token`.
pub const MAX_PAGE_TOKEN_CHARS: usize = 100;

const VERSION: u8 = 1;
const FINGERPRINT_LEN: usize = 8;
const MAC_LEN: usize = 8;
const HEADER_LEN: usize = 1 + FINGERPRINT_LEN;
/// Bytes that 100 characters of unpadded base64 hold.
const MAX_TOKEN_BYTES: usize = MAX_PAGE_TOKEN_CHARS / 4 * 3;
/// The longest id (in bytes) a token can carry.
pub const MAX_TOKEN_ID_BYTES: usize = MAX_TOKEN_BYTES - HEADER_LEN - MAC_LEN;

const MAC_KEY: &[u8] = b"image-service/page-token/v1";

/// How many images a page may hold: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// `page_size` as the API defines it: 0 means 100, at most 1000.
    pub fn parse(value: i64) -> Result<Self, ApiError> {
        match u32::try_from(value) {
            Ok(0) => Ok(Self(DEFAULT_PAGE_SIZE)),
            Ok(size) if size <= MAX_PAGE_SIZE => Ok(Self(size)),
            _ => Err(ApiError::invalid_argument(
                PAGE_SIZE_FIELD,
                format!(
                    "must be between 0 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE}), got {value}"
                ),
            )),
        }
    }

    pub fn get(self) -> usize {
        self.0 as usize
    }
}

/// Which page of a query to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: PageSize,
    /// Continue after the image with this id (from the page token); None for the first page.
    pub after: Option<ImageId>,
}

/// Checks `page_size` and the length of `page_token` (its content is checked
/// against the query by [`ListRequest::new`]).
pub fn check_paging(page_size: i64, page_token: &str) -> Result<PageSize, ApiError> {
    let size = PageSize::parse(page_size)?;
    check_max_length(PAGE_TOKEN_FIELD, page_token, MAX_PAGE_TOKEN_CHARS)?;
    Ok(size)
}

/// A parsed List request: the query, which page of it, and the query's
/// fingerprint that its page tokens carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest<Q> {
    pub query: Q,
    pub page: PageRequest,
    fingerprint: QueryFingerprint,
}

impl<Q> ListRequest<Q> {
    /// `canonical` is the query's canonical text; `page_token` must belong to it.
    pub fn new(
        query: Q,
        canonical: &str,
        size: PageSize,
        page_token: &str,
    ) -> Result<Self, ApiError> {
        let fingerprint = QueryFingerprint::of(canonical);
        let after = decode_token(page_token, &fingerprint)?;
        Ok(Self {
            query,
            page: PageRequest { size, after },
            fingerprint,
        })
    }

    /// A List request from its paging fields and the rest, checked in that
    /// order (`query` checks the rest): then the page token against the query's
    /// canonical text (`canonical`).
    pub fn from_parts(
        page_size: i64,
        page_token: &str,
        query: impl FnOnce() -> Result<Q, ApiError>,
        canonical: impl FnOnce(&Q) -> String,
    ) -> Result<Self, ApiError> {
        let size = check_paging(page_size, page_token)?;
        let query = query()?;
        let canonical = canonical(&query);
        Self::new(query, &canonical, size, page_token)
    }

    /// The token of the page after the one that ends with the image `last_id`.
    pub fn next_page_token(&self, last_id: &str) -> Result<String, ApiError> {
        encode_token(&self.fingerprint, last_id)
    }
}

/// Identifies a query (scope, filter and order) across calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryFingerprint([u8; FINGERPRINT_LEN]);

impl QueryFingerprint {
    /// The fingerprint of a query's canonical text.
    pub fn of(canonical_query: &str) -> Self {
        let digest = Sha256::digest(canonical_query.as_bytes());
        let mut bytes = [0; FINGERPRINT_LEN];
        bytes.copy_from_slice(&digest[..FINGERPRINT_LEN]);
        Self(bytes)
    }
}

/// The page token that continues `query` after the image `last_id`.
pub fn encode_token(query: &QueryFingerprint, last_id: &str) -> Result<String, ApiError> {
    if last_id.is_empty() || last_id.len() > MAX_TOKEN_ID_BYTES {
        return Err(ApiError::Internal(format!(
            "image id {last_id:?} can't be carried in a page token (1 to {MAX_TOKEN_ID_BYTES} bytes)"
        )));
    }
    let mut bytes = Vec::with_capacity(HEADER_LEN + last_id.len() + MAC_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&query.0);
    bytes.extend_from_slice(last_id.as_bytes());
    let tag = mac(&bytes)?.finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Reads `page_token` for `query`: None when empty (the first page), the id to
/// continue after otherwise. Every problem is INVALID_ARGUMENT naming page_token.
pub fn decode_token(token: &str, query: &QueryFingerprint) -> Result<Option<ImageId>, ApiError> {
    if token.is_empty() {
        return Ok(None);
    }
    check_max_length(PAGE_TOKEN_FIELD, token, MAX_PAGE_TOKEN_CHARS)?;
    let malformed = || {
        ApiError::invalid_argument(
            PAGE_TOKEN_FIELD,
            "is malformed: pass the next_page_token of the previous page, or none for the first page",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| malformed())?;
    if bytes.len() <= HEADER_LEN + MAC_LEN || bytes[0] != VERSION {
        return Err(malformed());
    }
    let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    mac(body)?
        .verify_truncated_left(tag)
        .map_err(|_| ApiError::invalid_argument(PAGE_TOKEN_FIELD, "is corrupt or was altered"))?;
    if body[1..HEADER_LEN] != query.0 {
        return Err(ApiError::invalid_argument(
            PAGE_TOKEN_FIELD,
            "belongs to a different query: while paging, change nothing but page_size and page_token",
        ));
    }
    let id = std::str::from_utf8(&body[HEADER_LEN..]).map_err(|_| malformed())?;
    ImageId::parse(PAGE_TOKEN_FIELD, id.to_owned())
        .map(Some)
        .map_err(|_| malformed())
}

fn mac(data: &[u8]) -> Result<Hmac<Sha256>, ApiError> {
    let mac = Hmac::<Sha256>::new_from_slice(MAC_KEY)
        .map_err(|err| ApiError::Internal(format!("page token MAC key: {err}")))?;
    Ok(mac.chain_update(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: ApiError) -> String {
        err.to_string()
    }

    #[test]
    fn page_size_bounds() {
        assert_eq!(PageSize::parse(0).unwrap().get(), 100);
        assert_eq!(PageSize::parse(1).unwrap().get(), 1);
        assert_eq!(PageSize::parse(1000).unwrap().get(), 1000);
        for bad in [1001, -1, i64::MIN, i64::MAX] {
            assert_eq!(
                message(PageSize::parse(bad).unwrap_err()),
                format!("page_size: must be between 0 and 1000 (0 means 100), got {bad}")
            );
        }
    }

    #[test]
    fn round_trip_and_length() {
        let query = QueryFingerprint::of("compute folder=f filter= order=id asc");
        let longest = "x".repeat(50);
        for id in ["a", "fd8e0i00mv2ba2rsl5re", longest.as_str()] {
            let token = encode_token(&query, id).unwrap();
            assert!(token.len() <= MAX_PAGE_TOKEN_CHARS, "{token}");
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode_token(&token, &query).unwrap().unwrap().as_str(), id);
        }
        assert_eq!(decode_token("", &query), Ok(None));
        // 58 bytes still fit in 100 characters; one more doesn't.
        let widest = "é".repeat(29);
        assert!(encode_token(&query, &widest).unwrap().len() <= 100);
        assert!(encode_token(&query, &format!("{widest}x")).is_err());
    }

    #[test]
    fn other_query_altered_or_malformed_is_refused() {
        let query = QueryFingerprint::of("q1");
        let token = encode_token(&query, "fd8e0i00mv2ba2rsl5re").unwrap();
        let other = decode_token(&token, &QueryFingerprint::of("q2")).unwrap_err();
        assert!(message(other).contains("different query"));

        // Every single-character change is caught, as altered or malformed.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for i in 0..token.len() {
            for replacement in alphabet.chars() {
                let mut altered: Vec<char> = token.chars().collect();
                if altered[i] == replacement {
                    continue;
                }
                altered[i] = replacement;
                let altered: String = altered.into_iter().collect();
                let err = decode_token(&altered, &query).unwrap_err();
                let text = message(err);
                assert!(
                    text.starts_with("page_token: ")
                        && (text.contains("altered") || text.contains("malformed")),
                    "{altered}: {text}"
                );
            }
        }
        for junk in [
            "x",
            "!!!!",
            "AAAA",
            &"A".repeat(101),
            &token[..token.len() - 1],
        ] {
            let text = message(decode_token(junk, &query).unwrap_err());
            assert!(text.starts_with("page_token: "), "{junk}: {text}");
        }
    }
}
