//! The gRPC ceiling: the least a tonic server can do to answer
//! `compute.v1.ImageService/Get` (and `containerregistry.v1.ImageService/Get`)
//! with a realistic image. It answers every Get with one image built at start,
//! without looking at the id, with no layers, logging or error details. The
//! image is the one bench/gen_catalog.rs put at the same index, so both servers
//! send the same bytes. image-service's Get throughput is reported as a
//! fraction of this one's, measured in the same run on the same machine.
//!
//! cargo run --release --example ceiling-grpc -- --listen 127.0.0.1:50061 --compute-index 50000

use std::net::SocketAddr;

use clap::Parser;
use image_service::proto::compute::image_service_server::{
    ImageService as ComputeService, ImageServiceServer as ComputeServer,
};
use image_service::proto::container_registry::image_service_server::{
    ImageService as ContainerService, ImageServiceServer as ContainerServer,
};
use image_service::proto::yandex::cloud::access::{
    ListAccessBindingsRequest, ListAccessBindingsResponse, SetAccessBindingsRequest,
    UpdateAccessBindingsRequest,
};
use image_service::proto::yandex::cloud::operation::Operation;
use image_service::proto::{compute, container_registry};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

#[path = "images.rs"]
mod images;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
    /// Index of the compute image to answer with (see bench/images.rs).
    #[arg(long, default_value_t = 0)]
    compute_index: u64,
    /// Index of the container registry image to answer with.
    #[arg(long, default_value_t = 0)]
    container_index: u64,
    /// Layers of the container registry image.
    #[arg(long, default_value_t = 50)]
    layers: usize,
}

struct FixedCompute(compute::Image);

struct FixedContainer(container_registry::Image);

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("the ceiling server answers Get only"))
}

#[tonic::async_trait]
impl ComputeService for FixedCompute {
    async fn get(
        &self,
        _: Request<compute::GetImageRequest>,
    ) -> Result<Response<compute::Image>, Status> {
        Ok(Response::new(self.0.clone()))
    }
    async fn get_latest_by_family(
        &self,
        _: Request<compute::GetImageLatestByFamilyRequest>,
    ) -> Result<Response<compute::Image>, Status> {
        unimplemented()
    }
    async fn list(
        &self,
        _: Request<compute::ListImagesRequest>,
    ) -> Result<Response<compute::ListImagesResponse>, Status> {
        unimplemented()
    }
    async fn create(
        &self,
        _: Request<compute::CreateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
    async fn update(
        &self,
        _: Request<compute::UpdateImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
    async fn delete(
        &self,
        _: Request<compute::DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
    async fn list_operations(
        &self,
        _: Request<compute::ListImageOperationsRequest>,
    ) -> Result<Response<compute::ListImageOperationsResponse>, Status> {
        unimplemented()
    }
    async fn list_access_bindings(
        &self,
        _: Request<ListAccessBindingsRequest>,
    ) -> Result<Response<ListAccessBindingsResponse>, Status> {
        unimplemented()
    }
    async fn set_access_bindings(
        &self,
        _: Request<SetAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
    async fn update_access_bindings(
        &self,
        _: Request<UpdateAccessBindingsRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
}

#[tonic::async_trait]
impl ContainerService for FixedContainer {
    async fn get(
        &self,
        _: Request<container_registry::GetImageRequest>,
    ) -> Result<Response<container_registry::Image>, Status> {
        Ok(Response::new(self.0.clone()))
    }
    async fn list(
        &self,
        _: Request<container_registry::ListImagesRequest>,
    ) -> Result<Response<container_registry::ListImagesResponse>, Status> {
        unimplemented()
    }
    async fn delete(
        &self,
        _: Request<container_registry::DeleteImageRequest>,
    ) -> Result<Response<Operation>, Status> {
        unimplemented()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let compute = FixedCompute(images::compute_image(args.compute_index));
    let container = FixedContainer(images::container_image(args.container_index, args.layers));
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("ceiling-grpc listening on {}", listener.local_addr()?);
    // Same transport settings as image-service (TCP_NODELAY), so only the work differs.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(ComputeServer::new(compute))
        .add_service(ContainerServer::new(container))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
