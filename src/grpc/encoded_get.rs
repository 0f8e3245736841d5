//! Get answered with the image as the catalog stores it: protobuf bytes, sent
//! as they are. The generated server would have the backend decode the image
//! into a struct only for tonic to encode it again, per call; for a 50-layer
//! container image that round trip was a fifth of the server's CPU time.
//!
//! [`EncodedGet`] wraps a generated `ImageServiceServer`: the Get path goes to
//! the same validation and error mapping as the trait method (`get_image`),
//! with a lookup that returns bytes; every other path goes to the generated
//! server unchanged.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};
use prost::{DecodeError, Message};
use tonic::codegen::Body;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower::Service;

use super::{caller, get_image, request_id, status};
use crate::auth::Caller;
use crate::domain::ImageId;
use crate::error::ApiError;
use crate::grpc::request_context::RequestId;
use crate::repository::RepositoryError;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an [`EncodedLookup`] found, with the id it was given back.
pub type EncodedFound = (ImageId, Result<Option<Bytes>, RepositoryError>);

/// Finds an image's encoding by id.
pub type EncodedLookup = Arc<dyn Fn(ImageId) -> BoxFuture<EncodedFound> + Send + Sync + 'static>;

/// Finds the folder of an image from its encoding, for authorization.
pub type EncodedFolder = Arc<
    dyn Fn(Bytes) -> BoxFuture<Result<Option<String>, RepositoryError>> + Send + Sync + 'static,
>;

/// A message already encoded: prost writes its bytes as they are, so tonic's
/// own codec frames it like any other message.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct EncodedMessage(pub Bytes);

impl Message for EncodedMessage {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
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
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// A generated ImageService server whose Get (at `path`) is answered from
/// the backend's stored encoding. `Req` is that API's `GetImageRequest`.
pub struct EncodedGet<S, Req> {
    inner: S,
    path: &'static str,
    image_id: fn(Req) -> String,
    lookup: EncodedLookup,
    folder_of: EncodedFolder,
    /// Largest request message decoded (the generated server's limit too).
    max_request_size: usize,
    _request: PhantomData<fn(Req)>,
}

impl<S, Req> EncodedGet<S, Req> {
    pub fn new(
        inner: S,
        path: &'static str,
        image_id: fn(Req) -> String,
        lookup: EncodedLookup,
        folder_of: EncodedFolder,
        max_request_size: usize,
    ) -> Self {
        Self {
            inner,
            path,
            image_id,
            lookup,
            folder_of,
            max_request_size,
            _request: PhantomData,
        }
    }
}

impl<S, Req: Message + Default + 'static> EncodedGet<S, Req> {
    /// The gRPC path of the Get this serves.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The same Get for the REST gateway, which has the request message encoded
    /// and the caller authenticated already: no gRPC framing or routing between.
    pub fn direct(&self) -> DirectGet {
        let image_id = self.image_id;
        DirectGet {
            image_id: Arc::new(move |payload| Ok(image_id(Req::decode(payload)?))),
            lookup: self.lookup.clone(),
            folder_of: self.folder_of.clone(),
        }
    }
}

/// Decodes a `GetImageRequest` and takes its `image_id`.
type ImageIdReader = Arc<dyn Fn(&[u8]) -> Result<String, DecodeError> + Send + Sync>;

/// An API's Get as a plain async call: encoded request in, stored image bytes
/// out, through the very validation, lookup, authorization and error mapping
/// of the gRPC Get ([`get_image`] with the same lookup and folder reader).
#[derive(Clone)]
pub struct DirectGet {
    image_id: ImageIdReader,
    lookup: EncodedLookup,
    folder_of: EncodedFolder,
}

impl DirectGet {
    /// `payload` is an encoded `GetImageRequest`; `caller` is who the
    /// authentication step let in (none when authentication is off).
    pub async fn call(
        &self,
        request_id: Option<RequestId>,
        caller: Option<Arc<Caller>>,
        payload: &[u8],
    ) -> Result<Bytes, Status> {
        let raw_id = (self.image_id)(payload).map_err(|err| {
            status::to_status(
                ApiError::invalid_argument("body", format!("not a GetImageRequest: {err}")),
                request_id.as_ref(),
            )
        })?;
        let response = get_image(
            request_id,
            caller,
            raw_id,
            |id| (self.lookup)(id),
            |bytes: &Bytes| (self.folder_of)(bytes.clone()),
        )
        .await?;
        Ok(response.into_inner())
    }
}

impl<S: Clone, Req> Clone for EncodedGet<S, Req> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            path: self.path,
            image_id: self.image_id,
            lookup: self.lookup.clone(),
            folder_of: self.folder_of.clone(),
            max_request_size: self.max_request_size,
            _request: PhantomData,
        }
    }
}

impl<S: NamedService, Req> NamedService for EncodedGet<S, Req> {
    const NAME: &'static str = S::NAME;
}

impl<S, Req, B> Service<http::Request<B>> for EncodedGet<S, Req>
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
        // Only a call the authentication layer let in needs the folder.
        let authenticated = request.extensions().get::<Arc<Caller>>().is_some();
        let folder_of = authenticated.then(|| self.folder_of.clone());
        let method = GetMethod {
            image_id: self.image_id,
            lookup: self.lookup.clone(),
            folder_of,
        };
        let max_request_size = self.max_request_size;
        Box::pin(async move {
            // As the generated server: no compression, the same size limit.
            let mut grpc = Grpc::new(tonic_prost::ProstCodec::<EncodedMessage, Req>::default())
                .max_decoding_message_size(max_request_size);
            Ok(grpc.unary(method, request).await)
        })
    }
}

struct GetMethod<Req> {
    image_id: fn(Req) -> String,
    lookup: EncodedLookup,
    folder_of: Option<EncodedFolder>,
}

impl<Req: Send + 'static> UnaryService<Req> for GetMethod<Req> {
    type Response = EncodedMessage;
    type Future = BoxFuture<Result<Response<EncodedMessage>, Status>>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        let (image_id, lookup, folder_of) =
            (self.image_id, self.lookup.clone(), self.folder_of.clone());
        Box::pin(async move {
            let request_id = request_id(&request);
            let caller = caller(&request);
            let raw_id = image_id(request.into_inner());
            let response = get_image(
                request_id,
                caller,
                raw_id,
                |id| lookup(id),
                |bytes: &Bytes| match folder_of {
                    Some(folder_of) => folder_of(bytes.clone()),
                    // Not reached: without a caller there is no folder check.
                    None => Box::pin(std::future::ready(Ok(None))),
                },
            )
            .await?;
            Ok(response.map(EncodedMessage))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::compute::Image;

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
