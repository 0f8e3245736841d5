//! The gRPC face: each ImageService is a [`unary::Served`] service whose
//! methods translate a request into a call of [`crate::service`] and its
//! result into a message (or a status carrying the request id). Nothing else.

pub mod compute;
pub mod container_registry;
pub mod endpoint;
pub mod operation;
pub mod unary;

use std::future::Future;
use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use crate::domain::access::{Caller, caller_of};
use crate::error::ApiError;
use crate::proto::operation::Operation;
use crate::service::{ImageApi, Images, Writes};
use crate::transport::metadata::IDEMPOTENCY_KEY;
use crate::transport::request_context::{RequestId, request_id_of};
use crate::transport::status::to_status;

pub use unary::{EncodedMessage, Method, Served};

/// The method at `path` answered by a service function: `call` gets the
/// service, the caller and the request message; `message` makes the answer.
fn method<Svc, Req, T, M, F, Fut>(
    path: &'static str,
    max_request_size: usize,
    service: Arc<Svc>,
    call: F,
    message: fn(T) -> M,
) -> Method
where
    Svc: Send + Sync + 'static,
    T: 'static,
    Req: Message + Default + Send + 'static,
    M: Message + Send + 'static,
    F: Fn(Arc<Svc>, Option<Arc<Caller>>, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    unary::unary(path, max_request_size, move |request: Request<Req>| {
        let (service, call) = (service.clone(), call.clone());
        async move {
            let (request_id, caller, request) = parts(request);
            respond(call(service, caller, request).await, request_id, message)
        }
    })
}

/// A write at `path`: as [`method`], and `call` also gets the request's
/// `idempotency-key`.
fn write_method<Req, F, Fut>(
    path: &'static str,
    max_request_size: usize,
    writes: Arc<Writes>,
    call: F,
) -> Method
where
    Req: Message + Default + Send + 'static,
    F: Fn(Arc<Writes>, Option<Arc<Caller>>, Option<String>, Req) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = Result<Operation, ApiError>> + Send + 'static,
{
    unary::unary(path, max_request_size, move |request: Request<Req>| {
        let (writes, call) = (writes.clone(), call.clone());
        async move {
            let key = request
                .metadata()
                .get(IDEMPOTENCY_KEY)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            let (request_id, caller, request) = parts(request);
            respond(
                call(writes, caller, key, request).await,
                request_id,
                std::convert::identity,
            )
        }
    })
}

/// The Get and List of an image API, at those paths: the Get answers the
/// stored encoding as it is.
fn image_methods<A>(
    service: Arc<Images<A>>,
    max_request_size: usize,
    get: &'static str,
    list: &'static str,
) -> Vec<Method>
where
    A: ImageApi,
    A::GetRequest: Message + Default + 'static,
    A::ListRequest: Message + Default + 'static,
{
    vec![
        method(
            get,
            max_request_size,
            service.clone(),
            |s: Arc<Images<A>>, caller, r| async move { s.get(caller.as_deref(), r).await },
            EncodedMessage,
        ),
        method(
            list,
            max_request_size,
            service,
            |s: Arc<Images<A>>, caller, r| async move { s.list(caller.as_deref(), r).await },
            std::convert::identity,
        ),
    ]
}

/// What a handler needs of a tonic request: its request id (from the request
/// context), its caller (from authentication, none when it is off) and its message.
fn parts<T>(request: Request<T>) -> (Option<RequestId>, Option<Arc<Caller>>, T) {
    let request_id = request_id_of(request.extensions()).cloned();
    let caller = caller_of(request.extensions());
    (request_id, caller, request.into_inner())
}

/// A service function's outcome as tonic's: the answer as `message`, or the
/// error as a status naming the request.
fn respond<T, M>(
    outcome: Result<T, ApiError>,
    request_id: Option<RequestId>,
    message: impl FnOnce(T) -> M,
) -> Result<Response<M>, Status> {
    match outcome {
        Ok(answer) => Ok(Response::new(message(answer))),
        Err(err) => Err(to_status(err, request_id.as_ref())),
    }
}
