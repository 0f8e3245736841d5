//! List answered with the page's images as the catalog stores them: the
//! response is written by putting, per image, the tag of `images` (field 1),
//! the length and the stored protobuf bytes one after the other, then
//! `next_page_token` (field 2). The generated server would have the backend
//! decode the page's images into structs only for tonic to encode them again;
//! for a page of 100 that round trip was most of the call's CPU time.
//!
//! [`EncodedList`] wraps a generated `ImageService` server (or one already
//! wrapped by [`super::EncodedGet`]): the List path goes to a handler that
//! parses, authorizes, pages and maps errors as the trait method (`list`) does
//! (the two share those steps), with a backend call that returns bytes; every
//! other path goes to the wrapped server unchanged.

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
use tonic::codegen::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower::Service;

use crate::domain::page::ListRequest;
use crate::error::ApiError;
use crate::repository::EncodedPage;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The field number of `images` in both APIs' `ListImagesResponse`.
const IMAGES: u32 = 1;
/// The field number of `next_page_token` in both APIs' `ListImagesResponse`.
const NEXT_PAGE_TOKEN: u32 = 2;

/// A `ListImagesResponse` of either API whose images are already encoded:
/// prost writes each as the generated message would write the decoded image
/// (tag, length, the image's bytes), so the bytes on the wire are the same.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedListResponse {
    /// Each image's protobuf encoding, in the page's order.
    pub images: Vec<Bytes>,
    pub next_page_token: String,
}

impl EncodedListResponse {
    /// The response to `list` for a page the backend found.
    pub fn new<Q>(list: &ListRequest<Q>, page: EncodedPage) -> Result<Self, ApiError> {
        let next_page_token = match &page.continues_after {
            Some(last_id) => list.next_page_token(last_id)?,
            None => String::new(),
        };
        Ok(Self {
            images: page.items,
            next_page_token,
        })
    }
}

impl Message for EncodedListResponse {
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

    // Only ever encoded (it is a response); decoding skips every field.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

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

/// Answers a List request (with the request context's extensions: request id,
/// caller) with an encoded page, or the status to send.
pub type EncodedListHandler<Req> = Arc<
    dyn Fn(Request<Req>) -> BoxFuture<Result<Response<EncodedListResponse>, Status>>
        + Send
        + Sync
        + 'static,
>;

/// A generated ImageService server whose List (at `path`) is answered with
/// the backend's stored encodings. `Req` is that API's `ListImagesRequest`.
pub struct EncodedList<S, Req> {
    inner: S,
    path: &'static str,
    handler: EncodedListHandler<Req>,
    /// Largest request message decoded (the generated server's limit too).
    max_request_size: usize,
    _request: PhantomData<fn(Req)>,
}

impl<S, Req> EncodedList<S, Req> {
    /// The service it wraps (whose other calls it passes on).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn new(
        inner: S,
        path: &'static str,
        handler: EncodedListHandler<Req>,
        max_request_size: usize,
    ) -> Self {
        Self {
            inner,
            path,
            handler,
            max_request_size,
            _request: PhantomData,
        }
    }
}

impl<S: Clone, Req> Clone for EncodedList<S, Req> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            path: self.path,
            handler: self.handler.clone(),
            max_request_size: self.max_request_size,
            _request: PhantomData,
        }
    }
}

impl<S: NamedService, Req> NamedService for EncodedList<S, Req> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, B> Service<http::Request<B>> for EncodedList<S, Req>
where
    S: Service<
            http::Request<B>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
            Future = BoxFuture<Result<http::Response<tonic::body::Body>, Infallible>>,
        >,
    Req: Message + Default + Send + 'static,
    B: Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != self.path {
            return self.inner.call(request);
        }
        let method = ListMethod {
            handler: self.handler.clone(),
        };
        let max_request_size = self.max_request_size;
        Box::pin(async move {
            // As the generated server: no compression, the same size limit.
            let mut grpc =
                Grpc::new(tonic_prost::ProstCodec::<EncodedListResponse, Req>::default())
                    .max_decoding_message_size(max_request_size);
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct ListMethod<Req> {
    handler: EncodedListHandler<Req>,
}

impl<Req: Send + 'static> UnaryService<Req> for ListMethod<Req> {
    type Response = EncodedListResponse;
    type Future = BoxFuture<Result<Response<EncodedListResponse>, Status>>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.handler)(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
                let encoded = EncodedListResponse {
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
        let encoded = EncodedListResponse {
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
            let encoded = EncodedListResponse {
                images: vec![Bytes::from(image.encode_to_vec())],
                next_page_token: String::new(),
            };
            assert_eq!(encoded.encoded_len(), generated.encoded_len(), "{len}");
            assert_eq!(encoded.encode_to_vec(), generated.encode_to_vec(), "{len}");
        }
    }
}
