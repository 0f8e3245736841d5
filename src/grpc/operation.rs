//! `yandex.cloud.operation.OperationService` on gRPC.

use std::sync::Arc;

use super::{Served, method};
use crate::proto::operation::operation_service_server::OperationServiceServer;
use crate::proto::operation::{CancelOperationRequest, GetOperationRequest};
use crate::service::Writes;

/// The generated server stands only for the service's name (routing needs it).
type Named = OperationServiceServer<()>;

const GET: &str = "/yandex.cloud.operation.OperationService/Get";
const CANCEL: &str = "/yandex.cloud.operation.OperationService/Cancel";

pub fn server(writes: Arc<Writes>, max: usize) -> Served<Named> {
    Served::new(vec![
        method(
            GET,
            max,
            writes.clone(),
            |s, caller, r: GetOperationRequest| async move {
                s.get_operation(caller.as_deref(), r).await
            },
            std::convert::identity,
        ),
        method(
            CANCEL,
            max,
            writes,
            |s, caller, r: CancelOperationRequest| async move {
                s.cancel_operation(caller.as_deref(), r).await
            },
            std::convert::identity,
        ),
    ])
}
