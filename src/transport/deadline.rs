//! The caller's deadline (`grpc-timeout`) passed down to the backend, so a
//! call's database work ends when the call does instead of running on until
//! the statement timeout.
//!
//! A layer on both faces reads `grpc-timeout` (the REST gateway passes the
//! header on) and runs the call with its deadline in a task-local; the
//! PostgreSQL pool bounds its waits by [`remaining`]. The deadline is set a
//! little early, so the backend's own error ends the call and its connection
//! is discarded (with the query cancelled), rather than tonic dropping the
//! call at the same instant with a reply still due on a pooled connection.
//!
//! On the gRPC face the layer also answers DEADLINE_EXCEEDED itself when the
//! deadline passes with no answer (a request body that never arrives, say):
//! tonic's own timer, just outside our layers, would end the call as CANCELLED,
//! which a proxy or a client without a timer of its own reports as the wrong
//! thing. Ours fires a moment before tonic's and tonic polls the call first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::error::ApiError;
use crate::transport::metadata::GRPC_TIMEOUT;
use crate::transport::request_context::{RequestId, request_id_of};
use crate::transport::status::to_status;

tokio::task_local! {
    static CALL_DEADLINE: Instant;
}

/// How much earlier than the caller's deadline the backend gives up.
const MARGIN: Duration = Duration::from_millis(10);

/// How much earlier than the caller's deadline the gRPC face answers
/// DEADLINE_EXCEEDED: tonic's timer started a moment before ours, and timers
/// fire by the millisecond.
const ANSWER_MARGIN: Duration = Duration::from_millis(1);

/// Time left before the running call's deadline, if its caller set one.
pub fn remaining() -> Option<Duration> {
    CALL_DEADLINE
        .try_with(|deadline| deadline.saturating_duration_since(Instant::now()))
        .ok()
}

/// A `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The `grpc-timeout` of a request, when it has a valid one.
fn timeout_of<B>(request: &Request<B>) -> Option<Duration> {
    request
        .headers()
        .get(GRPC_TIMEOUT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// What a face answers by itself once a call's deadline has passed.
pub trait DeadlineAnswer: Sized {
    /// The answer, or None to let the call run on (the backend's own
    /// deadline error will end it): then no timer is set at all.
    const ANSWER: Option<fn(Expired) -> Self>;
}

/// gRPC: DEADLINE_EXCEEDED, ahead of tonic's CANCELLED.
impl DeadlineAnswer for Response<tonic::body::Body> {
    const ANSWER: Option<fn(Expired) -> Self> = Some(|expired| {
        let timeout = expired.timeout;
        let err = ApiError::DeadlineExceeded(format!(
            "the call's deadline (grpc-timeout {timeout:?}) passed before it was answered"
        ));
        to_status(err, expired.request_id.as_ref()).into_http()
    });
}

/// REST: its in-process calls have no timer of tonic's; the backend ends them.
impl DeadlineAnswer for Response<http_body_util::Full<bytes::Bytes>> {
    const ANSWER: Option<fn(Expired) -> Self> = None;
}

/// Runs each call with its `grpc-timeout` deadline visible to [`remaining`],
/// and answers it as [`DeadlineAnswer`] says once the deadline has passed.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

layer_of!(DeadlineLayer => Deadline {  });

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>>,
    S::Response: DeadlineAnswer,
{
    wrapping!(WithDeadline<S::Future>);

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(timeout) = timeout_of(&request) else {
            return WithDeadline::Plain {
                future: self.inner.call(request),
            };
        };
        let now = Instant::now();
        // A timer only for a face that answers a passed deadline itself.
        let answers = S::Response::ANSWER.is_some();
        let expired = answers.then(|| Expired {
            timeout,
            request_id: request_id_of(request.extensions()).cloned(),
        });
        let expiry =
            answers.then(|| tokio::time::sleep_until(now + timeout.saturating_sub(ANSWER_MARGIN)));
        WithDeadline::Scoped {
            future: CALL_DEADLINE.scope(
                now + timeout.saturating_sub(MARGIN),
                self.inner.call(request),
            ),
            expiry,
            expired,
        }
    }
}

/// What the answer to a call whose deadline passed is made of, made only then.
#[derive(Debug)]
pub struct Expired {
    pub timeout: Duration,
    pub request_id: Option<RequestId>,
}

pin_project! {
    /// A call's future, with its deadline in scope and raced against it when it has one.
    #[project = WithDeadlineProjection]
    pub enum WithDeadline<F: Future> {
        Scoped {
            #[pin] future: TaskLocalFuture<Instant, F>,
            // Both set when the face answers a passed deadline itself;
            // `expired` is taken when the answer is made.
            #[pin] expiry: Option<Sleep>,
            expired: Option<Expired>,
        },
        Plain { #[pin] future: F },
    }
}

impl<F, R, E> Future for WithDeadline<F>
where
    F: Future<Output = Result<R, E>>,
    R: DeadlineAnswer,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            WithDeadlineProjection::Scoped {
                future,
                expiry,
                expired,
            } => {
                if let Poll::Ready(answer) = future.poll(cx) {
                    return Poll::Ready(answer);
                }
                // No timer (this face lets the call run on), or answered already.
                let (Some(expiry), Some(answer)) = (expiry.as_pin_mut(), R::ANSWER) else {
                    return Poll::Pending;
                };
                std::task::ready!(expiry.poll(cx));
                match expired.take() {
                    Some(expired) => Poll::Ready(Ok(answer(expired))),
                    None => Poll::Pending,
                }
            }
            WithDeadlineProjection::Plain { future } => future.poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_by_unit() {
        assert_eq!(parse_grpc_timeout("300m"), Some(Duration::from_millis(300)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
