//! List answered from the stored encodings (`service::ImagePage` on the
//! gRPC face): for many requests of both APIs, the bytes the served route
//! sends are the bytes a generated server would make for the same request
//! (the page decoded, prost encoding the response); and the in-memory
//! backend's encoded pages are slices of its storage through every wrapper.

use crate::list_support;

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use image_service::domain::ImageId;
use image_service::error::ApiError;
use image_service::grpc;
use image_service::proto::{compute, container_registry};
use image_service::service::{ComputeImages, ContainerImages, ImageApi};
use image_service::store::catalog::Catalog;
use image_service::store::{
    Compute, ComputeImageRepository, Container, ContainerImageRepository, MemoryRepository,
    Repositories, SwappableRepository,
};
use image_service::transport::status::to_status;
use list_support::{
    BIG_FOLDER, FOLDER_A, REGISTRY_1, REGISTRY_2, big_compute_catalog, compute_list,
    container_catalog,
};
use prost::Message;
use tower::ServiceExt;

const MAX_REQUEST: usize = 1 << 20;
const COMPUTE_LIST: &str = "/yandex.cloud.compute.v1.ImageService/List";
const REGISTRY_LIST: &str = "/yandex.cloud.containerregistry.v1.ImageService/List";

/// What a unary call answered: the response message's bytes, or the status.
#[derive(Debug, PartialEq)]
enum Answer {
    Ok(Vec<u8>),
    Err(tonic::Code, String),
}

/// Calls the served route (the service `serve` adds to its routes) in-process
/// with `request` framed as gRPC, and reads the reply's bytes.
async fn served<S>(service: S, path: &str, request: &impl Message) -> Answer
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        >,
{
    let payload = request.encode_to_vec();
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&[0]);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&payload);
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(frame.freeze())))
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let status = |name: &str| {
        trailers
            .get(name)
            .or_else(|| headers.get(name))
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let code = status("grpc-status").expect("a grpc-status");
    let mut body = collected.to_bytes();
    if code != "0" {
        let message = status("grpc-message").unwrap_or_default();
        let message = percent_decode(&message);
        return Answer::Err(tonic::Code::from(code.parse::<i32>().unwrap()), message);
    }
    assert_eq!(body.get_u8(), 0, "an uncompressed frame");
    let len = body.get_u32() as usize;
    assert_eq!(body.len(), len, "one frame");
    Answer::Ok(body.to_vec())
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// What the generated path answers: the trait method, its response encoded by prost.
fn refused(err: ApiError) -> Answer {
    let status = to_status(err, None);
    Answer::Err(status.code(), status.message().to_owned())
}

/// The List as a generated server would answer it, worked out the plain way:
/// the store's page decoded into the API's images `I`, put into its generated
/// `ListImagesResponse` by `response` and encoded by prost.
async fn generated<A: ImageApi, I: Message + Default>(
    store: &A::Store,
    request: A::ListRequest,
    response: fn(Vec<I>, String) -> Vec<u8>,
) -> Answer {
    let list = match A::parse_list(request) {
        Ok(list) => list,
        Err(err) => return refused(err),
    };
    let page = match A::list_encoded(store, &list).await {
        Ok(page) => page,
        Err(err) => return refused(err.into()),
    };
    let next_page_token = match &page.continues_after {
        Some(last) => list.next_page_token(last).unwrap(),
        None => String::new(),
    };
    let images = page
        .items
        .iter()
        .map(|bytes| I::decode(bytes.clone()).unwrap())
        .collect();
    Answer::Ok(response(images, next_page_token))
}

fn compute_request(filter: &str, order_by: &str, page_size: i64) -> compute::ListImagesRequest {
    compute::ListImagesRequest {
        folder_id: BIG_FOLDER.into(),
        page_size,
        page_token: String::new(),
        filter: filter.into(),
        order_by: order_by.into(),
    }
}

fn compute_repositories() -> Repositories {
    list_support::repositories(Catalog {
        compute_images: compute_list(big_compute_catalog()),
        ..Catalog::default()
    })
}

/// Compares both paths on `request` and on the pages after it (at most
/// `pages`), checking each answer decodes to the same response too; returns
/// how many pages were compared.
async fn compare_compute(
    repository: Arc<dyn ComputeImageRepository>,
    mut request: compute::ListImagesRequest,
    pages: usize,
) -> usize {
    let new = grpc::compute::server(
        Arc::new(ComputeImages::new(repository.clone(), None)),
        None,
        MAX_REQUEST,
    );
    for page in 1..=pages {
        let expected =
            generated::<Compute, _>(repository.as_ref(), request.clone(), |images, token| {
                compute::ListImagesResponse {
                    images,
                    next_page_token: token,
                }
                .encode_to_vec()
            })
            .await;
        let answer = served(new.clone(), COMPUTE_LIST, &request).await;
        assert_eq!(answer, expected, "{request:?}");
        let Answer::Ok(bytes) = answer else {
            return page;
        };
        let Answer::Ok(expected) = expected else {
            unreachable!()
        };
        let decoded = compute::ListImagesResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            decoded,
            compute::ListImagesResponse::decode(expected.as_slice()).unwrap()
        );
        if decoded.next_page_token.is_empty() {
            return page;
        }
        request.page_token = decoded.next_page_token;
    }
    pages
}

async fn compare_registry(
    repository: Arc<dyn ContainerImageRepository>,
    mut request: container_registry::ListImagesRequest,
    pages: usize,
) -> usize {
    let new = grpc::container_registry::server(
        Arc::new(ContainerImages::new(repository.clone(), None)),
        None,
        MAX_REQUEST,
    );
    for page in 1..=pages {
        let expected =
            generated::<Container, _>(repository.as_ref(), request.clone(), |images, token| {
                container_registry::ListImagesResponse {
                    images,
                    next_page_token: token,
                }
                .encode_to_vec()
            })
            .await;
        let answer = served(new.clone(), REGISTRY_LIST, &request).await;
        assert_eq!(answer, expected, "{request:?}");
        let Answer::Ok(bytes) = answer else {
            return page;
        };
        let Answer::Ok(expected) = expected else {
            unreachable!()
        };
        let decoded = container_registry::ListImagesResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            decoded,
            container_registry::ListImagesResponse::decode(expected.as_slice()).unwrap()
        );
        if decoded.next_page_token.is_empty() {
            return page;
        }
        request.page_token = decoded.next_page_token;
    }
    pages
}

#[tokio::test]
async fn compute_pages_are_the_bytes_of_the_generated_path() {
    let repository = compute_repositories().compute;
    // (filter, order_by, page size, pages to compare): first pages, middle pages
    // through tokens, filters (walked and from the indexes), every order.
    let cases = [
        ("", "", 0, 3),
        ("", "", 100, 2),
        ("", "name desc", 7, 5),
        ("", "createdAt desc", 250, 13),
        ("status = READY", "createdAt", 50, 4),
        (
            r#"family IN ("debian-12", "app-base") AND status != ERROR"#,
            "id desc",
            40,
            5,
        ),
        (r#"name = "img-031""#, "", 1, 10),
        ("family = \"\"", "name", 1000, 2),
        (r#"id = "nope""#, "", 0, 1),
    ];
    for (filter, order_by, size, pages) in cases {
        let compared = compare_compute(
            repository.clone(),
            compute_request(filter, order_by, size),
            pages,
        )
        .await;
        assert!(compared >= 1);
    }
    // An empty folder, a folder of another catalog: empty lists, no token.
    let mut empty = compute_request("", "", 0);
    empty.folder_id = "b1gnothinghere".into();
    assert_eq!(compare_compute(repository.clone(), empty, 1).await, 1);
    // Refusals map the same way: a bad filter, a token of another query.
    assert_eq!(
        compare_compute(repository.clone(), compute_request("size = 1", "", 0), 1).await,
        1
    );
    let first = ComputeImages::new(repository.clone(), None)
        .list(None, compute_request("", "", 10))
        .await
        .unwrap();
    let mut other = compute_request("", "name", 10);
    other.page_token = first.next_page_token;
    assert_eq!(compare_compute(repository.clone(), other, 1).await, 1);
    // The whole folder, page by page, the last page included.
    assert_eq!(
        compare_compute(repository, compute_request("", "name", 400), 100).await,
        8
    );
}

#[tokio::test]
async fn registry_pages_are_the_bytes_of_the_generated_path() {
    let repository = list_support::repositories(container_catalog()).container;
    let request = |registry: &str, repository: &str, folder: &str, filter: &str, order: &str| {
        container_registry::ListImagesRequest {
            registry_id: registry.into(),
            repository_name: repository.into(),
            folder_id: folder.into(),
            page_size: 30,
            page_token: String::new(),
            filter: filter.into(),
            order_by: order.into(),
        }
    };
    let app = format!("{REGISTRY_1}/app");
    let cases = [
        request(REGISTRY_1, "", "", "", ""),
        request("", &app, "", "", "created_at desc"),
        request("", "", FOLDER_A, "", "name, created_at desc"),
        request(
            "",
            "",
            FOLDER_A,
            &format!("name = \"{app}\""),
            "digest desc",
        ),
        request(REGISTRY_2, "", "", "", "digest, name desc, created_at"),
        // Empty: an unknown registry, a folder without registries.
        request("crpnothinghere", "", "", "", ""),
        request("", "", "b1gnothinghere", "", ""),
        // Refused: no scope, a filter on another field.
        request("", "", "", "", ""),
        request(REGISTRY_1, "", "", "digest = \"x\"", ""),
    ];
    for case in cases {
        assert!(compare_registry(repository.clone(), case, 20).await >= 1);
    }
}

#[tokio::test]
async fn the_served_list_takes_the_encoded_path_through_wrappers() {
    let memory = || {
        MemoryRepository::new(Catalog {
            compute_images: compute_list(big_compute_catalog()),
            ..Catalog::default()
        })
    };
    // Swapped in and out: the wrapper passes the List on to the catalog in force.
    let swappable = SwappableRepository::new(memory());
    swappable.swap(memory());
    let server = grpc::compute::server(
        Arc::new(ComputeImages::new(Arc::new(swappable), None)),
        None,
        MAX_REQUEST,
    );
    let answer = served(server, COMPUTE_LIST, &compute_request("", "", 0)).await;
    let Answer::Ok(bytes) = answer else {
        panic!("{answer:?}")
    };
    let page = compute::ListImagesResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(page.images.len(), 100);
    assert!(!page.next_page_token.is_empty());
}

#[tokio::test]
async fn memory_pages_are_slices_of_the_stored_images() {
    // Through the reload wrapper, as `serve` builds it: each image of a page is
    // the stored encoding (the very bytes Get sends), not a copy made by the
    // trait's default.
    let repositories = Repositories::swappable(Arc::new(SwappableRepository::new(
        MemoryRepository::new(Catalog {
            compute_images: compute_list(big_compute_catalog()),
            ..container_catalog()
        }),
    )));
    let list =
        image_service::domain::compute::ListComputeImages::parse(compute_request("", "name", 0))
            .unwrap();
    let page = repositories
        .compute
        .list_compute_images_encoded(&list.query, &list.page)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 100);
    assert!(page.continues_after.is_some());
    for item in &page.items {
        let id = compute::Image::decode(item.clone()).unwrap().id;
        let stored: Bytes = repositories
            .compute
            .get_compute_image_encoded(&ImageId::parse("id", id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.as_ptr(), stored.as_ptr(), "a slice of the stored list");
        assert_eq!(item, &stored);
    }
    let list = image_service::domain::container::ListContainerImages::parse(
        container_registry::ListImagesRequest {
            registry_id: REGISTRY_1.into(),
            ..Default::default()
        },
    )
    .unwrap();
    let page = repositories
        .container
        .list_container_images_encoded(&list.query, &list.page)
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    for item in &page.items {
        let id = container_registry::Image::decode(item.clone()).unwrap().id;
        let stored = repositories
            .container
            .get_container_image_encoded(&ImageId::parse("id", id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.as_ptr(), stored.as_ptr(), "a slice of the stored list");
    }
}
