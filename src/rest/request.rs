//! Builds the gRPC request message of a REST call from its path variables, query
//! parameters and body, per the HttpRule mapping.
//!
//! Everything is gathered into one proto3 JSON object and parsed by prost-reflect,
//! so values take exactly the forms the JSON mapping allows. Each query parameter
//! is checked first, so an error names the parameter the caller wrote.

use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value as Json};

use super::routes::{BodyTarget, Route};
use super::template::{PathVars, percent_decode};
use crate::error::ApiError;

/// The encoded request message for `route`, or INVALID_ARGUMENT naming what is wrong.
pub fn encode_request(
    route: &Route,
    path_vars: PathVars<'_>,
    query: Option<&str>,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    if query.is_none_or(str::is_empty)
        && body.is_empty()
        && let Some(encoded) = encode_path_strings(route, &path_vars)
    {
        return Ok(encoded);
    }
    build_request(route, path_vars, query, body).map(|message| message.encode_to_vec())
}

/// The common case (a Get: only path variables, each a top-level string field)
/// encoded directly: the same bytes the general path makes, without building a
/// JSON object and a dynamic message first. `None` when the request needs more.
fn encode_path_strings(route: &Route, path_vars: &PathVars<'_>) -> Option<Vec<u8>> {
    let mut fields = Vec::with_capacity(path_vars.len());
    for (field_path, value) in path_vars {
        let field = route
            .input
            .get_field_by_json_name(field_path)
            .or_else(|| route.input.get_field_by_name(field_path))?;
        if field.kind() != Kind::String || field.is_list() || field.supports_presence() {
            return None;
        }
        fields.push((field.number(), value.as_str()));
    }
    // A later binding of the same field wins, as in the JSON object; fields in number order.
    fields.reverse();
    fields.sort_by_key(|(number, _)| *number);
    fields.dedup_by_key(|(number, _)| *number);
    let mut out = Vec::with_capacity(path_vars.iter().map(|(_, v)| v.len() + 12).sum());
    for (number, value) in fields {
        // Defaults are left out, as the general encoder does.
        if value.is_empty() {
            continue;
        }
        prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(value.len() as u64, &mut out);
        out.extend_from_slice(value.as_bytes());
    }
    Some(out)
}

/// The request message for `route`, or INVALID_ARGUMENT naming what is wrong.
fn build_request(
    route: &Route,
    path_vars: PathVars<'_>,
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let mut object = match &route.body {
        BodyTarget::Whole if !body.is_empty() => match serde_json::from_slice(body) {
            Ok(Json::Object(map)) => map,
            Ok(_) => return Err(ApiError::invalid_argument("body", "must be a JSON object")),
            Err(err) => {
                return Err(ApiError::invalid_argument(
                    "body",
                    format!("invalid JSON: {err}"),
                ));
            }
        },
        BodyTarget::Field(field) if !body.is_empty() => {
            let value = serde_json::from_slice(body).map_err(|err| {
                ApiError::invalid_argument("body", format!("invalid JSON: {err}"))
            })?;
            let mut map = Map::new();
            map.insert(field.clone(), value);
            map
        }
        _ => Map::new(),
    };

    if let Some(query) = query.filter(|q| !q.is_empty()) {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_query_part(raw_name, "query parameter name")?;
            let value = decode_query_part(raw_value, &name)?;
            if route.body == BodyTarget::Whole {
                return Err(ApiError::invalid_argument(
                    name,
                    "unknown query parameter: this call takes its fields in the body",
                ));
            }
            let path = resolve(&route.input, &name)?;
            let leaf = path.last().ok_or_else(|| unknown_parameter(&name))?;
            let json = scalar_to_json(leaf, &value)
                .map_err(|why| ApiError::invalid_argument(name.clone(), why))?;
            insert(&mut object, &path, json, leaf.is_list());
        }
    }

    // Path variables last: they win over the body and the query.
    for (field_path, value) in path_vars {
        let path = resolve(&route.input, field_path)?;
        let leaf = path.last().ok_or_else(|| unknown_parameter(field_path))?;
        let json = scalar_to_json(leaf, &value)
            .map_err(|why| ApiError::invalid_argument(field_path.to_owned(), why))?;
        insert(&mut object, &path, json, false);
    }

    DynamicMessage::deserialize(route.input.clone(), Json::Object(object))
        .map_err(|err| ApiError::invalid_argument("request", err.to_string()))
}

fn unknown_parameter(name: &str) -> ApiError {
    ApiError::invalid_argument(name.to_owned(), "unknown query parameter")
}

/// Query text: `+` is a space (form encoding), then strict percent-decoding.
fn decode_query_part(raw: &str, what: &str) -> Result<String, ApiError> {
    percent_decode(&raw.replace('+', " "))
        .map_err(|_| ApiError::invalid_argument(what.to_owned(), "bad percent-encoding"))
}

/// The fields a dotted name (`a.b`, each part lowerCamelCase or snake_case) walks through.
fn resolve(message: &MessageDescriptor, dotted: &str) -> Result<Vec<FieldDescriptor>, ApiError> {
    let mut fields = Vec::new();
    let mut current = message.clone();
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let field = current
            .get_field_by_json_name(part)
            .or_else(|| current.get_field_by_name(part))
            .ok_or_else(|| unknown_parameter(dotted))?;
        let last = i + 1 == parts.len();
        if !last {
            match field.kind() {
                Kind::Message(inner) if !field.is_list() && !field.is_map() => current = inner,
                _ => return Err(unknown_parameter(dotted)),
            }
        } else if field.is_map() || (field.is_list() && matches!(field.kind(), Kind::Message(_))) {
            return Err(ApiError::invalid_argument(
                dotted.to_owned(),
                "cannot be set from a query parameter",
            ));
        }
        fields.push(field);
    }
    Ok(fields)
}

/// One text value as the JSON the field's proto3 mapping accepts.
fn scalar_to_json(field: &FieldDescriptor, text: &str) -> Result<Json, String> {
    let bad = |expected: &str| format!("invalid value {text:?}: expected {expected}");
    Ok(match field.kind() {
        Kind::String | Kind::Bytes => Json::String(text.to_owned()),
        Kind::Bool => match text {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Json::from(text.parse::<i32>().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Json::from(
            text.parse::<u32>()
                .map_err(|_| bad("an unsigned 32-bit integer"))?,
        ),
        // 64-bit values travel as strings in the JSON mapping, keeping every digit.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            text.parse::<i64>().map_err(|_| bad("a 64-bit integer"))?;
            Json::String(text.to_owned())
        }
        Kind::Uint64 | Kind::Fixed64 => {
            text.parse::<u64>()
                .map_err(|_| bad("an unsigned 64-bit integer"))?;
            Json::String(text.to_owned())
        }
        Kind::Float | Kind::Double => match text {
            "NaN" | "Infinity" | "-Infinity" => Json::String(text.to_owned()),
            _ => serde_json::Number::from_f64(text.parse::<f64>().map_err(|_| bad("a number"))?)
                .map(Json::Number)
                .ok_or_else(|| bad("a finite number"))?,
        },
        Kind::Enum(enumeration) => {
            if let Ok(number) = text.parse::<i32>() {
                Json::from(number)
            } else if enumeration.get_value_by_name(text).is_some() {
                Json::String(text.to_owned())
            } else {
                return Err(bad(&format!("a value of {}", enumeration.full_name())));
            }
        }
        // Well-known types with a string form (Timestamp, Duration, FieldMask, wrappers).
        Kind::Message(_) => Json::String(text.to_owned()),
    })
}

/// Puts `value` at `path` in the JSON object, appending when the field repeats.
fn insert(object: &mut Map<String, Json>, path: &[FieldDescriptor], value: Json, repeated: bool) {
    let Some((leaf, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for parent in parents {
        let entry = current
            .entry(parent.json_name().to_owned())
            .or_insert_with(|| Json::Object(Map::new()));
        if !entry.is_object() {
            *entry = Json::Object(Map::new());
        }
        let Json::Object(next) = entry else { return };
        current = next;
    }
    // Drop any snake_case twin from the body so the two spellings never clash.
    current.remove(leaf.name());
    let key = leaf.json_name().to_owned();
    if repeated {
        match current
            .entry(key)
            .or_insert_with(|| Json::Array(Vec::new()))
        {
            Json::Array(items) => items.push(value),
            other => *other = Json::Array(vec![value]),
        }
    } else {
        current.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;
    use crate::rest::routes::RouteTable;

    #[test]
    fn the_direct_encoding_equals_the_general_one() {
        let pool = crate::proto::descriptor_pool().expect("the built-in descriptors decode");
        let table = RouteTable::from_services(
            pool,
            &[
                crate::proto::COMPUTE_IMAGE_SERVICE,
                crate::proto::CONTAINER_REGISTRY_IMAGE_SERVICE,
            ],
        )
        .expect("routes build");
        for path in [
            "/compute/v1/images/fd8abc",
            "/container-registry/v1/images/crp%2Fx",
        ] {
            let (route, vars) = table.find(&Method::GET, path).expect("a route");
            let direct = encode_path_strings(route, &vars).expect("a path-only Get");
            let general = build_request(route, vars, None, &[])
                .expect("valid")
                .encode_to_vec();
            assert_eq!(direct, general, "{path}");
        }
    }
}
