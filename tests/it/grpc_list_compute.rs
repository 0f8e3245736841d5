//! compute ImageService.List and GetLatestByFamily over the network, with a
//! tonic client from our protos, against generated catalogs and the demo one.

use crate::common;
use crate::list_support;

use std::collections::HashSet;

use common::TestApp;
use image_service::proto::Timestamp;
use image_service::proto::compute::image::Status as ImageStatus;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{
    GetImageLatestByFamilyRequest, Image, ListImagesRequest, ListImagesResponse,
};
use image_service::store::catalog::Catalog;
use list_support::{
    AWKWARD_NAME, BIG_FOLDER, FAMILIES, assert_invalid, big_compute_catalog, compute_list,
    compute_reference, repositories,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

type Client = ImageServiceClient<Channel>;

async fn big_app() -> TestApp {
    TestApp::with_repositories(repositories(Catalog {
        compute_images: compute_list(big_compute_catalog()),
        ..Catalog::default()
    }))
    .await
}

fn list_request(folder: &str, filter: &str, order_by: &str, page_size: i64) -> ListImagesRequest {
    ListImagesRequest {
        folder_id: folder.into(),
        page_size,
        page_token: String::new(),
        filter: filter.into(),
        order_by: order_by.into(),
    }
}

async fn list(
    client: &mut Client,
    request: ListImagesRequest,
) -> Result<ListImagesResponse, Status> {
    client.list(request).await.map(tonic::Response::into_inner)
}

/// Every page of a query, checking each: full pages until the last, a token
/// within the API's 100 characters, and no token after the last.
async fn list_all(client: &mut Client, mut request: ListImagesRequest) -> Vec<Image> {
    let size = if request.page_size == 0 {
        100
    } else {
        request.page_size as usize
    };
    let mut images = Vec::new();
    for _ in 0..10_000 {
        let page = list(client, request.clone()).await.expect("a page");
        assert!(page.images.len() <= size);
        images.extend(page.images.iter().cloned());
        if page.next_page_token.is_empty() {
            return images;
        }
        assert_eq!(page.images.len(), size, "only the last page may be short");
        assert!(
            page.next_page_token.len() <= 100,
            "{}",
            page.next_page_token
        );
        request.page_token = page.next_page_token;
    }
    panic!("paging did not end");
}

fn ids(images: &[Image]) -> Vec<String> {
    images.iter().map(|i| i.id.clone()).collect()
}

fn assert_no_repeats(ids: &[String]) {
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an image came twice");
}

fn in_folder<'a>(
    catalog: &'a [Image],
    folder: &str,
    keep: impl Fn(&Image) -> bool,
) -> Vec<&'a Image> {
    catalog
        .iter()
        .filter(|i| i.folder_id == folder && keep(i))
        .collect()
}

#[tokio::test]
async fn pages_of_1_7_100_and_1000_cover_the_folder_exactly_once_in_id_order() {
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    let catalog = big_compute_catalog();
    let expected = compute_reference(&in_folder(&catalog, BIG_FOLDER, |_| true), "id", false);
    assert_eq!(expected.len(), 3000);

    for page_size in [1, 7, 0, 1000] {
        let got = list_all(&mut client, list_request(BIG_FOLDER, "", "", page_size)).await;
        let got_ids = ids(&got);
        assert_no_repeats(&got_ids);
        assert_eq!(got_ids, expected, "page_size {page_size}");
        // The images are the catalog's, field for field.
        if page_size == 1000 {
            for image in &got {
                assert_eq!(Some(image), catalog.iter().find(|c| c.id == image.id));
            }
        }
    }
    // A page of exactly the rest of the folder is the last one: no token, no empty page after it.
    let page = list(&mut client, list_request(BIG_FOLDER, "", "", 1000))
        .await
        .unwrap();
    assert_eq!(page.images.len(), 1000);
    assert!(!page.next_page_token.is_empty());
    let other = list(
        &mut client,
        list_request("b1gotherf0lder000000", "", "", 200),
    )
    .await
    .unwrap();
    assert_eq!(other.images.len(), 200);
    assert!(other.next_page_token.is_empty());
}

#[tokio::test]
async fn every_order_by_field_both_ways_ties_by_id() {
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    let catalog = big_compute_catalog();
    let folder = in_folder(&catalog, BIG_FOLDER, |_| true);
    for (order_by, field, desc) in [
        ("id", "id", false),
        ("id asc", "id", false),
        ("id desc", "id", true),
        ("name", "name", false),
        ("name DESC", "name", true),
        ("createdAt", "createdAt", false),
        ("createdAt desc", "createdAt", true),
        ("created_at desc", "createdAt", true),
        ("  created_at   Asc ", "createdAt", false),
    ] {
        let expected = compute_reference(&folder, field, desc);
        for page_size in [7, 1000] {
            let got = ids(&list_all(
                &mut client,
                list_request(BIG_FOLDER, "", order_by, page_size),
            )
            .await);
            assert_no_repeats(&got);
            assert_eq!(
                got, expected,
                "order_by {order_by:?}, page_size {page_size}"
            );
        }
    }
}

#[tokio::test]
async fn filters_of_each_operator() {
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    let catalog = big_compute_catalog();
    let some_ids: Vec<String> = catalog
        .iter()
        .filter(|i| i.folder_id == BIG_FOLDER)
        .step_by(97)
        .map(|i| i.id.clone())
        .collect();
    let ready = ImageStatus::Ready as i32;
    type Keep = Box<dyn Fn(&Image) -> bool>;
    let id0 = some_ids[0].clone();
    let (id1, id2) = (some_ids[1].clone(), some_ids[2].clone());
    let in_ids = some_ids.clone();
    let other_folder_id = catalog
        .iter()
        .find(|i| i.folder_id != BIG_FOLDER)
        .unwrap()
        .id
        .clone();
    let id3 = some_ids[3].clone();
    let id3_kept = id3.clone();
    let cases: Vec<(String, Keep)> = vec![
        (r#"name = "img-007""#.into(), Box::new(|i: &Image| i.name == "img-007")),
        (r#"name != 'img-007'"#.into(), Box::new(|i: &Image| i.name != "img-007")),
        ("name = img-007".into(), Box::new(|i: &Image| i.name == "img-007")),
        (r#"family IN ("debian-12", 'app-base')"#.into(), Box::new(|i: &Image| i.family == "debian-12" || i.family == "app-base")),
        (r#"family NOT IN ("debian-12")"#.into(), Box::new(|i: &Image| i.family != "debian-12")),
        // No family at all.
        (r#"family = """#.into(), Box::new(|i: &Image| i.family.is_empty())),
        (r#"status = "READY""#.into(), Box::new(move |i: &Image| i.status == ready)),
        ("status = READY".into(), Box::new(move |i: &Image| i.status == ready)),
        (r#"status NOT IN ("READY", "ERROR")"#.into(), Box::new(|i: &Image| i.status == ImageStatus::Creating as i32 || i.status == ImageStatus::Deleting as i32)),
        (r#"status != "DELETING""#.into(), Box::new(|i: &Image| i.status != ImageStatus::Deleting as i32)),
        (r#"status IN ("DELETING", "CREATING")"#.into(), Box::new(|i: &Image| i.status == ImageStatus::Creating as i32 || i.status == ImageStatus::Deleting as i32)),
        // An image of another folder named by id is still not in this folder.
        (format!(r#"id IN ("{other_folder_id}", "{id3}")"#), Box::new(move |i: &Image| i.id == id3_kept)),
        (format!(r#"id = "{id0}""#), Box::new(move |i: &Image| i.id == id0)),
        (format!(r#"id IN ("{id1}", "{id2}", "fd8nosuchimage")"#), Box::new(move |i: &Image| i.id == id1 || i.id == id2)),
        (format!("id NOT IN ({})", some_ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")), Box::new(move |i: &Image| !in_ids.contains(&i.id))),
        (
            r#"family = "app-base" AND status != "READY" and name IN ("img-012", "img-310", "img-600", "img-151")"#.into(),
            Box::new(move |i: &Image| i.family == "app-base" && i.status != ready && ["img-012", "img-310", "img-600", "img-151"].contains(&i.name.as_str())),
        ),
        // Every escape: the name is `it's "quoted"\back<TAB>slash`.
        (r#"name = 'it\'s \"quoted\"\\back\tslash'"#.into(), Box::new(|i: &Image| i.name == AWKWARD_NAME)),
        (r#"name = "it's \"quoted\"\\back\x09slash""#.into(), Box::new(|i: &Image| i.name == AWKWARD_NAME)),
        // Contradictions match nothing.
        (r#"name = "img-007" AND name = "img-008""#.into(), Box::new(|_: &Image| false)),
    ];
    for (filter, keep) in &cases {
        let matching = in_folder(&catalog, BIG_FOLDER, keep);
        assert!(
            !matching.is_empty() || filter.contains("img-008"),
            "{filter:?} matches nothing in the catalog: a weak case"
        );
        for (order_by, field, desc, page_size) in [
            ("", "id", false, 1000),
            ("createdAt desc", "createdAt", true, 7),
        ] {
            let expected = compute_reference(&matching, field, desc);
            let got = ids(&list_all(
                &mut client,
                list_request(BIG_FOLDER, filter, order_by, page_size),
            )
            .await);
            assert_eq!(got, expected, "filter {filter:?}, order_by {order_by:?}");
        }
    }
    // The awkward name is there to be found.
    let awkward = &cases
        .iter()
        .find(|(filter, _)| filter.starts_with("name = 'it"))
        .unwrap()
        .0;
    let found = list(&mut client, list_request(BIG_FOLDER, awkward, "", 0))
        .await
        .unwrap();
    assert_eq!(found.images.len(), 1);
}

#[tokio::test]
async fn invalid_list_requests_name_the_field() {
    let app = TestApp::demo().await;
    let mut client = Client::new(app.channel().await);
    let folder = "b1gdemo7f0lder2qk8vh";
    let cases: Vec<(ListImagesRequest, &str, &str)> = vec![
        (
            list_request("", "", "", 0),
            "folder_id",
            "required field is empty",
        ),
        (
            list_request(&"f".repeat(51), "", "", 0),
            "folder_id",
            "at most 50 characters",
        ),
        (
            list_request(folder, "", "", 1001),
            "page_size",
            "between 0 and 1000",
        ),
        (
            list_request(folder, "", "", -1),
            "page_size",
            "between 0 and 1000",
        ),
        (
            ListImagesRequest {
                page_token: "A".repeat(101),
                ..list_request(folder, "", "", 0)
            },
            "page_token",
            "at most 100 characters",
        ),
        (
            list_request(folder, &format!(r#"name = "{}""#, "x".repeat(1000)), "", 0),
            "filter",
            "at most 1000 characters",
        ),
        (
            list_request(folder, r#"name = "a" OR name = "b""#, "", 0),
            "filter",
            "syntax error at column 12: expected `AND` or the end of the filter",
        ),
        (
            list_request(folder, r#"name == "a""#, "", 0),
            "filter",
            "syntax error at column 7",
        ),
        (
            list_request(folder, r#"name = "a"#, "", 0),
            "filter",
            "no closing quote",
        ),
        (
            list_request(folder, r#"name = "a\q""#, "", 0),
            "filter",
            "syntax error at column 10: invalid escape sequence",
        ),
        (
            list_request(folder, r#"name = "a" AND labels.env = "prod""#, "", 0),
            "filter",
            "unknown field `labels.env` at column 16; you can filter on id, name, family, status",
        ),
        (
            list_request(folder, r#"status = "SHINY""#, "", 0),
            "filter",
            "unknown status \"SHINY\" at column 10",
        ),
        (
            list_request(folder, "", &"x".repeat(101), 0),
            "order_by",
            "at most 100 characters",
        ),
        (
            list_request(folder, "", "size", 0),
            "order_by",
            "unknown field `size` at column 1; you can order by id, name, createdAt",
        ),
        (
            list_request(folder, "", "name downwards", 0),
            "order_by",
            "unknown direction `downwards` at column 6; use asc or desc",
        ),
        (
            list_request(folder, "", "name, id", 0),
            "order_by",
            "only one field",
        ),
    ];
    for (request, field, text) in cases {
        let status = list(&mut client, request.clone())
            .await
            .expect_err(&format!("{request:?}"));
        assert_invalid(&status, field, text);
    }
    // Limits are inclusive.
    for request in [
        list_request(&"f".repeat(50), "", "", 1000),
        list_request(folder, &format!(r#"name = "{}""#, "x".repeat(991)), "", 0),
        list_request(folder, "", &format!("name{}", " ".repeat(96)), 0),
    ] {
        list(&mut client, request).await.unwrap();
    }
}

#[tokio::test]
async fn unknown_folder_is_an_empty_list() {
    let app = TestApp::demo().await;
    let mut client = Client::new(app.channel().await);
    let page = list(&mut client, list_request("b1gnosuchf0lder00000", "", "", 0))
        .await
        .unwrap();
    assert_eq!(page, ListImagesResponse::default());
}

#[tokio::test]
async fn page_tokens_continue_only_their_own_query() {
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    let first = list(
        &mut client,
        list_request(BIG_FOLDER, r#"family = "debian-12""#, "name desc", 5),
    )
    .await
    .unwrap();
    let token = first.next_page_token.clone();
    assert!(!token.is_empty());
    let with_token = |folder: &str, filter: &str, order_by: &str, page_size: i64, token: &str| {
        ListImagesRequest {
            page_token: token.to_owned(),
            ..list_request(folder, filter, order_by, page_size)
        }
    };

    // The same query, spelled differently or with another page size, continues.
    let second = list(
        &mut client,
        with_token(BIG_FOLDER, "family='debian-12'", "name DESC", 3, &token),
    )
    .await
    .unwrap();
    let both = list(
        &mut client,
        list_request(BIG_FOLDER, r#"family = "debian-12""#, "name desc", 8),
    )
    .await
    .unwrap();
    assert_eq!(
        ids(&both.images),
        [ids(&first.images), ids(&second.images)].concat()
    );

    // Another folder, filter or order: refused.
    for request in [
        with_token(
            "b1gotherf0lder000000",
            r#"family = "debian-12""#,
            "name desc",
            5,
            &token,
        ),
        with_token(BIG_FOLDER, r#"family = "app-base""#, "name desc", 5, &token),
        with_token(BIG_FOLDER, "", "name desc", 5, &token),
        with_token(BIG_FOLDER, r#"family = "debian-12""#, "name asc", 5, &token),
        with_token(BIG_FOLDER, r#"family = "debian-12""#, "", 5, &token),
    ] {
        let status = list(&mut client, request).await.unwrap_err();
        assert_invalid(&status, "page_token", "different query");
    }

    // Altered anywhere: refused.
    let mut altered_seen = false;
    for position in 0..token.len() {
        let mut chars: Vec<char> = token.chars().collect();
        chars[position] = if chars[position] == 'A' { 'B' } else { 'A' };
        let altered: String = chars.into_iter().collect();
        let status = list(
            &mut client,
            with_token(
                BIG_FOLDER,
                r#"family = "debian-12""#,
                "name desc",
                5,
                &altered,
            ),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let description = page_token_problem(&status);
        assert!(
            description.contains("altered") || description.contains("malformed"),
            "{description}"
        );
        altered_seen |= description.contains("altered");
    }
    assert!(altered_seen, "the MAC catches what still decodes");
    for junk in ["not a token", "AAAA", "x", &token[..token.len() - 2]] {
        let status = list(
            &mut client,
            with_token(BIG_FOLDER, r#"family = "debian-12""#, "name desc", 5, junk),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_invalid(&status, "page_token", "");
    }
}

/// The BadRequest description of an error about page_token.
fn page_token_problem(status: &Status) -> String {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let violations = &details.bad_request().expect("BadRequest").field_violations;
    assert_eq!(violations[0].field, "page_token");
    violations[0].description.clone()
}

#[tokio::test]
async fn a_token_whose_image_is_gone_is_refused_clearly() {
    // Tokens are not tied to one server process: a second server on a catalog
    // without the image the token names is the image "deleted" meanwhile.
    let catalog = big_compute_catalog();
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    let first = list(
        &mut client,
        list_request(BIG_FOLDER, "", "createdAt desc", 10),
    )
    .await
    .unwrap();
    let gone = first.images.last().unwrap().id.clone();

    let without: Vec<Image> = catalog.iter().filter(|i| i.id != gone).cloned().collect();
    let other = TestApp::with_repositories(repositories(Catalog {
        compute_images: compute_list(without),
        ..Catalog::default()
    }))
    .await;
    let mut other_client = Client::new(other.channel().await);
    let status = list(
        &mut other_client,
        ListImagesRequest {
            page_token: first.next_page_token.clone(),
            ..list_request(BIG_FOLDER, "", "createdAt desc", 10)
        },
    )
    .await
    .unwrap_err();
    assert_invalid(
        &status,
        "page_token",
        &format!("the image {gone} that the page token continues after no longer exists"),
    );

    // Where the image still exists, the same token works on the other server.
    let second_page_here = list(
        &mut client,
        ListImagesRequest {
            page_token: first.next_page_token.clone(),
            ..list_request(BIG_FOLDER, "", "createdAt desc", 10)
        },
    )
    .await
    .unwrap();
    let again = big_app().await;
    let mut twin = Client::new(again.channel().await);
    let second_page_there = list(
        &mut twin,
        ListImagesRequest {
            page_token: first.next_page_token,
            ..list_request(BIG_FOLDER, "", "createdAt desc", 10)
        },
    )
    .await
    .unwrap();
    assert_eq!(second_page_here, second_page_there);
}

fn image(
    id: &str,
    folder: &str,
    family: &str,
    status: ImageStatus,
    seconds: i64,
    nanos: i32,
) -> Image {
    Image {
        id: id.into(),
        folder_id: folder.into(),
        name: format!("name-{id}"),
        family: family.into(),
        status: status as i32,
        created_at: Some(Timestamp { seconds, nanos }),
        ..Default::default()
    }
}

async fn latest(client: &mut Client, folder: &str, family: &str) -> Result<Image, Status> {
    client
        .get_latest_by_family(GetImageLatestByFamilyRequest {
            folder_id: folder.into(),
            family: family.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn latest_by_family_is_the_newest_ready_image_ties_by_id() {
    use ImageStatus::{Creating, Deleting, Error, Ready};
    let folder = "b1gfamilyf0lder00000";
    let app = TestApp::with_repositories(repositories(Catalog {
        compute_images: compute_list(vec![
            image("fd8old", folder, "tie-family", Ready, 100, 0),
            image("fd8tie2", folder, "tie-family", Ready, 200, 0),
            image("fd8tie1", folder, "tie-family", Ready, 200, 0),
            image("fd8tie3", folder, "tie-family", Ready, 200, 0),
            image("fd8creating", folder, "tie-family", Creating, 300, 0),
            image("fd8error", folder, "tie-family", Error, 400, 0),
            image("fd8deleting", folder, "tie-family", Deleting, 500, 0),
            image(
                "fd8elsewhere",
                "b1gotherf0lder000000",
                "tie-family",
                Ready,
                600,
                0,
            ),
            image("fd8otherfamily", folder, "other-family", Ready, 700, 0),
            // A nanosecond is newer.
            image("fd8a", folder, "nano-family", Ready, 200, 0),
            image("fd8z", folder, "nano-family", Ready, 200, 1),
            image("fd8never", folder, "never-ready", Creating, 100, 0),
            image("fd8never2", folder, "never-ready", Error, 200, 0),
        ]),
        ..Catalog::default()
    }))
    .await;
    let mut client = Client::new(app.channel().await);

    let newest = latest(&mut client, folder, "tie-family").await.unwrap();
    assert_eq!(newest.id, "fd8tie1");
    assert_eq!(newest.name, "name-fd8tie1", "the whole image comes back");
    assert_eq!(
        latest(&mut client, folder, "nano-family").await.unwrap().id,
        "fd8z"
    );
    assert_eq!(
        latest(&mut client, "b1gotherf0lder000000", "tie-family")
            .await
            .unwrap()
            .id,
        "fd8elsewhere"
    );

    // The first image List shows for the same question.
    let listed = list(
        &mut client,
        list_request(
            folder,
            r#"family = "tie-family" AND status = "READY""#,
            "createdAt desc",
            1,
        ),
    )
    .await
    .unwrap();
    assert_eq!(listed.images[0], newest);

    for (folder_id, family) in [
        (folder, "never-ready"),
        (folder, "no-such-family"),
        ("b1gotherf0lder000000", "other-family"),
    ] {
        let status = latest(&mut client, folder_id, family).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(
            status.message(),
            format!("Image family {family} not found in folder {folder_id}")
        );
    }
}

#[tokio::test]
async fn latest_by_family_validates_folder_and_family() {
    let app = TestApp::demo().await;
    let mut client = Client::new(app.channel().await);
    let folder = "standard-images";
    for (folder_id, family, field, text) in [
        ("", "debian-12", "folder_id", "required field is empty"),
        (
            &"f".repeat(51) as &str,
            "debian-12",
            "folder_id",
            "at most 50 characters",
        ),
        (folder, "", "family", "required field is empty"),
        (
            folder,
            "ab",
            "family",
            "must match the pattern [a-z][-a-z0-9]{1,61}[a-z0-9]",
        ),
        (folder, "Debian-12", "family", "must match the pattern"),
        (folder, "debian-12-", "family", "must match the pattern"),
        (folder, "debian_12", "family", "must match the pattern"),
        (folder, "1debian", "family", "must match the pattern"),
        (folder, &"a".repeat(64), "family", "at most 63 characters"),
    ] {
        let status = latest(&mut client, folder_id, family).await.unwrap_err();
        assert_invalid(&status, field, text);
    }
    // 63 characters is a valid family, just not a known one.
    let status = latest(&mut client, folder, &"a".repeat(63))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn latest_by_family_agrees_with_list_on_a_big_catalog() {
    let app = big_app().await;
    let mut client = Client::new(app.channel().await);
    for family in FAMILIES {
        let newest = latest(&mut client, BIG_FOLDER, family).await.unwrap();
        let filter = format!(r#"family = "{family}" AND status = READY"#);
        let listed = list(
            &mut client,
            list_request(BIG_FOLDER, &filter, "createdAt desc", 1),
        )
        .await
        .unwrap();
        assert_eq!(listed.images[0], newest, "{family}");
    }
}

#[tokio::test]
async fn demo_catalog_pages_and_latest_images() {
    let app = TestApp::demo().await;
    let mut client = Client::new(app.channel().await);
    let all = list_all(&mut client, list_request("standard-images", "", "", 3)).await;
    assert_eq!(all.len(), 10);
    let newest_first = ids(&list_all(
        &mut client,
        list_request("b1gdemo7f0lder2qk8vh", "", "createdAt desc", 0),
    )
    .await);
    assert_eq!(
        newest_first,
        [
            "fd87inn8aveopjq6ddiv",
            "fd828cob72di3nq6h3fm",
            "fd8o2pjpr9dfpl308ukq",
            "fd871gtv3jscsg9qrase"
        ]
    );
    for (folder, family, id) in [
        ("standard-images", "ubuntu-2204-lts", "fd824k6uqk9cvi1ise4i"),
        ("standard-images", "ubuntu-2404-lts", "fd8cir5ekkodkuk73hh0"),
        // A newer image is CREATING.
        ("standard-images", "debian-12", "fd8r3cfeol2tp166r4tp"),
        // A newer image is ERROR.
        ("b1gdemo7f0lder2qk8vh", "app-base", "fd828cob72di3nq6h3fm"),
    ] {
        assert_eq!(
            latest(&mut client, folder, family).await.unwrap().id,
            id,
            "{family}"
        );
    }
}
