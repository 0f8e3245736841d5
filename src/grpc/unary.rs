//! The one mechanism every method of our ImageServices is served by: a
//! [`Served`] service routes each path to a [`Method`] made by [`unary`], which
//! decodes the request, runs the handler and encodes its answer with tonic's
//! own codec (no compression, the size limit of the generated servers).
//!
//! The generated servers would have the store decode each image into a
//! struct only for tonic to encode it again; answers here are whatever
//! `prost::Message` the handler returns, the stored encodings included
//! ([`EncodedMessage`], [`crate::service::ImagePage`]). A method the API
//! declares and no handler serves answers UNIMPLEMENTED, found from the
//! descriptors rather than listed by hand.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{
    DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len,
};
use prost::{DecodeError, Message};
use tonic::body::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower::Service;

use crate::service::{ImagePage, unimplemented};
use crate::transport::request_context::request_id_of;
use crate::transport::status::to_status;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type HttpAnswer = BoxFuture<Result<http::Response<Body>, Infallible>>;
type HttpHandler = Arc<dyn Fn(http::Request<Body>) -> HttpAnswer + Send + Sync>;

/// One method of a service: its gRPC path and what answers it.
pub struct Method {
    path: &'static str,
    handler: HttpHandler,
}

/// The method at `path`, answered by `handler`, with requests of at most
/// `max_request_size` bytes.
pub fn unary<Req, Resp, F, Fut>(path: &'static str, max_request_size: usize, handler: F) -> Method
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Send + 'static,
    F: Fn(Request<Req>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    let handler: HttpHandler = Arc::new(move |request: http::Request<Body>| {
        let method = Handler(handler.clone(), PhantomData);
        Box::pin(async move {
            let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default())
                .max_decoding_message_size(max_request_size);
            Ok(grpc.unary(method, request).await)
        })
    });
    Method { path, handler }
}

/// A handler as tonic's `UnaryService`, its future passed on as it is.
struct Handler<F, Req>(F, PhantomData<fn(Req)>);

impl<Req, Resp, F, Fut> UnaryService<Req> for Handler<F, Req>
where
    F: Fn(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>> + Send + 'static,
{
    type Response = Resp;
    type Future = Fut;

    fn call(&mut self, request: Request<Req>) -> Fut {
        (self.0)(request)
    }
}

/// A gRPC service named as `N` names it, answering its paths with `methods`.
pub struct Served<N> {
    methods: Arc<[Method]>,
    /// The paths the API declares without a method here.
    unserved: Arc<[String]>,
    _name: PhantomData<fn() -> N>,
}

impl<N: NamedService> Served<N> {
    pub fn new(methods: Vec<Method>) -> Self {
        let served = |path: &str| methods.iter().any(|m| m.path == path);
        let unserved = crate::proto::descriptor_pool()
            .ok()
            .and_then(|pool| pool.get_service_by_name(N::NAME))
            .map(|service| {
                service
                    .methods()
                    .map(|m| format!("/{}/{}", N::NAME, m.name()))
                    .filter(|path| !served(path))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            methods: methods.into(),
            unserved,
            _name: PhantomData,
        }
    }

    /// The gRPC paths of the methods served here.
    pub fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.methods.iter().map(|m| m.path)
    }
}

impl<N> Clone for Served<N> {
    fn clone(&self) -> Self {
        Self {
            methods: self.methods.clone(),
            unserved: self.unserved.clone(),
            _name: PhantomData,
        }
    }
}

impl<N: NamedService> NamedService for Served<N> {
    const NAME: &'static str = N::NAME;
}

impl<N> Service<http::Request<Body>> for Served<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = HttpAnswer;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> HttpAnswer {
        let path = request.uri().path();
        if let Some(method) = self.methods.iter().find(|m| m.path == path) {
            return (method.handler)(request);
        }
        let status = if self.unserved.iter().any(|p| p == path) {
            let err = unimplemented(path.trim_start_matches('/'));
            to_status(err, request_id_of(request.extensions()))
        } else {
            // As the generated servers answer a path they don't know.
            Status::unimplemented("")
        };
        Box::pin(std::future::ready(Ok(status.into_http())))
    }
}

/// The decoding half of a message that is only ever encoded (a response):
/// every field is skipped.
macro_rules! skip_decoding {
    () => {
        fn merge_field(
            &mut self,
            tag: u32,
            wire_type: WireType,
            buf: &mut impl Buf,
            ctx: DecodeContext,
        ) -> Result<(), DecodeError> {
            prost::encoding::skip_field(wire_type, tag, buf, ctx)
        }
    };
}

/// A message already encoded: prost writes its bytes as they are, so tonic's
/// own codec frames it like any other message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedMessage(pub Bytes);

impl Message for EncodedMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    skip_decoding!();

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// The field number of `images` in both APIs' `ListImagesResponse`.
const IMAGES: u32 = 1;
/// The field number of `next_page_token` in both APIs' `ListImagesResponse`.
const NEXT_PAGE_TOKEN: u32 = 2;

/// A page is written as the generated `ListImagesResponse` would write its
/// decoded images: per image the tag of `images`, the length and the stored
/// bytes, then `next_page_token`; the bytes on the wire are the same.
impl Message for ImagePage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for image in &self.images {
            encode_key(IMAGES, WireType::LengthDelimited, buf);
            encode_varint(image.len() as u64, buf);
            buf.put_slice(image);
        }
        if !self.next_page_token.is_empty() {
            prost::encoding::string::encode(NEXT_PAGE_TOKEN, &self.next_page_token, buf);
        }
    }

    skip_decoding!();

    fn encoded_len(&self) -> usize {
        let images: usize = self
            .images
            .iter()
            .map(|image| key_len(IMAGES) + encoded_len_varint(image.len() as u64) + image.len())
            .sum();
        let token = if self.next_page_token.is_empty() {
            0
        } else {
            prost::encoding::string::encoded_len(NEXT_PAGE_TOKEN, &self.next_page_token)
        };
        images + token
    }

    fn clear(&mut self) {
        self.images.clear();
        self.next_page_token.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::compute::Image;
    use crate::proto::{compute, container_registry};

    fn compute_image(id: &str) -> compute::Image {
        compute::Image {
            id: id.into(),
            name: "x".repeat(200),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            ..compute::Image::default()
        }
    }

    #[test]
    fn encodes_as_the_generated_response() {
        for token in ["", "AfxvZV-uJYikZmQ4ZTBpMDBtdjJiYTJyc2w1cmVaxpI4RhcN-g"] {
            for count in [0, 1, 3] {
                // Images around 127 bytes long test the length's second varint byte.
                let images: Vec<_> = (0..count)
                    .map(|i| compute_image(&format!("fd8{i}")))
                    .collect();
                let generated = compute::ListImagesResponse {
                    images: images.clone(),
                    next_page_token: token.into(),
                };
                let encoded = ImagePage {
                    images: images
                        .iter()
                        .map(|image| Bytes::from(image.encode_to_vec()))
                        .collect(),
                    next_page_token: token.into(),
                };
                assert_eq!(encoded.encoded_len(), generated.encoded_len());
                assert_eq!(encoded.encode_to_vec(), generated.encode_to_vec());
            }
        }
        let image = container_registry::Image {
            id: "crp1".into(),
            tags: vec!["latest".into()],
            ..Default::default()
        };
        let generated = container_registry::ListImagesResponse {
            images: vec![image.clone(), image.clone()],
            next_page_token: "t".into(),
        };
        let encoded = ImagePage {
            images: vec![Bytes::from(image.encode_to_vec()); 2],
            next_page_token: "t".into(),
        };
        assert_eq!(encoded.encode_to_vec(), generated.encode_to_vec());
        assert_eq!(
            container_registry::ListImagesResponse::decode(encoded.encode_to_vec().as_slice())
                .unwrap(),
            generated
        );
    }

    #[test]
    fn lengths_of_every_varint_size() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 70_000] {
            let image = compute::Image {
                id: "a".repeat(len),
                ..Default::default()
            };
            let generated = compute::ListImagesResponse {
                images: vec![image.clone()],
                next_page_token: String::new(),
            };
            let encoded = ImagePage {
                images: vec![Bytes::from(image.encode_to_vec())],
                next_page_token: String::new(),
            };
            assert_eq!(encoded.encoded_len(), generated.encoded_len(), "{len}");
            assert_eq!(encoded.encode_to_vec(), generated.encode_to_vec(), "{len}");
        }
    }

    #[test]
    fn an_encoded_message_encodes_to_its_bytes() {
        let image = Image {
            id: "fd8abc".into(),
            name: "x".into(),
            ..Image::default()
        };
        let bytes = Bytes::from(image.encode_to_vec());
        let message = EncodedMessage(bytes.clone());
        assert_eq!(message.encoded_len(), bytes.len());
        assert_eq!(message.encode_to_vec(), bytes.to_vec());
        // Decoding it as the image it holds gives the image back.
        assert_eq!(
            Image::decode(message.encode_to_vec().as_slice()).unwrap(),
            image
        );
    }
}
