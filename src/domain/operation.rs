//! Operations, the Yandex Cloud way: every write answers one at once, with its
//! typed metadata, and it is done later with exactly one of a response or an
//! error. Ids, the idempotency key and the record a backend keeps live here.

use std::time::SystemTime;

use prost::Message;
use prost_types::Any;

use super::rules::TextRule;
use crate::error::ApiError;
use crate::proto::Timestamp;
use crate::proto::google::rpc::Status;
use crate::proto::operation::Operation;
use crate::proto::operation::operation::Result as Outcome;

/// The id alphabet of Yandex Cloud resources: 32 symbols, `0-9a-v`.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
/// Every id is 20 characters: a 3-character prefix and 17 random ones.
const ID_LEN: usize = 20;

/// The id prefix of compute images and their operations.
pub const COMPUTE_PREFIX: &str = "fd8";
/// The id prefix of container registry resources.
pub const CONTAINER_PREFIX: &str = "crp";

/// A new random id: `prefix` and random symbols up to 20 characters.
pub fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut id = String::with_capacity(ID_LEN);
    id.push_str(prefix);
    while id.len() < ID_LEN {
        id.push(char::from(
            ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())],
        ));
    }
    id
}

/// `operation_id` of Get and Cancel: required; an id is at most 50 characters.
const OPERATION_ID: TextRule = TextRule::new("operation_id", 50, None);

/// A valid `operation_id`.
pub fn parse_operation_id(id: String) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_argument("operation_id", "is required"));
    }
    OPERATION_ID.check(&id)?;
    Ok(id)
}

/// The `idempotency-key` of a write: the same caller, method and key start one
/// operation, however often they are sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey {
    /// The caller's subject; empty with authentication off.
    pub subject: String,
    /// The gRPC method, `/package.Service/Method`.
    pub method: String,
    pub key: String,
}

/// The longest key kept (a UUID is 36 characters).
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

impl IdempotencyKey {
    /// The key of a write, when its request carried one.
    pub fn of(subject: &str, method: &str, key: Option<&str>) -> Result<Option<Self>, ApiError> {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Ok(None);
        };
        if key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(ApiError::invalid_argument(
                "idempotency-key",
                format!("must be at most {MAX_IDEMPOTENCY_KEY} characters (a UUID)"),
            ));
        }
        Ok(Some(Self {
            subject: subject.to_owned(),
            method: method.to_owned(),
            key: key.to_owned(),
        }))
    }
}

/// What an operation does to its image when it is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum OperationKind {
    CreateComputeImage = 0,
    UpdateComputeImage = 1,
    DeleteComputeImage = 2,
    DeleteContainerImage = 3,
    SetAccessBindings = 4,
    UpdateAccessBindings = 5,
}

impl OperationKind {
    pub fn description(self) -> &'static str {
        match self {
            Self::CreateComputeImage => "Create image",
            Self::UpdateComputeImage => "Update image",
            Self::DeleteComputeImage | Self::DeleteContainerImage => "Delete image",
            Self::SetAccessBindings => "Set access bindings",
            Self::UpdateAccessBindings => "Update access bindings",
        }
    }

    /// The full name of its metadata message. All four hold only `image_id`
    /// (field 1), so their encodings are alike; the type is what differs.
    pub fn metadata_type(self) -> &'static str {
        match self {
            Self::CreateComputeImage => "yandex.cloud.compute.v1.CreateImageMetadata",
            Self::UpdateComputeImage => "yandex.cloud.compute.v1.UpdateImageMetadata",
            Self::DeleteComputeImage => "yandex.cloud.compute.v1.DeleteImageMetadata",
            Self::DeleteContainerImage => "yandex.cloud.containerregistry.v1.DeleteImageMetadata",
            // `resource_id`, also field 1.
            Self::SetAccessBindings => "yandex.cloud.access.SetAccessBindingsMetadata",
            Self::UpdateAccessBindings => "yandex.cloud.access.UpdateAccessBindingsMetadata",
        }
    }

    /// The id prefix of its operations: the API's, like its images'.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::DeleteContainerImage => CONTAINER_PREFIX,
            _ => COMPUTE_PREFIX,
        }
    }

    /// Whether Cancel can still stop it (a Create rolls back; the others are
    /// as good as done once accepted).
    pub fn cancellable(self) -> bool {
        self == Self::CreateComputeImage
    }
}

/// The metadata of every image operation: `{image_id = 1}`.
#[derive(Clone, PartialEq, prost::Message)]
struct ImageMetadata {
    #[prost(string, tag = "1")]
    image_id: String,
}

/// An operation as a backend keeps it: the API's `Operation` plus what the
/// server needs to finish it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredOperation {
    #[prost(message, required, tag = "1")]
    pub operation: Operation,
    #[prost(string, tag = "2")]
    pub image_id: String,
    #[prost(enumeration = "OperationKind", tag = "3")]
    pub kind: i32,
    /// When it is to be done (it may be done earlier by a Get, see
    /// [`Completion`]).
    #[prost(message, optional, tag = "4")]
    pub done_at: Option<Timestamp>,
    /// Set when the work will fail: the operation ends with this error and
    /// rolls back.
    #[prost(message, optional, tag = "5")]
    pub failure: Option<Status>,
    /// The folder of the image, for authorization (the image may be gone).
    #[prost(string, tag = "6")]
    pub folder_id: String,
    /// The response, when it is known at the start (the access-binding
    /// writes' effective deltas).
    #[prost(message, optional, tag = "7")]
    pub response: Option<Any>,
}

impl StoredOperation {
    /// A started operation: a new id, not done, its metadata naming the image.
    pub fn start(
        kind: OperationKind,
        (image_id, folder_id): (&str, &str),
        created_by: &str,
        now: Timestamp,
        done_at: Timestamp,
    ) -> Self {
        let metadata = pack(
            kind.metadata_type(),
            &ImageMetadata {
                image_id: image_id.to_owned(),
            },
        );
        Self {
            operation: Operation {
                id: new_id(kind.id_prefix()),
                description: kind.description().to_owned(),
                created_at: Some(now),
                created_by: created_by.to_owned(),
                modified_at: Some(now),
                done: false,
                metadata: Some(metadata),
                result: None,
            },
            image_id: image_id.to_owned(),
            folder_id: folder_id.to_owned(),
            response: None,
            kind: kind as i32,
            done_at: Some(done_at),
            failure: None,
        }
    }

    pub fn id(&self) -> &str {
        &self.operation.id
    }

    pub fn done(&self) -> bool {
        self.operation.done
    }

    /// Whether its time has come at `now`.
    pub fn due(&self, now: &Timestamp) -> bool {
        self.done_at
            .as_ref()
            .is_none_or(|at| (at.seconds, at.nanos) <= (now.seconds, now.nanos))
    }

    /// Marks it done with `outcome` at `now`.
    pub fn finish(&mut self, outcome: Outcome, now: Timestamp) {
        self.operation.done = true;
        self.operation.modified_at = Some(now);
        self.operation.result = Some(outcome);
    }
}

/// `message` packed as an `Any` of its full type name.
pub fn pack(type_name: &str, message: &impl Message) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// The error of a failed or cancelled operation.
pub fn error_status(code: tonic::Code, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
        details: Vec::new(),
    }
}

/// Now, as a protobuf timestamp.
pub fn now() -> Timestamp {
    timestamp(SystemTime::now())
}

pub fn timestamp(time: SystemTime) -> Timestamp {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// `time` plus `by`.
pub fn later(time: &Timestamp, by: std::time::Duration) -> Timestamp {
    let nanos = i64::from(time.nanos) + i64::from(by.subsec_nanos());
    Timestamp {
        seconds: time
            .seconds
            .saturating_add(i64::try_from(by.as_secs()).unwrap_or(i64::MAX))
            .saturating_add(nanos / 1_000_000_000),
        nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_the_clouds() {
        for prefix in [COMPUTE_PREFIX, CONTAINER_PREFIX] {
            let id = new_id(prefix);
            assert_eq!(id.len(), 20);
            assert!(id.starts_with(prefix));
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
        }
        assert_ne!(new_id("fd8"), new_id("fd8"));
    }

    #[test]
    fn a_key_is_optional_bounded_and_scoped() {
        assert_eq!(IdempotencyKey::of("ci", "/m", None), Ok(None));
        assert_eq!(IdempotencyKey::of("ci", "/m", Some("  ")), Ok(None));
        let key = IdempotencyKey::of("ci", "/m", Some("k1")).unwrap().unwrap();
        assert_eq!((key.subject.as_str(), key.key.as_str()), ("ci", "k1"));
        assert!(IdempotencyKey::of("ci", "/m", Some(&"k".repeat(129))).is_err());
    }

    #[test]
    fn time_adds_up_across_seconds() {
        let t = Timestamp {
            seconds: 10,
            nanos: 900_000_000,
        };
        let later = later(&t, std::time::Duration::from_millis(200));
        assert_eq!((later.seconds, later.nanos), (11, 100_000_000));
        let mut op = StoredOperation::start(
            OperationKind::CreateComputeImage,
            ("fd8img", "b1gfolder"),
            "ci",
            t,
            later,
        );
        let metadata = op.operation.metadata.clone().unwrap();
        assert_eq!(
            metadata.type_url,
            "type.googleapis.com/yandex.cloud.compute.v1.CreateImageMetadata"
        );
        let decoded =
            crate::proto::compute::CreateImageMetadata::decode(metadata.value.as_slice()).unwrap();
        assert_eq!(decoded.image_id, "fd8img");
        assert!(op.id().starts_with("fd8"));
        assert!(!op.due(&t));
        assert!(op.due(&later));
        op.finish(
            Outcome::Error(error_status(tonic::Code::Cancelled, "c")),
            later,
        );
        assert!(op.done());
        assert_eq!(op.kind(), OperationKind::CreateComputeImage);
        let decoded = StoredOperation::decode(op.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, op);
    }
}
