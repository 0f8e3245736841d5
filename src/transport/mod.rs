//! Below both faces and knowing no API: what every call passes through on its
//! way in and out (request ids and spans, deadlines, the in-flight limit,
//! oversize requests, idle connections, error headers), authentication, TLS
//! and the HTTP listener.

/// `impl Layer` for a layer whose service is the inner one plus copies of
/// the listed fields of the layer.
macro_rules! layer_of {
    ($layer:ident => $service:ident { $($field:ident),* }) => {
        impl<S> tower::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> $service<S> {
                $service {
                    inner,
                    $($field: self.$field.clone(),)*
                }
            }
        }
    };
}

/// The head of a wrapping service's `impl Service`: the inner service's
/// response and error, the future given, and readiness passed on.
macro_rules! wrapping {
    ($future:ty) => {
        type Response = S::Response;
        type Error = S::Error;
        type Future = $future;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            self.inner.poll_ready(cx)
        }
    };
}

pub mod auth;
pub mod deadline;
pub mod error_headers;
pub mod http_face;
pub mod http_server;
pub mod idle;
pub mod limits;
pub mod metadata;
pub mod request_context;
pub mod status;
pub mod tls;
pub mod trace_context;
