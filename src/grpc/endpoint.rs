//! `yandex.cloud.endpoint.ApiEndpointService`: tells the official SDKs that
//! the APIs they need live here, so they work without endpoint overrides.

use tonic::{Request, Response, Status};

use crate::error::ApiError;
use crate::proto::endpoint::api_endpoint_service_server::{
    ApiEndpointService, ApiEndpointServiceServer,
};
use crate::proto::endpoint::{
    ApiEndpoint, GetApiEndpointRequest, ListApiEndpointsRequest, ListApiEndpointsResponse,
};
use crate::transport::request_context::request_id_of;
use crate::transport::status;

/// The endpoint ids answered with our own address. `compute`,
/// `container-registry` and `operation` are the APIs we serve (the SDKs wait
/// on operations through `operation`); the Python SDK also looks up
/// `iam` for every authenticated channel (even with a ready IAM token, when it
/// never calls it) and `endpoint` when a client of this service is asked for.
pub const ADVERTISED_IDS: [&str; 5] = [
    "compute",
    "container-registry",
    "endpoint",
    "iam",
    "operation",
];

pub struct ApiEndpoints {
    endpoints: Vec<ApiEndpoint>,
}

impl ApiEndpoints {
    /// Every id of [`ADVERTISED_IDS`] at `address` (HOST:PORT).
    pub fn new(address: &str) -> Self {
        let endpoints = ADVERTISED_IDS
            .iter()
            .map(|id| ApiEndpoint {
                id: (*id).to_owned(),
                address: address.to_owned(),
            })
            .collect();
        Self { endpoints }
    }

    pub fn server(address: &str) -> ApiEndpointServiceServer<Self> {
        ApiEndpointServiceServer::new(Self::new(address))
    }
}

#[tonic::async_trait]
impl ApiEndpointService for ApiEndpoints {
    async fn get(
        &self,
        request: Request<GetApiEndpointRequest>,
    ) -> Result<Response<ApiEndpoint>, Status> {
        let request_id = request_id_of(request.extensions()).cloned();
        let id = request.into_inner().api_endpoint_id;
        if id.is_empty() {
            let err = ApiError::invalid_argument("api_endpoint_id", "must not be empty");
            return Err(status::to_status(err, request_id.as_ref()));
        }
        match self.endpoints.iter().find(|e| e.id == id) {
            Some(endpoint) => Ok(Response::new(endpoint.clone())),
            None => {
                let err = ApiError::NotFound(format!("Api endpoint {id} not found"));
                Err(status::to_status(err, request_id.as_ref()))
            }
        }
    }

    /// Everything in one page: the list is short and paging is deprecated.
    async fn list(
        &self,
        _request: Request<ListApiEndpointsRequest>,
    ) -> Result<Response<ListApiEndpointsResponse>, Status> {
        Ok(Response::new(ListApiEndpointsResponse {
            endpoints: self.endpoints.clone(),
            next_page_token: String::new(),
        }))
    }
}
