//! The REST/JSON face, grpc-gateway style: routes come from the `google.api.http`
//! rules, and each call is transcoded into an in-process gRPC call on the same
//! tonic routes the gRPC listener serves. The two image Gets, the hot path,
//! skip the gRPC framing and routing: they call the Get the routes hold
//! ([`DirectGet`]) after the routes' authentication step. No
//! second copy of any call's logic.

mod grpc_call;
mod json;
pub mod openapi;
mod request;
mod routes;
mod template;
mod wire_json;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use tonic::service::Routes;

pub use grpc_call::{DirectGet, DirectGets};
pub use json::http_status;
pub use routes::{RouteError, RouteTable};

use crate::error::ApiError;
use crate::ops::metrics::Metrics;
use crate::transport::limits::InFlight;
use crate::transport::request_context::{GrpcCode, RequestId, request_id_of};
use crate::transport::status::to_status;
use routes::NoRoute;

/// Longest request URI accepted (414 beyond).
pub const MAX_URI_BYTES: usize = 8 * 1024;

pub type RestBody = Full<Bytes>;

/// The REST gateway as a tower service; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct RestGateway {
    shared: Arc<Shared>,
}

struct Shared {
    table: RouteTable,
    grpc: Routes,
    /// The Gets, called without the routes in between.
    direct: DirectGets,
    status: MessageDescriptor,
    /// Fast JSON rendering of every route's response type.
    plans: wire_json::JsonPlans,
    /// gRPC services whose health decides readiness.
    served: Vec<String>,
    /// Shared with the gRPC face: one budget of calls in flight.
    in_flight: Arc<InFlight>,
    metrics: Arc<Metrics>,
    /// Largest request body accepted (413 beyond): --max-request-size.
    max_body: usize,
    /// The OpenAPI document of the routes, rendered once.
    openapi: Bytes,
}

/// The page at `/docs`: the services and a form per call, read from `/openapi.json`.
const DOCS_PAGE: &str = include_str!("docs_page.html");

/// The OpenAPI document of the REST routes of `services`, as pretty JSON.
pub fn openapi_json(pool: &DescriptorPool, services: &[&str]) -> Result<String, GatewayError> {
    let table = RouteTable::from_services(pool, services)?;
    Ok(serde_json::to_string_pretty(&openapi::document(&table, pool)).unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("REST routes: {0}")]
    Routes(#[from] RouteError),
    #[error("REST gateway: the descriptors lack {0}")]
    Missing(&'static str),
}

impl RestGateway {
    /// A gateway for the http rules of `services`, calling into `grpc`.
    pub fn new(
        pool: &DescriptorPool,
        services: &[&str],
        grpc: Routes,
        direct: DirectGets,
        in_flight: Arc<InFlight>,
        metrics: Arc<Metrics>,
        max_body: usize,
    ) -> Result<Self, GatewayError> {
        let table = RouteTable::from_services(pool, services)?;
        let status = pool
            .get_message_by_name("google.rpc.Status")
            .ok_or(GatewayError::Missing("google.rpc.Status"))?;
        let plans = wire_json::JsonPlans::new(table.routes().iter().map(|route| &route.output));
        let openapi = Bytes::from(openapi::document(&table, pool).to_string());
        Ok(Self {
            shared: Arc::new(Shared {
                plans,
                table,
                grpc,
                direct,
                status,
                served: services.iter().map(|s| (*s).to_owned()).collect(),
                in_flight,
                metrics,
                max_body,
                openapi,
            }),
        })
    }
}

impl<B> tower::Service<Request<B>> for RestGateway
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<RestBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

impl Shared {
    async fn handle<B>(&self, request: Request<B>) -> Response<RestBody>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = request_id_of(request.extensions())
            .cloned()
            .unwrap_or_else(RequestId::generate);
        let fail = |status: StatusCode, err: ApiError| self.error(status, err, &request_id);

        let uri_len = request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
        if uri_len > MAX_URI_BYTES {
            return fail(
                StatusCode::URI_TOO_LONG,
                ApiError::invalid_argument("uri", format!("longer than {MAX_URI_BYTES} bytes")),
            );
        }
        let path = request.uri().path().to_owned();
        match (request.method(), path.as_str()) {
            (&Method::GET, "/healthz") => {
                return json_response(StatusCode::OK, br#"{"status":"SERVING"}"#.to_vec(), 0);
            }
            (&Method::GET, "/readyz") => return self.readiness(&request_id).await,
            (&Method::GET, "/metrics") => return self.metrics_page(),
            (&Method::GET, "/openapi.json") => {
                return json_response(StatusCode::OK, self.openapi.clone(), 0);
            }
            (&Method::GET, "/swagger.json") => return redirect("/openapi.json"),
            (&Method::GET, "/docs") => return html_response(DOCS_PAGE),
            (&Method::GET, "/docs/") => return redirect("/docs"),
            _ => {}
        }

        // Probes above stay answerable when the server is saturated.
        let Some(_slot) = self.in_flight.try_acquire() else {
            return fail(StatusCode::TOO_MANY_REQUESTS, self.in_flight.refusal());
        };

        let (route, path_vars) = match self.table.find(request.method(), &path) {
            Ok(found) => found,
            Err(NoRoute::NotFound) => {
                return fail(
                    StatusCode::NOT_FOUND,
                    ApiError::NotFound(format!("no route for {} {path}", request.method())),
                );
            }
            Err(NoRoute::MethodNotAllowed(allowed)) => {
                let allow = allowed
                    .iter()
                    .map(Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut response = fail(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ApiError::Unimplemented(format!(
                        "method {} is not allowed on {path}; allowed: {allow}",
                        request.method()
                    )),
                );
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                return response;
            }
            Err(NoRoute::BadPath(_)) => {
                return fail(
                    StatusCode::BAD_REQUEST,
                    ApiError::invalid_argument("path", "bad percent-encoding"),
                );
            }
        };

        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, self.max_body).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return fail(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ApiError::invalid_argument(
                        "body",
                        format!("unreadable or larger than {} bytes", self.max_body),
                    ),
                );
            }
        };
        let payload = match request::encode_request(route, path_vars, parts.uri.query(), &body) {
            Ok(payload) => payload,
            Err(err) => return fail(StatusCode::BAD_REQUEST, err),
        };

        let grpc_path = route.grpc_path.as_str();
        let reply = match self.direct.find(grpc_path) {
            Some(get) => {
                let call = self.direct.call(get, &payload, &parts.headers, &request_id);
                grpc_call::metered(grpc_path, &self.metrics, call).await
            }
            None => {
                let call = grpc_call::unary(
                    &self.grpc,
                    route.grpc_uri.clone(),
                    &payload,
                    &parts.headers,
                    &request_id,
                );
                grpc_call::metered(grpc_path, &self.metrics, call).await
            }
        };
        if reply.code != 0 {
            let body = json::status_to_json(
                &self.status,
                reply.code,
                &reply.error_message,
                reply.status_details.as_deref(),
            );
            return json_response(http_status(reply.code), body, reply.code);
        }
        if let Some(body) = self.plans.render(route.output.full_name(), &reply.message) {
            return json_response(StatusCode::OK, body, 0);
        }
        let rendered = DynamicMessage::decode(route.output.clone(), reply.message)
            .map_err(|err| err.to_string())
            .and_then(|message| json::message_to_json(&message).map_err(|err| err.to_string()));
        match rendered {
            Ok(body) => json_response(StatusCode::OK, body, 0),
            Err(err) => fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                ApiError::Internal(format!("cannot render the response as JSON: {err}")),
            ),
        }
    }

    fn metrics_page(&self) -> Response<RestBody> {
        let mut response = Response::new(Full::new(Bytes::from(self.metrics.render())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        response.extensions_mut().insert(GrpcCode(0));
        response
    }

    /// 200 when every served gRPC service reports SERVING, else 503 naming the others.
    async fn readiness(&self, request_id: &RequestId) -> Response<RestBody> {
        use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
        const SERVING: i32 = 1;
        let mut not_ready = Vec::new();
        for service in &self.served {
            let probe = HealthCheckRequest {
                service: service.clone(),
            };
            const CHECK: &str = "/grpc.health.v1.Health/Check";
            let (payload, headers) = (probe.encode_to_vec(), http::HeaderMap::new());
            let uri = http::Uri::from_static(CHECK);
            let call = grpc_call::unary(&self.grpc, uri, &payload, &headers, request_id);
            let reply = grpc_call::metered(CHECK, &self.metrics, call).await;
            let status = HealthCheckResponse::decode(reply.message).map(|r| r.status);
            if reply.code != 0 || status != Ok(SERVING) {
                not_ready.push(service.clone());
            }
        }
        if not_ready.is_empty() {
            json_response(StatusCode::OK, br#"{"status":"SERVING"}"#.to_vec(), 0)
        } else {
            let body = serde_json::json!({
                "status": "NOT_SERVING",
                "reason": format!("not serving: {}", not_ready.join(", ")),
            });
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                body.to_string().into_bytes(),
                14,
            )
        }
    }

    /// An error answered by the gateway itself, shaped like a call's error.
    fn error(
        &self,
        status: StatusCode,
        err: ApiError,
        request_id: &RequestId,
    ) -> Response<RestBody> {
        let grpc_status = to_status(err, Some(request_id));
        let code = grpc_status.code() as i32;
        let body = json::status_to_json(
            &self.status,
            code,
            grpc_status.message(),
            Some(grpc_status.details()),
        );
        json_response(status, body, code)
    }
}

fn html_response(page: &'static str) -> Response<RestBody> {
    let mut response = Response::new(Full::new(Bytes::from_static(page.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page loads nothing from elsewhere, and may call only this server.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ),
    );
    response.extensions_mut().insert(GrpcCode(0));
    response
}

fn redirect(to: &'static str) -> Response<RestBody> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    response.extensions_mut().insert(GrpcCode(0));
    response
}

fn json_response(status: StatusCode, body: impl Into<Bytes>, code: i32) -> Response<RestBody> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(GrpcCode(code));
    response
}
