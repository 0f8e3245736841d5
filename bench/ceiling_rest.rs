//! The REST ceiling: the least an HTTP/1.1 server (hyper 1, keep-alive) can do
//! to answer `GET /compute/v1/images/{imageId}`. Every request gets the same
//! JSON body, serialised once at start from the image bench/gen_catalog.rs put
//! at the same index; nothing is looked up, logged or encoded per request.
//! image-service's REST Get throughput is reported as a fraction of this one's.
//!
//! cargo run --release --example ceiling-rest -- --listen 127.0.0.1:50062 --compute-index 50000

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, header};
use hyper_util::rt::TokioIo;

#[path = "images.rs"]
mod images;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:50062")]
    listen: SocketAddr,
    /// Index of the compute image to answer with (see bench/images.rs).
    #[arg(long, default_value_t = 0)]
    compute_index: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut json = String::new();
    images::compute_image_json(&mut json, &images::compute_image(args.compute_index));
    // Bytes clones are a reference-count bump: the body is never copied per request.
    let body = Bytes::from(json);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("ceiling-rest listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_: Request<hyper::body::Incoming>| {
                let response = Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()))
                    .expect("a static response is valid");
                async move { Ok::<_, Infallible>(response) }
            });
            // Errors here are a client hanging up mid-request: nothing to do.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
