//! JSON bodies: messages in the canonical proto3 JSON mapping, errors as a
//! google.rpc.Status, and the HTTP status of each gRPC code.

use http::StatusCode;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};

/// A message as canonical proto3 JSON: lowerCamelCase names, 64-bit integers as
/// strings, enums by name, defaults left out.
pub fn message_to_json(message: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    let mut serializer = serde_json::Serializer::new(&mut out);
    message.serialize_with_options(&mut serializer, &SerializeOptions::new())?;
    Ok(out)
}

/// The Status body of a failed call: the encoded google.rpc.Status from the call
/// when it has one (it carries the details), else one made of code and message.
pub fn status_to_json(
    status_descriptor: &MessageDescriptor,
    code: i32,
    message: &str,
    encoded_status: Option<&[u8]>,
) -> Vec<u8> {
    let decoded = encoded_status
        .filter(|bytes| !bytes.is_empty())
        .and_then(|bytes| DynamicMessage::decode(status_descriptor.clone(), bytes).ok());
    let status = decoded.unwrap_or_else(|| {
        let plain = crate::proto::google::rpc::Status {
            code,
            message: message.to_owned(),
            details: Vec::new(),
        };
        DynamicMessage::decode(status_descriptor.clone(), plain.encode_to_vec().as_slice())
            .unwrap_or_else(|_| DynamicMessage::new(status_descriptor.clone()))
    });
    message_to_json(&status).unwrap_or_else(|_| {
        // Only reachable with an Any detail of an unknown type; keep code and message.
        serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes()
    })
}

/// The google.rpc.Code to HTTP mapping that the Yandex Cloud API follows.
pub fn http_status(code: i32) -> StatusCode {
    match code {
        0 => StatusCode::OK,
        1 => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        3 | 9 | 11 => StatusCode::BAD_REQUEST,
        4 => StatusCode::GATEWAY_TIMEOUT,
        5 => StatusCode::NOT_FOUND,
        6 | 10 => StatusCode::CONFLICT,
        7 => StatusCode::FORBIDDEN,
        8 => StatusCode::TOO_MANY_REQUESTS,
        12 => StatusCode::NOT_IMPLEMENTED,
        14 => StatusCode::SERVICE_UNAVAILABLE,
        16 => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_as_in_the_api_conventions() {
        let expected = [
            200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401,
        ];
        for (code, status) in expected.iter().enumerate() {
            assert_eq!(http_status(code as i32).as_u16(), *status, "code {code}");
        }
    }
}
