//! Measures how long a write takes to show on other cached replicas, for
//! bench/replicas.sh: Updates an image's description on `--writer`, and from
//! the moment the Update is answered (the write acknowledged) polls Get on
//! each `--readers` replica until it shows the new description. Also checks
//! read-your-writes: a Get on the writer right after the answer must show it.
//! One sample at a time, `--pause` apart: latency, not throughput.
//! Prints `key=value` lines: samples, p50_us, p99_us, max_us, stale_on_writer.
//!
//! Usage: replica-lag --writer HOST:PORT --readers HOST:PORT[,HOST:PORT…]
//!        [--samples 500] [--pause-ms 5] [--folder b1gbenchlag]

use std::time::{Duration, Instant};

use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{
    CreateImageMetadata, CreateImageRequest, GetImageRequest, UpdateImageRequest,
};
use image_service::proto::operation::GetOperationRequest;
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use prost::Message;
use tonic::transport::Channel;

struct Args {
    writer: String,
    readers: Vec<String>,
    samples: usize,
    pause: Duration,
    folder: String,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        writer: String::new(),
        readers: Vec::new(),
        samples: 500,
        pause: Duration::from_millis(5),
        folder: "b1gbenchlag".into(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--writer" => args.writer = value.clone(),
            "--readers" => args.readers = value.split(',').map(str::to_owned).collect(),
            "--samples" => args.samples = number()? as usize,
            "--pause-ms" => args.pause = Duration::from_millis(number()?),
            "--folder" => args.folder = value.clone(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.writer.is_empty() || args.readers.is_empty() {
        return Err("--writer and --readers are required".into());
    }
    Ok(args)
}

async fn connect(addr: &str) -> Result<Channel, tonic::transport::Error> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await
}

async fn description(
    client: &mut ImageServiceClient<Channel>,
    id: &str,
) -> Result<String, tonic::Status> {
    let image = client
        .get(GetImageRequest {
            image_id: id.into(),
        })
        .await?
        .into_inner();
    Ok(image.description)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let writer_channel = connect(&args.writer).await?;
    let mut writer = ImageServiceClient::new(writer_channel.clone());
    let mut operations = OperationServiceClient::new(writer_channel);
    let mut readers = Vec::new();
    for addr in &args.readers {
        readers.push(ImageServiceClient::new(connect(addr).await?));
    }

    // The image the Updates change, made on the writer and waited on.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut started = writer
        .create(CreateImageRequest {
            folder_id: args.folder.clone(),
            name: format!("lag-{run}"),
            source: Some(Source::DiskId("fhmbenchdisk".into())),
            ..Default::default()
        })
        .await?
        .into_inner();
    let metadata = started
        .metadata
        .as_ref()
        .map(|any| CreateImageMetadata::decode(any.value.as_slice()))
        .transpose()?
        .ok_or("Create answered without metadata")?;
    while !started.done {
        tokio::time::sleep(Duration::from_millis(5)).await;
        started = operations
            .get(GetOperationRequest {
                operation_id: started.id.clone(),
            })
            .await?
            .into_inner();
    }
    let id = metadata.image_id;

    let mut lags = Vec::with_capacity(args.samples * readers.len());
    let mut stale_on_writer = 0u64;
    for sample in 0..args.samples {
        let wanted = format!("lag sample {sample}");
        writer
            .update(UpdateImageRequest {
                image_id: id.clone(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
                description: wanted.clone(),
                ..Default::default()
            })
            .await?;
        let acknowledged = Instant::now();
        if description(&mut writer, &id).await? != wanted {
            stale_on_writer += 1;
        }
        let polls = readers.iter().cloned().map(|mut reader| {
            let (id, wanted) = (id.clone(), wanted.clone());
            tokio::spawn(async move {
                loop {
                    match description(&mut reader, &id).await {
                        Ok(seen) if seen == wanted => return Ok(acknowledged.elapsed()),
                        Ok(_) | Err(_) if acknowledged.elapsed() > Duration::from_secs(30) => {
                            return Err("a reader never saw the write");
                        }
                        _ => tokio::task::yield_now().await,
                    }
                }
            })
        });
        for poll in polls.collect::<Vec<_>>() {
            lags.push(poll.await??);
        }
        tokio::time::sleep(args.pause).await;
    }
    lags.sort();
    let at = |q: f64| {
        lags.get(((lags.len() as f64 * q) as usize).min(lags.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    println!("samples={}", lags.len());
    println!("p50_us={}", at(0.50));
    println!("p99_us={}", at(0.99));
    println!("max_us={}", lags.last().map_or(0, |d| d.as_micros()));
    println!("stale_on_writer={stale_on_writer}");
    Ok(())
}
