//! Writes a benchmark catalog (JSON, the server's `--catalog` format) and, for
//! the load generators, the pre-encoded gRPC requests for one sample image of
//! each API together with the exact responses the server must send back.
//!
//! Prints `key=value` lines for bench/run.sh, among them the size of the
//! catalog's images encoded as protobuf, which the resident memory is judged by.
//!
//! cargo run --release --example gen-catalog -- --compute 100000 --out c.json --frames DIR

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use image_service::proto::{compute, container_registry};
use prost::Message;

#[path = "images.rs"]
mod images;

#[derive(Parser)]
struct Args {
    /// Number of compute images.
    #[arg(long, default_value_t = 100_000)]
    compute: u64,
    /// Number of container registry images.
    #[arg(long, default_value_t = 0)]
    container: u64,
    /// Layers per container registry image.
    #[arg(long, default_value_t = 50)]
    layers: usize,
    /// The catalog file to write.
    #[arg(long)]
    out: PathBuf,
    /// Where to write the request/response frames of the sample images.
    #[arg(long)]
    frames: Option<PathBuf>,
}

/// The catalog file being written, in chunks of whole images.
struct Output {
    file: BufWriter<File>,
    bytes: usize,
}

impl Output {
    fn write(&mut self, chunk: &mut String) -> std::io::Result<()> {
        self.bytes += chunk.len();
        self.file.write_all(chunk.as_bytes())?;
        chunk.clear();
        Ok(())
    }
}

/// The image every load run asks for: one in the middle of the list, so the
/// request is neither the first nor the last entry read.
fn sample_index(count: u64) -> u64 {
    count / 2
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let started = Instant::now();
    let mut out = Output {
        file: BufWriter::with_capacity(1 << 20, File::create(&args.out)?),
        bytes: 0,
    };
    let mut chunk = String::with_capacity(64 << 10);

    let mut compute_proto_bytes = 0usize;
    chunk.push_str("{\"computeImages\":[");
    for i in 0..args.compute {
        let image = images::compute_image(i);
        compute_proto_bytes += image.encoded_len();
        chunk.push_str(if i == 0 { "\n" } else { ",\n" });
        images::compute_image_json(&mut chunk, &image);
        if chunk.len() > 60 << 10 {
            out.write(&mut chunk)?;
        }
    }
    let mut container_proto_bytes = 0usize;
    chunk.push_str("\n],\"containerRegistryImages\":[");
    for i in 0..args.container {
        let image = images::container_image(i, args.layers);
        container_proto_bytes += image.encoded_len();
        chunk.push_str(if i == 0 { "\n" } else { ",\n" });
        images::container_image_json(&mut chunk, &image);
        if chunk.len() > 60 << 10 {
            out.write(&mut chunk)?;
        }
    }
    chunk.push_str("\n]}\n");
    out.write(&mut chunk)?;
    out.file
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_data()?;

    println!("compute_images={}", args.compute);
    println!("container_images={}", args.container);
    println!("layers={}", args.layers);
    println!("compute_proto_bytes={compute_proto_bytes}");
    println!("container_proto_bytes={container_proto_bytes}");
    println!("json_bytes={}", out.bytes);
    println!("generate_seconds={:.3}", started.elapsed().as_secs_f64());

    if let Some(dir) = &args.frames {
        std::fs::create_dir_all(dir)?;
        if args.compute > 0 {
            let index = sample_index(args.compute);
            let image = images::compute_image(index);
            let request = compute::GetImageRequest {
                image_id: image.id.clone(),
            };
            std::fs::write(dir.join("compute-get.req"), images::grpc_frame(&request))?;
            std::fs::write(dir.join("compute-get.resp"), images::grpc_frame(&image))?;
            let mut json = String::new();
            images::compute_image_json(&mut json, &image);
            std::fs::write(dir.join("compute-image.json"), json)?;
            // List: the sample's folder, a page of 100 (the folder holds it).
            let list = compute::ListImagesRequest {
                folder_id: image.folder_id.clone(),
                page_size: 100,
                ..Default::default()
            };
            std::fs::write(dir.join("compute-list.req"), images::grpc_frame(&list))?;
            // GetLatestByFamily: the newest image of the sample's folder and
            // family. Every generated image is READY and created_at grows with
            // the index, so it is the last index sharing both.
            let latest = (index..args.compute)
                .rev()
                .map(images::compute_image)
                .find(|other| other.folder_id == image.folder_id && other.family == image.family)
                .unwrap_or_else(|| image.clone());
            let by_family = compute::GetImageLatestByFamilyRequest {
                folder_id: image.folder_id.clone(),
                family: image.family.clone(),
            };
            std::fs::write(
                dir.join("compute-latest.req"),
                images::grpc_frame(&by_family),
            )?;
            std::fs::write(dir.join("compute-latest.resp"), images::grpc_frame(&latest))?;
            println!("compute_sample_index={index}");
            let folder_images = (0..args.compute)
                .filter(|&other| images::compute_folder(other) == images::compute_folder(index))
                .count();
            println!("compute_sample_folder_images={folder_images}");
            println!("compute_sample_id={}", image.id);
            println!("compute_sample_proto_bytes={}", image.encoded_len());
        }
        if args.container > 0 {
            let index = sample_index(args.container);
            let image = images::container_image(index, args.layers);
            let request = container_registry::GetImageRequest {
                image_id: image.id.clone(),
            };
            std::fs::write(dir.join("container-get.req"), images::grpc_frame(&request))?;
            std::fs::write(dir.join("container-get.resp"), images::grpc_frame(&image))?;
            println!("container_sample_index={index}");
            println!("container_sample_id={}", image.id);
            println!("container_sample_proto_bytes={}", image.encoded_len());
        }
    }
    Ok(())
}
