//! Server-side cost of List and GetLatestByFamily on a big catalog, measured
//! in-process through the service handlers (parse, token, backend, the clone
//! into the response). It prints timings and asserts none: machines differ.
//!
//! `cargo test --release --test list_timing -- --ignored --nocapture`

use std::sync::Arc;
use std::time::{Duration, Instant};

use image_service::proto::Timestamp;
use image_service::proto::compute::image::Status as ImageStatus;
use image_service::proto::compute::{GetImageLatestByFamilyRequest, Image, ListImagesRequest};
use image_service::service::{ComputeImages, ImagePage};
use image_service::store::MemoryRepository;
use image_service::store::catalog::{Catalog, ImageList};

const FOLDER: &str = "b1gtimingf0lder00000";
const IMAGES: u32 = 100_000;
/// Every tenth image is of this family: 10,000 of them.
const FAMILY: &str = "big-family";

fn catalog() -> Catalog {
    let compute_images = (0..IMAGES + 20_000)
        .map(|i| Image {
            id: format!("fd8{:07}t{:010}", (i * 7919) % 10_000_000, i),
            folder_id: if i < IMAGES {
                FOLDER.into()
            } else {
                format!("b1gother{:012}", i % 7)
            },
            name: format!("image-{:05}", (i * 31) % 50_000),
            description: "an image with a few fields set, like a real one".into(),
            family: if i % 10 == 0 {
                FAMILY.into()
            } else {
                format!("family-{}", i % 97)
            },
            labels: [
                ("team".to_owned(), "platform".to_owned()),
                ("env".to_owned(), format!("e{}", i % 3)),
            ]
            .into(),
            storage_size: 7_516_192_768,
            min_disk_size: 8_589_934_592,
            size: 4_294_967_296,
            product_ids: vec!["f2e92vk502tr9qfs41e6".into()],
            status: if i % 9 == 0 {
                ImageStatus::Creating
            } else {
                ImageStatus::Ready
            } as i32,
            created_at: Some(Timestamp {
                seconds: 1_700_000_000 + i64::from((i * 104_729) % 5_000_000),
                nanos: 0,
            }),
            ..Default::default()
        })
        .collect::<Vec<Image>>();
    Catalog {
        compute_images: ImageList::from_images(compute_images, |i| &i.id).expect("unique ids"),
        ..Catalog::default()
    }
}

async fn list(service: &ComputeImages, request: ListImagesRequest) -> ImagePage {
    service.list(None, request).await.expect("a page")
}

/// The median time of `runs` calls of `call`.
async fn median<F, Fut>(runs: usize, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[runs / 2]
}

#[tokio::test]
#[ignore = "a measurement, not a check: run with --release --ignored --nocapture"]
async fn list_and_latest_on_a_folder_of_100000_images() {
    let started = Instant::now();
    let service = ComputeImages::new(Arc::new(MemoryRepository::new(catalog())), None);
    println!(
        "indexing {} images: {:?}",
        IMAGES + 20_000,
        started.elapsed()
    );

    for (order_by, filter) in [
        ("", ""),
        ("name desc", ""),
        ("createdAt desc", ""),
        ("createdAt desc", "status = READY"),
        ("name", r#"family = "big-family""#),
        ("", r#"status = "DELETING""#),
        // Few or no matches: what the walk costs when the filter rejects nearly everything.
        ("", r#"name = "image-00007""#),
        ("createdAt desc", r#"name = "no-such-image""#),
        (
            "",
            r#"id IN ("fd80000000t0000000000", "fd80007919t0000000001")"#,
        ),
    ] {
        let request = |page_token: String| ListImagesRequest {
            folder_id: FOLDER.into(),
            page_size: 100,
            page_token,
            filter: filter.into(),
            order_by: order_by.into(),
        };
        // Walk to page 1,000 (or the last page) to get a deep token.
        let mut token = String::new();
        let mut deep = (String::new(), 1);
        for page in 1..=1000 {
            let response = list(&service, request(token.clone())).await;
            if page == 1000 || response.next_page_token.is_empty() {
                deep = (token, page);
                break;
            }
            token = response.next_page_token;
        }
        let matched = list(&service, request(String::new())).await.images.len();
        let first = median(201, || async {
            list(&service, request(String::new())).await;
        })
        .await;
        let later = median(201, || async {
            list(&service, request(deep.0.clone())).await;
        })
        .await;
        println!(
            "List page_size 100, order_by {order_by:?}, filter {filter:?}: page 1 ({matched} images) {first:?}, page {} {later:?}",
            deep.1
        );
    }

    let latest = median(1001, || async {
        let image = service
            .get_latest_by_family(
                None,
                GetImageLatestByFamilyRequest {
                    folder_id: FOLDER.into(),
                    family: FAMILY.into(),
                },
            )
            .await
            .expect("the latest image");
        assert_eq!(image.family, FAMILY);
    })
    .await;
    println!("GetLatestByFamily in a family of 10000: {latest:?}");
}
