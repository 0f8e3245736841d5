//! Synthetic but realistic images for the benchmarks, shared by the catalog
//! generator and both ceiling servers (each includes this file with `#[path]`),
//! so that the image a ceiling answers is byte for byte the one the catalog
//! holds at the same index.
//!
//! Everything is derived from the image's index with a fixed hash: the same
//! index always gives the same image, and ids never collide.

#![allow(dead_code)] // each example uses a different part

use std::fmt::Write as _;

use image_service::proto::compute;
use image_service::proto::compute::hardware_generation::Features;
use image_service::proto::container_registry;
use prost::Message;

/// Lowercase base32hex, the alphabet of Yandex Cloud ids.
const ID_ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// 2024-01-01T00:00:00Z; images are spread over the following months.
const EPOCH_2024: i64 = 1_704_067_200;

/// splitmix64's finaliser: a bijection on u64, so distinct inputs give distinct ids.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A 20-character id: a 3-character prefix, then 13 characters holding all 64
/// bits of `mix(n)` (unique per `n`) and 4 filler characters.
fn cloud_id(prefix: &str, salt: u64, n: u64) -> String {
    let mut id = String::with_capacity(20);
    id.push_str(prefix);
    let mut bits = mix(n ^ salt.rotate_left(32));
    for _ in 0..13 {
        id.push(ID_ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
    }
    let mut filler = mix(bits ^ salt ^ n);
    while id.len() < 20 {
        id.push(ID_ALPHABET[(filler & 31) as usize] as char);
        filler >>= 5;
    }
    id
}

fn sha256_like(salt: u64, n: u64) -> String {
    let mut digest = String::with_capacity(71);
    digest.push_str("sha256:");
    for part in 0..4 {
        let _ = write!(digest, "{:016x}", mix((n.wrapping_mul(4) + part) ^ salt));
    }
    digest
}

fn timestamp(seconds: i64) -> image_service::proto::Timestamp {
    image_service::proto::Timestamp { seconds, nanos: 0 }
}

/// (family, description, os type, size in GiB) of the public images a folder copies.
const FAMILIES: [(&str, &str, compute::os::Type, i64); 6] = [
    (
        "ubuntu-2204-lts",
        "Ubuntu 22.04 LTS",
        compute::os::Type::Linux,
        4,
    ),
    (
        "ubuntu-2404-lts",
        "Ubuntu 24.04 LTS",
        compute::os::Type::Linux,
        5,
    ),
    (
        "debian-12",
        "Debian 12 (bookworm)",
        compute::os::Type::Linux,
        3,
    ),
    (
        "centos-stream-9",
        "CentOS Stream 9",
        compute::os::Type::Linux,
        4,
    ),
    (
        "app-base",
        "Application base image",
        compute::os::Type::Linux,
        6,
    ),
    (
        "windows-2022",
        "Windows Server 2022 Datacenter",
        compute::os::Type::Windows,
        16,
    ),
];

/// The compute image number `i` of a catalog: one of 1,000 folders, one of six
/// families, two labels, one product id, a hardware generation, like the
/// images `yc compute image list` shows.
/// The folder number of compute image `i`: 1,000 folders, images dealt in turn.
pub fn compute_folder(i: u64) -> u64 {
    i % 1000
}

pub fn compute_image(i: u64) -> compute::Image {
    const GIB: i64 = 1 << 30;
    let (family, description, os, gib) = FAMILIES[(i % FAMILIES.len() as u64) as usize];
    let created = EPOCH_2024 + (i as i64) * 37;
    let hardware = if i % 4 == 0 {
        Features::LegacyFeatures(compute::LegacyHardwareFeatures {
            pci_topology: compute::PciTopology::V2 as i32,
        })
    } else {
        Features::Generation2Features(compute::Generation2HardwareFeatures::default())
    };
    compute::Image {
        id: cloud_id("fd8", 1, i),
        folder_id: cloud_id("b1g", 2, compute_folder(i)),
        created_at: Some(timestamp(created)),
        name: format!("{family}-v{}-{i:07}", yyyymmdd(created)),
        description: description.to_owned(),
        labels: [
            (
                "env".to_owned(),
                if i % 3 == 0 { "staging" } else { "prod" }.to_owned(),
            ),
            ("team".to_owned(), "platform".to_owned()),
        ]
        .into(),
        family: family.to_owned(),
        size: gib * GIB,
        storage_size: (gib * 7 / 4) * GIB,
        min_disk_size: (gib * 2) * GIB,
        product_ids: vec![cloud_id("f2e", 3, i % FAMILIES.len() as u64)],
        status: compute::image::Status::Ready as i32,
        os: Some(compute::Os {
            r#type: os as i32,
            nvidia: None,
        }),
        pooled: i % 3 == 0,
        hardware_generation: Some(compute::HardwareGeneration {
            features: Some(hardware),
        }),
        kms_key: None,
    }
}

/// The container image number `i`: a config blob, `layers` layer blobs and two tags.
pub fn container_image(i: u64, layers: usize) -> container_registry::Image {
    let blob = |n: u64, size: i64| container_registry::Blob {
        id: cloud_id("crp", 5, n),
        digest: sha256_like(6, n),
        size,
        urls: Vec::new(),
    };
    let first_blob = i * (layers as u64 + 1);
    let layers: Vec<_> = (0..layers as u64)
        .map(|l| {
            blob(
                first_blob + 1 + l,
                1_000_000 + (mix(i ^ l) % 50_000_000) as i64,
            )
        })
        .collect();
    container_registry::Image {
        id: cloud_id("crp", 4, i),
        name: format!("{}/team/app-{}", cloud_id("crp", 7, i % 100), i % 100),
        digest: sha256_like(8, i),
        compressed_size: layers.iter().map(|l| l.size).sum(),
        config: Some(blob(first_blob, 2_405)),
        layers,
        tags: vec![format!("v1.{}.{}", i / 1000, i % 1000), "stable".to_owned()],
        created_at: Some(timestamp(EPOCH_2024 + (i as i64) * 61)),
    }
}

/// A message as one gRPC frame: uncompressed flag, 4-byte big-endian length, bytes.
pub fn grpc_frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut frame = Vec::with_capacity(5 + body.len());
    frame.push(0);
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

// ---- proto3 JSON mapping, written by hand for speed (a million images in
// seconds). Only what these generated images use is covered; the server
// re-reads every entry with a full proto3 JSON parser, so a slip here fails
// loudly at load time rather than skewing a figure.

/// Appends a JSON string. Generated text is plain ASCII, but escape anyway.
fn json_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn yyyymmdd(seconds: i64) -> String {
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    format!("{y:04}{m:02}{d:02}")
}

/// RFC 3339 in UTC, whole seconds (the generated timestamps have no nanos).
fn json_timestamp(out: &mut String, ts: &image_service::proto::Timestamp) {
    let (y, mo, d) = civil_from_days(ts.seconds.div_euclid(86_400));
    let secs = ts.seconds.rem_euclid(86_400);
    let _ = write!(
        out,
        "\"{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z\"",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

/// Appends `"key":` with the separating comma when needed.
fn key(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

/// A compute image in the proto3 JSON mapping, as the REST API prints it.
pub fn compute_image_json(out: &mut String, image: &compute::Image) {
    let mut first = true;
    out.push('{');
    key(out, &mut first, "id");
    json_str(out, &image.id);
    key(out, &mut first, "folderId");
    json_str(out, &image.folder_id);
    if let Some(ts) = &image.created_at {
        key(out, &mut first, "createdAt");
        json_timestamp(out, ts);
    }
    key(out, &mut first, "name");
    json_str(out, &image.name);
    if !image.description.is_empty() {
        key(out, &mut first, "description");
        json_str(out, &image.description);
    }
    if !image.labels.is_empty() {
        key(out, &mut first, "labels");
        out.push('{');
        for (n, (k, v)) in image.labels.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            json_str(out, k);
            out.push(':');
            json_str(out, v);
        }
        out.push('}');
    }
    if !image.family.is_empty() {
        key(out, &mut first, "family");
        json_str(out, &image.family);
    }
    for (name, value) in [
        ("size", image.size),
        ("storageSize", image.storage_size),
        ("minDiskSize", image.min_disk_size),
    ] {
        key(out, &mut first, name);
        let _ = write!(out, "\"{value}\"");
    }
    if !image.product_ids.is_empty() {
        key(out, &mut first, "productIds");
        json_str_list(out, &image.product_ids);
    }
    key(out, &mut first, "status");
    json_str(out, image.status().as_str_name());
    if let Some(os) = &image.os {
        key(out, &mut first, "os");
        out.push_str("{\"type\":");
        json_str(out, os.r#type().as_str_name());
        out.push('}');
    }
    if image.pooled {
        key(out, &mut first, "pooled");
        out.push_str("true");
    }
    if let Some(features) = image
        .hardware_generation
        .as_ref()
        .and_then(|h| h.features.as_ref())
    {
        key(out, &mut first, "hardwareGeneration");
        match features {
            Features::LegacyFeatures(legacy) => {
                out.push_str("{\"legacyFeatures\":{\"pciTopology\":");
                json_str(out, legacy.pci_topology().as_str_name());
                out.push_str("}}");
            }
            Features::Generation2Features(_) => out.push_str("{\"generation2Features\":{}}"),
        }
    }
    out.push('}');
}

fn json_str_list(out: &mut String, items: &[String]) {
    out.push('[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        json_str(out, item);
    }
    out.push(']');
}

fn blob_json(out: &mut String, blob: &container_registry::Blob) {
    out.push_str("{\"id\":");
    json_str(out, &blob.id);
    out.push_str(",\"digest\":");
    json_str(out, &blob.digest);
    let _ = write!(out, ",\"size\":\"{}\"}}", blob.size);
}

/// A container registry image in the proto3 JSON mapping.
pub fn container_image_json(out: &mut String, image: &container_registry::Image) {
    out.push_str("{\"id\":");
    json_str(out, &image.id);
    out.push_str(",\"name\":");
    json_str(out, &image.name);
    out.push_str(",\"digest\":");
    json_str(out, &image.digest);
    let _ = write!(out, ",\"compressedSize\":\"{}\"", image.compressed_size);
    if let Some(config) = &image.config {
        out.push_str(",\"config\":");
        blob_json(out, config);
    }
    out.push_str(",\"layers\":[");
    for (n, layer) in image.layers.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        blob_json(out, layer);
    }
    out.push_str("],\"tags\":");
    json_str_list(out, &image.tags);
    if let Some(ts) = &image.created_at {
        out.push_str(",\"createdAt\":");
        json_timestamp(out, ts);
    }
    out.push('}');
}
