//! Drives compute Creates at image-service for bench/writes.sh: as fast as
//! `--concurrency` callers can (write throughput), or paced at `--rate` per
//! second (the writes beside a Get load). Each Create has its own name in one
//! folder; a Create counts when its reply (the running operation) arrives.
//! Prints `key=value` lines: creates, errors, seconds, per_second, p50_us, p99_us.
//!
//! Usage: write-load --addr HOST:PORT [--seconds 5] [--concurrency 8] [--rate 0]
//!        [--folder b1gbenchwrites]

use std::time::{Duration, Instant};

use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{CreateImageRequest, Os};

struct Args {
    addr: String,
    seconds: f64,
    concurrency: usize,
    rate: f64,
    /// Names are unique per folder, so Creates in one folder take turns.
    folder: String,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        addr: String::new(),
        seconds: 5.0,
        concurrency: 8,
        rate: 0.0,
        folder: "b1gbenchwrites".into(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<f64>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--addr" => args.addr = value.clone(),
            "--seconds" => args.seconds = number()?,
            "--concurrency" => args.concurrency = number()? as usize,
            "--rate" => args.rate = number()?,
            "--folder" => args.folder = value.clone(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.addr.is_empty() {
        return Err("--addr HOST:PORT is required".into());
    }
    Ok(args)
}

fn request(folder: &str, run: u32, worker: usize, n: usize) -> CreateImageRequest {
    CreateImageRequest {
        folder_id: folder.into(),
        // Names are unique per folder: each run has its own.
        name: format!("w{run}-{worker}-{n}"),
        description: "bench/write_load".into(),
        labels: [("bench".to_owned(), "writes".to_owned())].into(),
        os: Some(Os::default()),
        source: Some(Source::DiskId("fhmbenchdisk".into())),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", args.addr))?
        .connect()
        .await?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    // Paced: each caller waits for its turn on a shared schedule.
    let interval =
        (args.rate > 0.0).then(|| Duration::from_secs_f64(args.concurrency as f64 / args.rate));
    let workers = (0..args.concurrency).map(|worker| {
        let mut client = ImageServiceClient::new(channel.clone());
        let folder = args.folder.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut next = started
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(worker as f64 / args.concurrency as f64)
                });
            let mut n = 0;
            while Instant::now() < until {
                if let Some(interval) = interval {
                    tokio::time::sleep_until(next.into()).await;
                    next += interval;
                }
                let sent = Instant::now();
                match client.create(request(&folder, run, worker, n)).await {
                    Ok(_) => latencies.push(sent.elapsed()),
                    Err(_) => errors += 1,
                }
                n += 1;
            }
            (latencies, errors)
        })
    });
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers.collect::<Vec<_>>() {
        let (mut own, own_errors) = worker.await?;
        latencies.append(&mut own);
        errors += own_errors;
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0, |d| d.as_micros())
    };
    println!("creates={}", latencies.len());
    println!("errors={errors}");
    println!("seconds={seconds:.2}");
    println!("per_second={:.0}", latencies.len() as f64 / seconds);
    println!("p50_us={}", at(0.50));
    println!("p99_us={}", at(0.99));
    Ok(())
}
