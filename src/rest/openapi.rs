//! The OpenAPI 3 document of the REST face, made at start from the route
//! table the gateway routes by and the descriptors it transcodes with: the
//! same paths, parameters and proto3 JSON shapes, so the document can't drift
//! from what is served. Served at `/openapi.json`; `image-service openapi`
//! prints it.

use std::collections::BTreeMap;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::routes::{BodyTarget, Route, RouteTable};

const STATUS: &str = "google.rpc.Status";

/// The document for `table`.
pub fn document(table: &RouteTable, pool: &DescriptorPool) -> Value {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut ids = std::collections::HashSet::new();
    for route in table.routes() {
        let path = paths.entry(openapi_path(route)).or_default();
        let verb = route.method.as_str().to_ascii_lowercase();
        let mut operation = operation(route, &mut schemas);
        // A method served on two routes (Cancel's POST twin) gets an id per route.
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !ids.insert(id.clone()) {
            operation["operationId"] = json!(format!("{id}.{verb}"));
        }
        path.insert(verb, operation);
    }
    if let Some(status) = pool.get_message_by_name(STATUS) {
        schemas.reference(&status);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "image-service REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Yandex Cloud Compute and Container Registry image APIs (and their \
                operations) as REST/JSON, on the official paths: each call is the gRPC method \
                named in its operationId, its body and answers in proto3 JSON.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.done,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of the --auth-tokens file (none when authentication is off).",
                },
            },
        },
        "security": [{}, {"bearer": []}],
    })
}

/// `/compute/v1/images/{image_id}`: the template with each variable as `{field}`.
fn openapi_path(route: &Route) -> String {
    let text = route.template.to_string();
    let mut out = String::with_capacity(text.len());
    let mut in_pattern = false;
    for c in text.chars() {
        match c {
            '=' if !in_pattern && out.rfind('{') > out.rfind('}') => in_pattern = true,
            '}' => {
                in_pattern = false;
                out.push(c);
            }
            _ if in_pattern => {}
            _ => out.push(c),
        }
    }
    out
}

fn operation(route: &Route, schemas: &mut Schemas) -> Value {
    let (service, method) = route
        .grpc_path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", &route.grpc_path));
    let bound: Vec<&str> = route.template.field_paths().collect();
    let mut parameters: Vec<Value> = bound
        .iter()
        .map(|field| {
            json!({
                "name": field,
                "in": "path",
                "required": true,
                // One path segment, and no ':' (which starts a custom verb).
                "schema": {"type": "string", "pattern": "^[^/:]+$"},
            })
        })
        .collect();
    let top_level = |field: &FieldDescriptor| !bound.contains(&field.name());
    let mut operation = Map::new();
    operation.insert("operationId".into(), json!(format!("{service}.{method}")));
    operation.insert("summary".into(), json!(format!("{service}.{method}")));
    operation.insert("tags".into(), json!([service]));
    match &route.body {
        BodyTarget::Whole => {
            let body = object_of(&route.input, schemas, top_level);
            operation.insert(
                "requestBody".into(),
                json!({"content": {"application/json": {"schema": body}}}),
            );
        }
        BodyTarget::None | BodyTarget::Field(_) => {
            for field in route.input.fields().filter(|f| top_level(f)) {
                if let Some(schema) = query_schema(&field) {
                    parameters.push(json!({
                        "name": field.json_name(),
                        "in": "query",
                        "schema": schema,
                    }));
                }
            }
        }
    }
    operation.insert("parameters".into(), Value::Array(parameters));
    operation.insert(
        "responses".into(),
        json!({
            "200": {
                "description": format!("The {}", route.output.full_name()),
                "content": {"application/json": {"schema": schemas.reference(&route.output)}},
            },
            "default": {
                "description": "An error: the call's google.rpc.Status, its code mapped to the HTTP status",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{STATUS}")}}},
            },
        }),
    );
    Value::Object(operation)
}

/// A query parameter's schema: scalars, enums and lists of them (what the
/// gateway reads from a query).
fn query_schema(field: &FieldDescriptor) -> Option<Value> {
    if field.is_map() {
        return None;
    }
    let single = match field.kind() {
        Kind::Message(message) => {
            well_known(&message).filter(|s| s.get("type") != Some(&json!("object")))?
        }
        kind => scalar(&kind),
    };
    Some(if field.is_list() {
        json!({"type": "array", "items": single})
    } else {
        single
    })
}

/// The proto3 JSON schema of a non-message kind.
fn scalar(kind: &Kind) -> Value {
    match kind {
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
        }
        // 64-bit integers are strings in proto3 JSON.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Kind::Float | Kind::Double => json!({"type": "number"}),
        Kind::Enum(enumeration) => json!({
            "type": "string",
            "enum": enumeration.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
        }),
        // Messages are referenced, not inlined; see `Schemas`.
        Kind::Message(message) => {
            json!({"$ref": format!("#/components/schemas/{}", message.full_name())})
        }
    }
}

/// The proto3 JSON form of the well-known types that have one of their own.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.FieldMask" => json!({"type": "string"}),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => json!({"type": "integer"}),
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => json!({"type": "string"}),
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => json!({"type": "number"}),
        _ => return None,
    })
}

/// An object schema of `message`'s fields that pass `keep`, by JSON name.
/// No field is required: proto3 JSON leaves out fields at their defaults.
fn object_of(
    message: &MessageDescriptor,
    schemas: &mut Schemas,
    keep: impl Fn(&FieldDescriptor) -> bool,
) -> Value {
    let mut properties = Map::new();
    for field in message.fields().filter(|f| keep(f)) {
        properties.insert(field.json_name().to_owned(), schemas.field(&field));
    }
    json!({"type": "object", "properties": properties})
}

/// The message schemas referenced so far, by full name.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Value>,
}

impl Schemas {
    /// A reference to `message`'s schema (made on first use), or its
    /// well-known form inline.
    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(inline) = well_known(message) {
            return inline;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Placed first, so a message that contains itself refers to it.
            self.done.insert(name.clone(), Value::Null);
            let schema = object_of(message, self, |_| true);
            self.done.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map() {
            let value = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field(),
                _ => return json!({"type": "object"}),
            };
            return json!({"type": "object", "additionalProperties": self.single(&value.kind())});
        }
        let single = self.single(&field.kind());
        if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn single(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Message(message) => self.reference(message),
            other => scalar(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Value {
        let pool = crate::proto::descriptor_pool().expect("descriptors");
        let table = RouteTable::from_services(
            pool,
            &[
                crate::proto::COMPUTE_IMAGE_SERVICE,
                crate::proto::CONTAINER_REGISTRY_IMAGE_SERVICE,
                crate::proto::OPERATION_SERVICE,
            ],
        )
        .expect("routes");
        document(&table, pool)
    }

    #[test]
    fn has_every_route_with_its_parameters_and_shapes() {
        let doc = built();
        let get = &doc["paths"]["/compute/v1/images/{image_id}"]["get"];
        assert_eq!(
            get["operationId"],
            "yandex.cloud.compute.v1.ImageService.Get"
        );
        assert_eq!(get["parameters"][0]["in"], "path");
        assert_eq!(
            get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/yandex.cloud.compute.v1.Image"
        );
        let list = &doc["paths"]["/compute/v1/images"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"folderId") && names.contains(&"pageSize"),
            "{names:?}"
        );
        let create = &doc["paths"]["/compute/v1/images"]["post"]["requestBody"];
        assert!(
            create["content"]["application/json"]["schema"]["properties"]["folderId"].is_object()
        );
        let update = &doc["paths"]["/compute/v1/images/{image_id}"]["patch"]["requestBody"]["content"]
            ["application/json"]["schema"]["properties"];
        assert!(
            update.get("imageId").is_none(),
            "the path's field is not in the body"
        );
        assert_eq!(update["updateMask"]["type"], "string");
        let cancel = &doc["paths"]["/operations/{operation_id}:cancel"];
        assert!(cancel["get"].is_object() && cancel["post"].is_object());
        let image = &doc["components"]["schemas"]["yandex.cloud.compute.v1.Image"]["properties"];
        assert_eq!(image["createdAt"]["format"], "date-time");
        assert_eq!(image["storageSize"]["type"], "string");
        assert_eq!(image["labels"]["additionalProperties"]["type"], "string");
        assert_eq!(image["status"]["enum"][0], "STATUS_UNSPECIFIED");
        let status = &doc["components"]["schemas"][STATUS]["properties"];
        assert_eq!(
            status["details"]["items"]["properties"]["@type"]["type"],
            "string"
        );
        // Every reference resolves.
        let text = doc.to_string();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{name} is missing"
            );
        }
    }
}
