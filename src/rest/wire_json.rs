//! Canonical proto3 JSON written straight from a message's wire bytes.
//!
//! The general renderer (decode into a `DynamicMessage`, then serialize it
//! through the descriptors) allocates a value per field and was most of a REST
//! Get's cost. Here each response type gets a plan, compiled once from its
//! descriptors (JSON keys pre-escaped, enum names pre-quoted, nested types
//! resolved to indexes); rendering walks the bytes and writes JSON in one pass.
//!
//! It renders exactly what the general renderer would, for the bytes a
//! protobuf encoder normally writes. Anything unusual (an unknown field, a
//! repeated singular message, two members of one oneof, a well-known type
//! other than Timestamp, invalid UTF-8, ...) makes [`JsonPlans::render`] return
//! `None`, and the caller takes the general path, so the output never depends
//! on which path ran.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use prost::encoding::decode_varint;
use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde::Serializer as _;

/// Field numbers below this are found by direct indexing.
const DIRECT_LOOKUP: u32 = 64;
/// Timestamp bounds of the JSON mapping (0001-01-01 to 9999-12-31).
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;
/// Deeper nesting goes to the general renderer (which has its own limit).
const MAX_DEPTH: usize = 64;

/// Compiled plans for a set of message types and every type they contain.
#[derive(Debug, Default)]
pub struct JsonPlans {
    messages: Vec<MessagePlan>,
    by_name: HashMap<String, usize, foldhash::fast::RandomState>,
}

#[derive(Debug)]
struct MessagePlan {
    /// Sorted by field number: the order the JSON mapping writes them in.
    fields: Vec<FieldPlan>,
    /// `direct[number]` is the field's index + 1 (0: no such field).
    direct: Vec<u16>,
}

#[derive(Debug)]
struct FieldPlan {
    number: u32,
    /// `"jsonName":`, escaped.
    key: Box<[u8]>,
    kind: ValueKind,
    shape: Shape,
    /// Written even when default (proto3 `optional`, oneof members, messages).
    presence: bool,
    oneof: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Single,
    List,
    /// The entry type's key and value kinds.
    Map,
}

#[derive(Debug, Clone)]
enum ValueKind {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
    /// Quoted names by number, sorted by number.
    Enum(std::sync::Arc<[(i32, Box<[u8]>)]>),
    Message(usize),
    /// A map entry type: key kind, value kind.
    MapEntry(Box<ValueKind>, Box<ValueKind>),
    Timestamp,
    /// A well-known type with a special JSON form this module doesn't write.
    Unsupported,
}

/// One field occurrence on the wire.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

/// Why the fast path gave up; the caller renders the general way.
#[derive(Debug)]
struct Fallback;

type Step = Result<(), Fallback>;

impl JsonPlans {
    /// Plans for `roots` and everything reachable from them.
    pub fn new<'a>(roots: impl IntoIterator<Item = &'a MessageDescriptor>) -> Self {
        let mut plans = Self::default();
        for root in roots {
            plans.compile(root);
        }
        plans
    }

    /// `message` (the encoding of a `type_name`) as canonical proto3 JSON, or
    /// `None` when this type has no plan or the bytes need the general renderer.
    pub fn render(&self, type_name: &str, message: &[u8]) -> Option<Vec<u8>> {
        let &index = self.by_name.get(type_name)?;
        let mut out = Vec::with_capacity(message.len() * 2 + 64);
        let mut scratch = Vec::with_capacity(32);
        self.message(index, message, &mut out, &mut scratch, 0)
            .ok()
            .map(|()| out)
    }

    fn compile(&mut self, descriptor: &MessageDescriptor) -> usize {
        if let Some(&index) = self.by_name.get(descriptor.full_name()) {
            return index;
        }
        let index = self.messages.len();
        // Reserve the slot first: a type may contain itself.
        self.messages.push(MessagePlan {
            fields: Vec::new(),
            direct: Vec::new(),
        });
        self.by_name
            .insert(descriptor.full_name().to_owned(), index);
        let mut fields: Vec<FieldPlan> = descriptor
            .fields()
            .map(|field| self.field_plan(&field))
            .collect();
        fields.sort_by_key(|f| f.number);
        let mut direct = vec![0u16; DIRECT_LOOKUP as usize];
        for (i, field) in fields.iter().enumerate() {
            if field.number < DIRECT_LOOKUP {
                direct[field.number as usize] = u16::try_from(i + 1).unwrap_or(0);
            }
        }
        self.messages[index] = MessagePlan { fields, direct };
        index
    }

    fn field_plan(&mut self, field: &FieldDescriptor) -> FieldPlan {
        let shape = if field.is_map() {
            Shape::Map
        } else if field.cardinality() == Cardinality::Repeated {
            Shape::List
        } else {
            Shape::Single
        };
        let key = serde_json::to_vec(field.json_name()).unwrap_or_default();
        let mut key_bytes = key;
        key_bytes.push(b':');
        FieldPlan {
            number: field.number(),
            key: key_bytes.into_boxed_slice(),
            kind: self.value_kind(&field.kind(), shape == Shape::Map),
            shape,
            presence: field.supports_presence(),
            oneof: field.containing_oneof().and_then(|oneof| {
                let position = field
                    .parent_message()
                    .oneofs()
                    .position(|o| o.name() == oneof.name())?;
                u32::try_from(position).ok()
            }),
        }
    }

    fn value_kind(&mut self, kind: &Kind, map_entry: bool) -> ValueKind {
        match kind {
            Kind::Double => ValueKind::Double,
            Kind::Float => ValueKind::Float,
            Kind::Int32 => ValueKind::Int32,
            Kind::Int64 => ValueKind::Int64,
            Kind::Uint32 => ValueKind::Uint32,
            Kind::Uint64 => ValueKind::Uint64,
            Kind::Sint32 => ValueKind::Sint32,
            Kind::Sint64 => ValueKind::Sint64,
            Kind::Fixed32 => ValueKind::Fixed32,
            Kind::Fixed64 => ValueKind::Fixed64,
            Kind::Sfixed32 => ValueKind::Sfixed32,
            Kind::Sfixed64 => ValueKind::Sfixed64,
            Kind::Bool => ValueKind::Bool,
            Kind::String => ValueKind::String,
            Kind::Bytes => ValueKind::Bytes,
            Kind::Enum(enumeration) => {
                if enumeration.full_name() == "google.protobuf.NullValue" {
                    return ValueKind::Unsupported;
                }
                let mut names: Vec<(i32, Box<[u8]>)> = Vec::new();
                for value in enumeration.values() {
                    // Aliases: the first name of a number is the one written.
                    if names.iter().all(|(n, _)| *n != value.number()) {
                        let quoted = serde_json::to_vec(value.name()).unwrap_or_default();
                        names.push((value.number(), quoted.into_boxed_slice()));
                    }
                }
                names.sort_by_key(|(n, _)| *n);
                ValueKind::Enum(names.into())
            }
            Kind::Message(message) if map_entry => {
                let key = self.value_kind(&message.map_entry_key_field().kind(), false);
                let value = self.value_kind(&message.map_entry_value_field().kind(), false);
                ValueKind::MapEntry(Box::new(key), Box::new(value))
            }
            Kind::Message(message) => match message.full_name() {
                "google.protobuf.Timestamp" => ValueKind::Timestamp,
                name if name.starts_with("google.protobuf.") => ValueKind::Unsupported,
                _ => ValueKind::Message(self.compile(message)),
            },
        }
    }

    fn message<'a>(
        &self,
        index: usize,
        mut bytes: &'a [u8],
        out: &mut Vec<u8>,
        scratch: &mut Vec<(u16, Raw<'a>)>,
        depth: usize,
    ) -> Step {
        if depth > MAX_DEPTH {
            return Err(Fallback);
        }
        let plan = &self.messages[index];
        let base = scratch.len();
        let mut sorted = true;
        let mut last = 0u16;
        while !bytes.is_empty() {
            let (tag, raw) = read_field(&mut bytes)?;
            let number = u32::try_from(tag >> 3).map_err(|_| Fallback)?;
            let field = plan.field_index(number).ok_or(Fallback)?;
            sorted &= field >= last;
            last = field;
            scratch.push((field, raw));
        }
        if !sorted {
            // Stable: repeated values keep their order.
            scratch[base..].sort_by_key(|(field, _)| *field);
        }

        out.push(b'{');
        let mut first = true;
        let mut oneofs_seen = 0u64;
        let mut i = base;
        let end = scratch.len();
        while i < end {
            let field_index = scratch[i].0;
            let mut group_end = i + 1;
            while group_end < end && scratch[group_end].0 == field_index {
                group_end += 1;
            }
            let field = &plan.fields[usize::from(field_index)];
            if let Some(oneof) = field.oneof {
                let bit = 1u64.checked_shl(oneof).ok_or(Fallback)?;
                if oneofs_seen & bit != 0 {
                    return Err(Fallback);
                }
                oneofs_seen |= bit;
            }
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            out.extend_from_slice(&field.key);
            let written = match field.shape {
                Shape::Single => {
                    // A message twice on the wire merges; leave that to the general path.
                    if group_end - i > 1 && matches!(field.kind, ValueKind::Message(_)) {
                        return Err(Fallback);
                    }
                    let (_, raw) = scratch[group_end - 1];
                    if !field.presence && is_default(&field.kind, raw) {
                        false
                    } else {
                        self.value(&field.kind, raw, out, scratch, depth)?;
                        true
                    }
                }
                Shape::List => self.list(&field.kind, i, group_end, out, scratch, depth)?,
                Shape::Map => self.map(&field.kind, i, group_end, out, scratch, depth)?,
            };
            if written {
                first = false;
            } else {
                out.truncate(mark);
            }
            i = group_end;
        }
        out.push(b'}');
        scratch.truncate(base);
        Ok(())
    }

    /// The elements of entries `from..to` (unpacked or packed); false if none.
    fn list<'a>(
        &self,
        kind: &ValueKind,
        from: usize,
        to: usize,
        out: &mut Vec<u8>,
        scratch: &mut Vec<(u16, Raw<'a>)>,
        depth: usize,
    ) -> Result<bool, Fallback> {
        out.push(b'[');
        let mut count = 0usize;
        for i in from..to {
            let (_, raw) = scratch[i];
            match (raw, packed_width(kind)) {
                (Raw::Len(mut packed), Some(width)) => {
                    while !packed.is_empty() {
                        let element = match width {
                            0 => Raw::Varint(decode_varint(&mut packed).map_err(|_| Fallback)?),
                            4 => Raw::Fixed32(u32::from_le_bytes(take(&mut packed)?)),
                            _ => Raw::Fixed64(u64::from_le_bytes(take(&mut packed)?)),
                        };
                        if count > 0 {
                            out.push(b',');
                        }
                        self.value(kind, element, out, scratch, depth)?;
                        count += 1;
                    }
                }
                _ => {
                    if count > 0 {
                        out.push(b',');
                    }
                    self.value(kind, raw, out, scratch, depth)?;
                    count += 1;
                }
            }
        }
        out.push(b']');
        Ok(count > 0)
    }

    /// A map field's entries as an object; a repeated key goes to the general path.
    fn map<'a>(
        &self,
        kind: &ValueKind,
        from: usize,
        to: usize,
        out: &mut Vec<u8>,
        scratch: &mut Vec<(u16, Raw<'a>)>,
        depth: usize,
    ) -> Result<bool, Fallback> {
        let ValueKind::MapEntry(key_kind, value_kind) = kind else {
            return Err(Fallback);
        };
        out.push(b'{');
        let mut keys: Vec<Raw<'a>> = Vec::with_capacity(to - from);
        for i in from..to {
            let (_, Raw::Len(mut entry)) = scratch[i] else {
                return Err(Fallback);
            };
            let (mut key, mut value) = (None, None);
            while !entry.is_empty() {
                let (tag, raw) = read_field(&mut entry)?;
                match tag >> 3 {
                    1 => key = Some(raw),
                    2 if value.is_none() || !matches!(**value_kind, ValueKind::Message(_)) => {
                        value = Some(raw)
                    }
                    _ => return Err(Fallback),
                }
            }
            // A missing key or value is its type's default.
            let key = key.unwrap_or_else(|| default_raw(key_kind));
            if keys.iter().any(|seen| same_raw(*seen, key)) {
                return Err(Fallback);
            }
            keys.push(key);
            if i > from {
                out.push(b',');
            }
            self.map_key(key_kind, key, out)?;
            out.push(b':');
            let value = value.unwrap_or_else(|| default_raw(value_kind));
            self.value(value_kind, value, out, scratch, depth)?;
        }
        out.push(b'}');
        Ok(to > from)
    }

    /// Map keys are always JSON strings.
    fn map_key(&self, kind: &ValueKind, raw: Raw<'_>, out: &mut Vec<u8>) -> Step {
        match kind {
            ValueKind::String => self.value(kind, raw, out, &mut Vec::new(), 0),
            ValueKind::Bool
            | ValueKind::Int32
            | ValueKind::Uint32
            | ValueKind::Sint32
            | ValueKind::Fixed32
            | ValueKind::Sfixed32 => {
                out.push(b'"');
                self.value(kind, raw, out, &mut Vec::new(), 0)?;
                out.push(b'"');
                Ok(())
            }
            // 64-bit values are already written quoted.
            ValueKind::Int64
            | ValueKind::Uint64
            | ValueKind::Sint64
            | ValueKind::Fixed64
            | ValueKind::Sfixed64 => self.value(kind, raw, out, &mut Vec::new(), 0),
            _ => Err(Fallback),
        }
    }

    fn value<'a>(
        &self,
        kind: &ValueKind,
        raw: Raw<'a>,
        out: &mut Vec<u8>,
        scratch: &mut Vec<(u16, Raw<'a>)>,
        depth: usize,
    ) -> Step {
        let mut json = serde_json::Serializer::new(&mut *out);
        let written = match (kind, raw) {
            (ValueKind::Double, Raw::Fixed64(bits)) => {
                let value = f64::from_bits(bits);
                if value.is_finite() {
                    json.serialize_f64(value)
                } else {
                    json.serialize_str(non_finite(value.is_nan(), value > 0.0))
                }
            }
            (ValueKind::Float, Raw::Fixed32(bits)) => {
                let value = f32::from_bits(bits);
                if value.is_finite() {
                    json.serialize_f32(value)
                } else {
                    json.serialize_str(non_finite(value.is_nan(), value > 0.0))
                }
            }
            (ValueKind::Int32, Raw::Varint(v)) => json.serialize_i32(v as i32),
            (ValueKind::Uint32, Raw::Varint(v)) => json.serialize_u32(v as u32),
            (ValueKind::Sint32, Raw::Varint(v)) => json.serialize_i32(zigzag(v) as i32),
            (ValueKind::Fixed32, Raw::Fixed32(v)) => json.serialize_u32(v),
            (ValueKind::Sfixed32, Raw::Fixed32(v)) => json.serialize_i32(v as i32),
            (ValueKind::Int64, Raw::Varint(v)) => return quoted_integer(v as i64, out),
            (ValueKind::Uint64, Raw::Varint(v)) => return quoted_integer(v, out),
            (ValueKind::Sint64, Raw::Varint(v)) => return quoted_integer(zigzag(v), out),
            (ValueKind::Fixed64, Raw::Fixed64(v)) => return quoted_integer(v, out),
            (ValueKind::Sfixed64, Raw::Fixed64(v)) => return quoted_integer(v as i64, out),
            (ValueKind::Bool, Raw::Varint(v)) => json.serialize_bool(v != 0),
            (ValueKind::String, Raw::Len(bytes)) => {
                let text = std::str::from_utf8(bytes).map_err(|_| Fallback)?;
                if !bytes.iter().any(|&b| needs_escape(b)) {
                    // The common case: nothing to escape, so the text goes as it is.
                    out.reserve(bytes.len() + 2);
                    out.push(b'"');
                    out.extend_from_slice(bytes);
                    out.push(b'"');
                    return Ok(());
                }
                json.serialize_str(text)
            }
            (ValueKind::Bytes, Raw::Len(bytes)) => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + bytes.len().div_ceil(3) * 4, 0);
                let written = STANDARD
                    .encode_slice(bytes, &mut out[start..])
                    .map_err(|_| Fallback)?;
                out.truncate(start + written);
                out.push(b'"');
                return Ok(());
            }
            (ValueKind::Enum(names), Raw::Varint(v)) => {
                let number = v as i32;
                match names.binary_search_by_key(&number, |(n, _)| *n) {
                    Ok(found) => {
                        out.extend_from_slice(&names[found].1);
                        return Ok(());
                    }
                    Err(_) => json.serialize_i32(number),
                }
            }
            (ValueKind::Message(index), Raw::Len(bytes)) => {
                return self.message(*index, bytes, out, scratch, depth + 1);
            }
            (ValueKind::Timestamp, Raw::Len(bytes)) => return timestamp(bytes, out),
            _ => return Err(Fallback),
        };
        written.map_err(|_| Fallback)
    }
}

impl MessagePlan {
    fn field_index(&self, number: u32) -> Option<u16> {
        if number < DIRECT_LOOKUP {
            return self.direct[number as usize].checked_sub(1);
        }
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .and_then(|i| u16::try_from(i).ok())
    }
}

/// One field off the front of `bytes`: its tag and its undecoded value.
fn read_field<'a>(bytes: &mut &'a [u8]) -> Result<(u64, Raw<'a>), Fallback> {
    let tag = decode_varint(bytes).map_err(|_| Fallback)?;
    let raw = match tag & 7 {
        0 => Raw::Varint(decode_varint(bytes).map_err(|_| Fallback)?),
        1 => Raw::Fixed64(u64::from_le_bytes(take(bytes)?)),
        2 => {
            let len = decode_varint(bytes).map_err(|_| Fallback)?;
            let len = usize::try_from(len).map_err(|_| Fallback)?;
            if len > bytes.len() {
                return Err(Fallback);
            }
            let (value, rest) = bytes.split_at(len);
            *bytes = rest;
            Raw::Len(value)
        }
        5 => Raw::Fixed32(u32::from_le_bytes(take(bytes)?)),
        _ => return Err(Fallback),
    };
    Ok((tag, raw))
}

fn take<const N: usize>(bytes: &mut &[u8]) -> Result<[u8; N], Fallback> {
    let (head, rest) = bytes.split_first_chunk::<N>().ok_or(Fallback)?;
    *bytes = rest;
    Ok(*head)
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn non_finite(nan: bool, positive: bool) -> &'static str {
    match (nan, positive) {
        (true, _) => "NaN",
        (false, true) => "Infinity",
        (false, false) => "-Infinity",
    }
}

/// Bytes per element in a packed list: 0 for varints, `None` if not packable.
fn packed_width(kind: &ValueKind) -> Option<usize> {
    match kind {
        ValueKind::Int32
        | ValueKind::Int64
        | ValueKind::Uint32
        | ValueKind::Uint64
        | ValueKind::Sint32
        | ValueKind::Sint64
        | ValueKind::Bool
        | ValueKind::Enum(_) => Some(0),
        ValueKind::Fixed32 | ValueKind::Sfixed32 | ValueKind::Float => Some(4),
        ValueKind::Fixed64 | ValueKind::Sfixed64 | ValueKind::Double => Some(8),
        _ => None,
    }
}

/// Whether a value of a field without presence is its type's default (and left out).
fn is_default(kind: &ValueKind, raw: Raw<'_>) -> bool {
    match (kind, raw) {
        // -0.0 equals 0.0, so it counts as default, as in the general renderer.
        (ValueKind::Double, Raw::Fixed64(bits)) => f64::from_bits(bits) == 0.0,
        (ValueKind::Float, Raw::Fixed32(bits)) => f32::from_bits(bits) == 0.0,
        (ValueKind::Message(_) | ValueKind::Timestamp | ValueKind::Unsupported, _) => false,
        (ValueKind::Sint32, Raw::Varint(v)) => zigzag(v) as i32 == 0,
        (ValueKind::Int32 | ValueKind::Uint32 | ValueKind::Enum(_), Raw::Varint(v)) => {
            v as u32 == 0
        }
        (_, Raw::Varint(v)) => v == 0,
        (_, Raw::Fixed64(v)) => v == 0,
        (_, Raw::Fixed32(v)) => v == 0,
        (_, Raw::Len(bytes)) => bytes.is_empty(),
    }
}

/// The wire form of a kind's default value (a map entry's missing key or value).
fn default_raw(kind: &ValueKind) -> Raw<'static> {
    match kind {
        ValueKind::Double | ValueKind::Fixed64 | ValueKind::Sfixed64 => Raw::Fixed64(0),
        ValueKind::Float | ValueKind::Fixed32 | ValueKind::Sfixed32 => Raw::Fixed32(0),
        ValueKind::String
        | ValueKind::Bytes
        | ValueKind::Message(_)
        | ValueKind::MapEntry(..)
        | ValueKind::Timestamp
        | ValueKind::Unsupported => Raw::Len(&[]),
        _ => Raw::Varint(0),
    }
}

fn same_raw(a: Raw<'_>, b: Raw<'_>) -> bool {
    match (a, b) {
        (Raw::Varint(a), Raw::Varint(b)) | (Raw::Fixed64(a), Raw::Fixed64(b)) => a == b,
        (Raw::Fixed32(a), Raw::Fixed32(b)) => a == b,
        (Raw::Len(a), Raw::Len(b)) => a == b,
        _ => false,
    }
}

/// A google.protobuf.Timestamp as RFC 3339 in UTC, as the general renderer writes it.
fn timestamp(mut bytes: &[u8], out: &mut Vec<u8>) -> Step {
    let (mut seconds, mut nanos) = (0i64, 0i32);
    while !bytes.is_empty() {
        let tag = decode_varint(&mut bytes).map_err(|_| Fallback)?;
        let value = match tag & 7 {
            0 => decode_varint(&mut bytes).map_err(|_| Fallback)?,
            _ => return Err(Fallback),
        };
        match tag >> 3 {
            1 => seconds = value as i64,
            2 => nanos = value as i32,
            _ => return Err(Fallback),
        }
    }
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&seconds)
        || !(0..1_000_000_000).contains(&nanos)
    {
        return Err(Fallback);
    }
    write_rfc3339(seconds, nanos, out);
    Ok(())
}

/// `"YYYY-MM-DDThh:mm:ss[.fff|.ffffff|.fffffffff]Z"` for seconds within the
/// mapping's range: as prost-types' Display writes it (0, 3, 6 or 9 digits of
/// fraction, the fewest that hold the nanoseconds), without its formatter.
fn write_rfc3339(seconds: i64, nanos: i32, out: &mut Vec<u8>) {
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let mut text = [0u8; 32];
    let mut at = 0;
    let mut put = |value: u32, digits: u32| {
        for place in (0..digits).rev() {
            text[at] = b'0' + (value / 10u32.pow(place) % 10) as u8;
            at += 1;
        }
    };
    put(year, 4);
    put(month, 2);
    put(day, 2);
    put(of_day / 3600, 2);
    put(of_day / 60 % 60, 2);
    put(of_day % 60, 2);
    let nanos = nanos as u32;
    let fraction = if nanos == 0 {
        0
    } else if nanos % 1_000_000 == 0 {
        put(nanos / 1_000_000, 3);
        3
    } else if nanos % 1_000 == 0 {
        put(nanos / 1_000, 6);
        6
    } else {
        put(nanos, 9);
        9
    };
    out.reserve(32);
    out.push(b'"');
    out.extend_from_slice(&text[0..4]);
    out.push(b'-');
    out.extend_from_slice(&text[4..6]);
    out.push(b'-');
    out.extend_from_slice(&text[6..8]);
    out.push(b'T');
    out.extend_from_slice(&text[8..10]);
    out.push(b':');
    out.extend_from_slice(&text[10..12]);
    out.push(b':');
    out.extend_from_slice(&text[12..14]);
    if fraction > 0 {
        out.push(b'.');
        out.extend_from_slice(&text[14..14 + fraction]);
    }
    out.extend_from_slice(b"Z\"");
}

/// Year, month and day of the proleptic Gregorian calendar from days since
/// 1970-01-01 (the era arithmetic of H. Hinnant's "chrono-compatible
/// low-level date algorithms"). Years here are 1 to 9999.
fn civil_from_days(days: i64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as u32, month as u32, day as u32)
}

/// A 64-bit integer as proto3 JSON writes it: a decimal string.
fn quoted_integer(value: impl itoa::Integer, out: &mut Vec<u8>) -> Step {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Bytes serde_json escapes in a string: the quote, the backslash and controls.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_reflect::{DescriptorPool, DynamicMessage};

    use super::*;
    use crate::proto::compute;

    const COMPUTE_IMAGE: &str = "yandex.cloud.compute.v1.Image";
    const REGISTRY_IMAGE: &str = "yandex.cloud.containerregistry.v1.Image";
    const COMPUTE_LIST: &str = "yandex.cloud.compute.v1.ListImagesResponse";

    fn pool() -> &'static DescriptorPool {
        crate::proto::descriptor_pool().expect("the built-in descriptors decode")
    }

    fn plans() -> JsonPlans {
        let names = [COMPUTE_IMAGE, REGISTRY_IMAGE, COMPUTE_LIST];
        let descriptors: Vec<_> = names
            .iter()
            .map(|n| pool().get_message_by_name(n).expect("known type"))
            .collect();
        JsonPlans::new(&descriptors)
    }

    /// What the general renderer (DynamicMessage + serde) writes.
    fn general(type_name: &str, bytes: &[u8]) -> String {
        let descriptor = pool().get_message_by_name(type_name).expect("known type");
        let message = DynamicMessage::decode(descriptor, bytes).expect("valid bytes");
        String::from_utf8(super::super::json::message_to_json(&message).expect("renders"))
            .expect("JSON is UTF-8")
    }

    /// Renders on the fast path (which must be taken) and compares with the general one.
    fn assert_same(plans: &JsonPlans, type_name: &str, bytes: &[u8]) {
        let fast = plans
            .render(type_name, bytes)
            .unwrap_or_else(|| panic!("the fast path gave up on {type_name}"));
        let fast = String::from_utf8(fast).expect("JSON is UTF-8");
        let want = general(type_name, bytes);
        if fast != want {
            // Map key order is unspecified; compare as values then.
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("valid JSON");
            assert_eq!(
                parse(&fast),
                parse(&want),
                "fast:\n{fast}\ngeneral:\n{want}"
            );
            assert!(!fast.contains("\"labels\"") || want.contains("\"labels\""));
        }
    }

    fn demo_entries(list: &str, type_name: &str) -> Vec<Vec<u8>> {
        let catalog: serde_json::Value =
            serde_json::from_str(include_str!("../store/catalog/demo.json"))
                .expect("demo catalog parses");
        let descriptor = pool().get_message_by_name(type_name).expect("known type");
        catalog[list]
            .as_array()
            .expect("a list of images")
            .iter()
            .map(|entry| {
                DynamicMessage::deserialize(descriptor.clone(), entry.clone())
                    .expect("a valid image")
                    .encode_to_vec()
            })
            .collect()
    }

    #[test]
    fn every_demo_image_renders_as_the_general_renderer_does() {
        let plans = plans();
        let compute = demo_entries("computeImages", COMPUTE_IMAGE);
        let registry = demo_entries("containerRegistryImages", REGISTRY_IMAGE);
        assert!(!compute.is_empty() && !registry.is_empty());
        for bytes in &compute {
            assert_same(&plans, COMPUTE_IMAGE, bytes);
            // The typed encoder writes fields in declaration order (size = 16 after family = 7).
            let typed = compute::Image::decode(bytes.as_slice()).expect("decodes");
            assert_same(&plans, COMPUTE_IMAGE, &typed.encode_to_vec());
        }
        for bytes in &registry {
            assert_same(&plans, REGISTRY_IMAGE, bytes);
        }
        let page = compute::ListImagesResponse {
            images: compute
                .iter()
                .map(|b| compute::Image::decode(b.as_slice()).expect("decodes"))
                .collect(),
            next_page_token: "next\"page".into(),
        };
        assert_same(&plans, COMPUTE_LIST, &page.encode_to_vec());
        assert_same(&plans, COMPUTE_LIST, &[]);
    }

    #[test]
    fn defaults_escapes_maps_and_unknown_enum_values_match() {
        let plans = plans();
        let image = compute::Image {
            id: "id-\u{1}\"\\/é😀".into(),
            description: "line\nnext\ttab".into(),
            labels: (0..20)
                .map(|i| (format!("k{i}\u{7f}"), format!("v\"{i}")))
                .chain([(String::new(), String::new())])
                .collect(),
            storage_size: -1,
            min_disk_size: i64::MAX,
            size: 0,
            product_ids: vec![String::new(), "a".into()],
            status: 99,
            created_at: Some(crate::proto::Timestamp {
                seconds: 1_700_000_000,
                nanos: 120_000,
            }),
            os: Some(compute::Os::default()),
            hardware_generation: Some(compute::HardwareGeneration {
                features: Some(compute::hardware_generation::Features::Generation2Features(
                    compute::Generation2HardwareFeatures::default(),
                )),
            }),
            ..compute::Image::default()
        };
        assert_same(&plans, COMPUTE_IMAGE, &image.encode_to_vec());
        assert_same(
            &plans,
            COMPUTE_IMAGE,
            &compute::Image::default().encode_to_vec(),
        );
        for nanos in [0, 1, 1_000, 1_000_000, 999_999_999] {
            let stamped = compute::Image {
                created_at: Some(crate::proto::Timestamp { seconds: -1, nanos }),
                ..compute::Image::default()
            };
            assert_same(&plans, COMPUTE_IMAGE, &stamped.encode_to_vec());
        }
    }

    #[test]
    fn explicit_defaults_and_repeated_scalars_on_the_wire_match() {
        let plans = plans();
        // id = "" and pooled = false written explicitly, then id written again (last wins).
        let mut bytes = vec![0x0a, 0x00, 0x68, 0x00];
        bytes.extend_from_slice(&[0x0a, 0x01, b'x']);
        assert_same(&plans, COMPUTE_IMAGE, &bytes);
    }

    #[test]
    fn unusual_bytes_go_to_the_general_renderer() {
        let plans = plans();
        let unknown_field = [0xf8, 0x07, 0x01]; // field 127, varint
        let bad_utf8 = [0x0a, 0x01, 0xff];
        let truncated = [0x0a, 0x05, b'a'];
        let os_twice = [0x62, 0x02, 0x08, 0x01, 0x62, 0x02, 0x08, 0x02];
        let both_oneof_members = [0x72, 0x02, 0x0a, 0x00, 0x72, 0x02, 0x12, 0x00];
        let both_members_one_message = [0x72, 0x04, 0x0a, 0x00, 0x12, 0x00];
        for bytes in [
            &unknown_field[..],
            &bad_utf8,
            &truncated,
            &os_twice,
            &both_members_one_message,
        ] {
            assert_eq!(plans.render(COMPUTE_IMAGE, bytes), None, "{bytes:?}");
        }
        // Two hardware_generation messages merge: also the general path's business.
        assert_eq!(plans.render(COMPUTE_IMAGE, &both_oneof_members), None);
        assert_eq!(plans.render("no.such.Type", &[]), None);
    }

    proptest::proptest! {
        /// The hand-written RFC 3339 writer agrees with prost-types' Display
        /// over the whole range, for each length of fraction.
        #[test]
        fn timestamps_match_prost_types(
            seconds in MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS,
            nanos in 0i32..1_000_000_000,
            digits in 0usize..4,
        ) {
            let nanos = match digits {
                0 => 0,
                1 => nanos / 1_000_000 * 1_000_000,
                2 => nanos / 1_000 * 1_000,
                _ => nanos,
            };
            let mut ours = Vec::new();
            write_rfc3339(seconds, nanos, &mut ours);
            let theirs = format!("\"{}\"", prost_types::Timestamp { seconds, nanos });
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), theirs);
        }

        /// Strings and 64-bit integers come out as serde_json writes them.
        #[test]
        fn strings_and_integers_match_serde_json(text in "\\PC*|[\"\\\\\\x00-\\x1f a-z]*", number: i64) {
            let mut ours = Vec::new();
            let plans = JsonPlans::default();
            plans.value(&ValueKind::String, Raw::Len(text.as_bytes()), &mut ours, &mut Vec::new(), 0).unwrap();
            proptest::prop_assert_eq!(&ours, &serde_json::to_vec(&text).unwrap());
            let mut ours = Vec::new();
            quoted_integer(number, &mut ours).unwrap();
            proptest::prop_assert_eq!(ours, format!("\"{number}\"").into_bytes());
        }
    }

    #[test]
    fn timestamp_edges_match_prost_types() {
        for seconds in [
            MIN_TIMESTAMP_SECONDS,
            -1,
            0,
            951_782_400,
            4_107_542_399,
            MAX_TIMESTAMP_SECONDS,
        ] {
            for nanos in [0, 1, 999_999_999, 5_000_000, 7_000] {
                let mut ours = Vec::new();
                write_rfc3339(seconds, nanos, &mut ours);
                let theirs = format!("\"{}\"", prost_types::Timestamp { seconds, nanos });
                assert_eq!(String::from_utf8(ours).unwrap(), theirs);
            }
        }
    }
}
