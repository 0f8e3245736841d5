//! Reading a field of an encoded message without decoding it: the Get fast
//! path and the written-images index hold images encoded.

use bytes::Buf;
use prost::encoding::{WireType, decode_key, decode_varint, skip_field};

/// A top-level string field of an encoded message, read without decoding the
/// rest (the Get fast path holds images encoded). `None` when the field is
/// absent (proto3: empty) or the bytes are malformed.
pub fn encoded_string_field(mut bytes: &[u8], number: u32) -> Option<String> {
    let mut found = None;
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        if tag == number && wire_type == WireType::LengthDelimited {
            let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
            let value = bytes.get(..len)?;
            // The last occurrence wins, as when decoding.
            found = Some(std::str::from_utf8(value).ok()?.to_owned());
            bytes.advance(len);
        } else {
            skip_field(wire_type, tag, &mut bytes, Default::default()).ok()?;
        }
    }
    found
}

/// The field numbers of `compute.v1.Image` read this way.
pub const COMPUTE_FOLDER_ID: u32 = 2;
pub const COMPUTE_NAME: u32 = 4;

/// The folder of an encoded compute image.
pub fn compute_image_folder(encoded: &[u8]) -> Option<String> {
    encoded_string_field(encoded, COMPUTE_FOLDER_ID)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::{compute, container_registry};

    #[test]
    fn reads_a_string_field_of_an_encoded_image() {
        let image = compute::Image {
            id: "fd8abc".into(),
            folder_id: "b1gfolder".into(),
            name: "ubuntu".into(),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            min_disk_size: 42,
            ..Default::default()
        };
        let bytes = image.encode_to_vec();
        assert_eq!(
            encoded_string_field(&bytes, 2).as_deref(),
            Some("b1gfolder")
        );
        assert_eq!(encoded_string_field(&bytes, 4).as_deref(), Some("ubuntu"));
        assert_eq!(encoded_string_field(&bytes, 5), None);
        let container = container_registry::Image {
            id: "crp1".into(),
            name: "crpreg/team/app".into(),
            ..Default::default()
        };
        assert_eq!(
            encoded_string_field(&container.encode_to_vec(), 2).as_deref(),
            Some("crpreg/team/app")
        );
        assert_eq!(encoded_string_field(&bytes[..bytes.len() - 1], 2), None);
    }
}
