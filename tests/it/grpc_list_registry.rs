//! containerregistry ImageService.List over the network with a tonic client
//! from our protos: scopes and their precedence, folders through the catalog's
//! registries, the name filter, multi-field orders and paging.

use crate::common;
use crate::list_support;

use std::collections::HashSet;

use common::TestApp;
use image_service::proto::container_registry::image_service_client::ImageServiceClient;
use image_service::proto::container_registry::{
    GetImageRequest, Image, ListImagesRequest, ListImagesResponse,
};
use list_support::{
    FOLDER_A, FOLDER_B, REGISTRY_1, REGISTRY_2, REGISTRY_3, UNLISTED_REGISTRY, assert_invalid,
    container_catalog, container_reference, repositories,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

type Client = ImageServiceClient<Channel>;

async fn app() -> TestApp {
    TestApp::with_repositories(repositories(container_catalog())).await
}

fn catalog_images() -> Vec<Image> {
    container_catalog().container_images.iter().collect()
}

#[derive(Default, Clone)]
struct Query<'a> {
    registry_id: &'a str,
    repository_name: &'a str,
    folder_id: &'a str,
    filter: &'a str,
    order_by: &'a str,
    page_size: i64,
}

impl Query<'_> {
    fn request(&self) -> ListImagesRequest {
        ListImagesRequest {
            registry_id: self.registry_id.into(),
            repository_name: self.repository_name.into(),
            page_size: self.page_size,
            page_token: String::new(),
            filter: self.filter.into(),
            order_by: self.order_by.into(),
            folder_id: self.folder_id.into(),
        }
    }
}

async fn list(
    client: &mut Client,
    request: ListImagesRequest,
) -> Result<ListImagesResponse, Status> {
    client.list(request).await.map(tonic::Response::into_inner)
}

/// The ids of every page of a query, checking that only the last page is short
/// and has no token, and that no image comes twice.
async fn list_all(client: &mut Client, query: Query<'_>) -> Vec<String> {
    let size = if query.page_size == 0 {
        100
    } else {
        query.page_size as usize
    };
    let mut request = query.request();
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let page = list(client, request.clone()).await.expect("a page");
        ids.extend(page.images.iter().map(|i| i.id.clone()));
        if page.next_page_token.is_empty() {
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "an image came twice");
            return ids;
        }
        assert_eq!(page.images.len(), size, "only the last page may be short");
        assert!(page.next_page_token.len() <= 100);
        request.page_token = page.next_page_token;
    }
    panic!("paging did not end");
}

fn select(images: &[Image], keep: impl Fn(&Image) -> bool) -> Vec<&Image> {
    images.iter().filter(|i| keep(i)).collect()
}

fn in_registries<'a>(images: &'a [Image], registries: &[&str]) -> Vec<&'a Image> {
    select(images, |i| {
        registries
            .iter()
            .any(|r| i.name.starts_with(&format!("{r}/")))
    })
}

#[tokio::test]
async fn scopes_and_their_precedence() {
    let app = app().await;
    let mut client = Client::new(app.channel().await);
    let images = catalog_images();
    let app_repository = format!("{REGISTRY_1}/app");
    let unlisted_repository = format!("{UNLISTED_REGISTRY}/y");
    let by_id = |selected: Vec<&Image>| container_reference(&selected, &[]);

    let cases: Vec<(Query<'_>, Vec<String>)> = vec![
        // repository_name wins over registry_id and folder_id.
        (
            Query {
                repository_name: &app_repository,
                registry_id: REGISTRY_3,
                folder_id: FOLDER_B,
                ..Query::default()
            },
            by_id(select(&images, |i| i.name == app_repository)),
        ),
        // registry_id wins over folder_id.
        (
            Query {
                registry_id: REGISTRY_1,
                folder_id: FOLDER_B,
                ..Query::default()
            },
            by_id(in_registries(&images, &[REGISTRY_1])),
        ),
        // A folder holds the images of its registries.
        (
            Query {
                folder_id: FOLDER_A,
                ..Query::default()
            },
            by_id(in_registries(&images, &[REGISTRY_1, REGISTRY_2])),
        ),
        (
            Query {
                folder_id: FOLDER_B,
                ..Query::default()
            },
            by_id(in_registries(&images, &[REGISTRY_3])),
        ),
        // An unlisted registry is served by registry and repository, not by folder.
        (
            Query {
                registry_id: UNLISTED_REGISTRY,
                ..Query::default()
            },
            by_id(in_registries(&images, &[UNLISTED_REGISTRY])),
        ),
        (
            Query {
                repository_name: &unlisted_repository,
                ..Query::default()
            },
            by_id(in_registries(&images, &[UNLISTED_REGISTRY])),
        ),
        // Unknown scopes are empty, not errors.
        (
            Query {
                folder_id: "b1gnosuchf0lder00000",
                ..Query::default()
            },
            vec![],
        ),
        (
            Query {
                registry_id: "crpnosuchregistry000",
                ..Query::default()
            },
            vec![],
        ),
        (
            Query {
                repository_name: "crp1/none",
                ..Query::default()
            },
            vec![],
        ),
        // A registry id is not a repository: the repository must match exactly.
        (
            Query {
                repository_name: REGISTRY_1,
                ..Query::default()
            },
            vec![],
        ),
    ];
    for (query, expected) in cases {
        for page_size in [7, 1000] {
            let got = list_all(
                &mut client,
                Query {
                    page_size,
                    ..query.clone()
                },
            )
            .await;
            assert_eq!(
                got, expected,
                "registry {:?} repository {:?} folder {:?}",
                query.registry_id, query.repository_name, query.folder_id
            );
        }
    }
    // Get serves an image of an unlisted registry.
    let unlisted = in_registries(&images, &[UNLISTED_REGISTRY])[0];
    let got = client
        .get(GetImageRequest {
            image_id: unlisted.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&got, unlisted);
}

#[tokio::test]
async fn every_order_field_both_ways_and_combined() {
    let app = app().await;
    let mut client = Client::new(app.channel().await);
    let images = catalog_images();
    let folder = in_registries(&images, &[REGISTRY_1, REGISTRY_2]);
    let orders: Vec<(&str, Vec<(&str, bool)>)> = vec![
        ("", vec![]),
        ("name", vec![("name", false)]),
        ("name desc", vec![("name", true)]),
        ("digest", vec![("digest", false)]),
        ("digest DESC", vec![("digest", true)]),
        ("created_at", vec![("created_at", false)]),
        ("createdAt desc", vec![("created_at", true)]),
        (
            "name, created_at desc",
            vec![("name", false), ("created_at", true)],
        ),
        (
            "name desc, digest, created_at desc",
            vec![("name", true), ("digest", false), ("created_at", true)],
        ),
        (
            "created_at desc,digest desc",
            vec![("created_at", true), ("digest", true)],
        ),
        (
            "digest asc , name desc",
            vec![("digest", false), ("name", true)],
        ),
    ];
    for (order_by, keys) in orders {
        let expected = container_reference(&folder, &keys);
        for page_size in [1, 7, 1000] {
            let got = list_all(
                &mut client,
                Query {
                    folder_id: FOLDER_A,
                    order_by,
                    page_size,
                    ..Query::default()
                },
            )
            .await;
            assert_eq!(
                got, expected,
                "order_by {order_by:?}, page_size {page_size}"
            );
        }
    }
}

#[tokio::test]
async fn name_filter_within_each_scope() {
    let app = app().await;
    let mut client = Client::new(app.channel().await);
    let images = catalog_images();
    let db = format!("{REGISTRY_1}/team/db");
    let filter = format!(r#"name = "{db}""#);
    let single_quoted = format!("name='{db}'");
    let expected = container_reference(&select(&images, |i| i.name == db), &[("created_at", true)]);
    assert!(!expected.is_empty());
    for query in [
        Query {
            folder_id: FOLDER_A,
            filter: &filter,
            ..Query::default()
        },
        Query {
            registry_id: REGISTRY_1,
            filter: &single_quoted,
            ..Query::default()
        },
        Query {
            repository_name: &db,
            filter: &filter,
            ..Query::default()
        },
    ] {
        let got = list_all(
            &mut client,
            Query {
                order_by: "created_at desc",
                page_size: 7,
                ..query
            },
        )
        .await;
        assert_eq!(got, expected);
    }
    // A name outside the scope finds nothing.
    let got = list_all(
        &mut client,
        Query {
            folder_id: FOLDER_B,
            filter: &filter,
            ..Query::default()
        },
    )
    .await;
    assert!(got.is_empty());
}

#[tokio::test]
async fn invalid_requests_name_the_field() {
    let app = app().await;
    let mut client = Client::new(app.channel().await);
    let long_registry = "r".repeat(51);
    let long_folder = "f".repeat(51);
    let long_filter = format!(r#"name = "{}""#, "x".repeat(1000));
    let long_order = "n".repeat(101);
    let cases: Vec<(ListImagesRequest, &str, &str)> = vec![
        (
            Query::default().request(),
            "folder_id",
            "one of repository_name, registry_id or folder_id is required",
        ),
        (
            Query {
                registry_id: &long_registry,
                ..Query::default()
            }
            .request(),
            "registry_id",
            "at most 50 characters",
        ),
        // Checked even when repository_name makes it unused.
        (
            Query {
                registry_id: &long_registry,
                repository_name: "crp1/app",
                ..Query::default()
            }
            .request(),
            "registry_id",
            "at most 50 characters",
        ),
        (
            Query {
                folder_id: &long_folder,
                ..Query::default()
            }
            .request(),
            "folder_id",
            "at most 50 characters",
        ),
        (
            Query {
                repository_name: "crp1/App",
                ..Query::default()
            }
            .request(),
            "repository_name",
            "must match the pattern",
        ),
        (
            Query {
                repository_name: "crp1//app",
                ..Query::default()
            }
            .request(),
            "repository_name",
            "must match the pattern",
        ),
        (
            Query {
                repository_name: "crp1/app/",
                ..Query::default()
            }
            .request(),
            "repository_name",
            "must match the pattern",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                page_size: 1001,
                ..Query::default()
            }
            .request(),
            "page_size",
            "between 0 and 1000",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                page_size: -5,
                ..Query::default()
            }
            .request(),
            "page_size",
            "between 0 and 1000",
        ),
        (
            ListImagesRequest {
                page_token: "A".repeat(101),
                ..Query {
                    folder_id: FOLDER_A,
                    ..Query::default()
                }
                .request()
            },
            "page_token",
            "at most 100 characters",
        ),
        (
            ListImagesRequest {
                page_token: "bm90IGEgdG9rZW4".into(),
                ..Query {
                    folder_id: FOLDER_A,
                    ..Query::default()
                }
                .request()
            },
            "page_token",
            "is malformed",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                filter: &long_filter,
                ..Query::default()
            }
            .request(),
            "filter",
            "at most 1000 characters",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                filter: r#"name != "x""#,
                ..Query::default()
            }
            .request(),
            "filter",
            r#"`name !=` at column 1: only name = "<value>" is supported"#,
        ),
        (
            Query {
                folder_id: FOLDER_A,
                filter: r#"name IN ("x")"#,
                ..Query::default()
            }
            .request(),
            "filter",
            "only name =",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                filter: r#"digest = "x""#,
                ..Query::default()
            }
            .request(),
            "filter",
            "unknown field `digest` at column 1; you can filter on name only",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                filter: r#"name = "x" AND"#,
                ..Query::default()
            }
            .request(),
            "filter",
            "syntax error at column 15",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: &long_order,
                ..Query::default()
            }
            .request(),
            "order_by",
            "at most 100 characters",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: "id",
                ..Query::default()
            }
            .request(),
            "order_by",
            "unknown field `id` at column 1; you can order by name, digest, created_at",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: "name, size desc",
                ..Query::default()
            }
            .request(),
            "order_by",
            "unknown field `size` at column 7",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: "name sideways",
                ..Query::default()
            }
            .request(),
            "order_by",
            "unknown direction `sideways`",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: "name, digest, name desc",
                ..Query::default()
            }
            .request(),
            "order_by",
            "given twice",
        ),
        (
            Query {
                folder_id: FOLDER_A,
                order_by: "name,",
                ..Query::default()
            }
            .request(),
            "order_by",
            "syntax error at column 6",
        ),
    ];
    for (request, field, text) in cases {
        let status = list(&mut client, request.clone())
            .await
            .expect_err(&format!("{request:?}"));
        assert_invalid(&status, field, text);
    }
}

#[tokio::test]
async fn page_tokens_continue_only_their_own_query() {
    let app = app().await;
    let mut client = Client::new(app.channel().await);
    let query = Query {
        registry_id: REGISTRY_1,
        order_by: "digest desc, created_at",
        page_size: 4,
        ..Query::default()
    };
    let first = list(&mut client, query.request()).await.unwrap();
    let token = first.next_page_token.clone();
    assert!(!token.is_empty());
    let continued = |query: Query<'_>| ListImagesRequest {
        page_token: token.clone(),
        ..query.request()
    };

    // The effective query is what counts: an ignored folder_id changes nothing.
    let next = list(
        &mut client,
        continued(Query {
            folder_id: FOLDER_B,
            page_size: 2,
            ..query.clone()
        }),
    )
    .await
    .unwrap();
    let six = list(
        &mut client,
        Query {
            page_size: 6,
            ..query.clone()
        }
        .request(),
    )
    .await
    .unwrap();
    let ids = |images: &[Image]| images.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&six.images),
        [ids(&first.images), ids(&next.images)].concat()
    );

    for other in [
        Query {
            registry_id: REGISTRY_2,
            ..query.clone()
        },
        Query {
            registry_id: "",
            folder_id: FOLDER_A,
            ..query.clone()
        },
        Query {
            repository_name: "crpregistry100000001/app",
            ..query.clone()
        },
        Query {
            filter: r#"name = "crpregistry100000001/app""#,
            ..query.clone()
        },
        Query {
            order_by: "digest desc",
            ..query.clone()
        },
        Query {
            order_by: "digest, created_at",
            ..query.clone()
        },
    ] {
        let status = list(&mut client, continued(other)).await.unwrap_err();
        assert_invalid(&status, "page_token", "different query");
    }
    // A compute token is no container registry token.
    let compute_app = TestApp::demo().await;
    let compute_token =
        image_service::proto::compute::image_service_client::ImageServiceClient::new(
            compute_app.channel().await,
        )
        .list(image_service::proto::compute::ListImagesRequest {
            folder_id: "standard-images".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .next_page_token;
    let status = list(
        &mut client,
        ListImagesRequest {
            page_token: compute_token,
            ..query.request()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_invalid(&status, "page_token", "different query");
}

#[tokio::test]
async fn demo_catalog_lists_by_repository_registry_and_folder() {
    let app = TestApp::demo().await;
    let mut client = Client::new(app.channel().await);
    let ubuntu = list_all(
        &mut client,
        Query {
            repository_name: "crpovcqia9d67t6vgmm0/ubuntu",
            order_by: "created_at desc",
            ..Query::default()
        },
    )
    .await;
    assert_eq!(ubuntu, ["crp0rp8juv273i2hplls", "crpphk31u48ts5plqaqo"]);
    let registry = list_all(
        &mut client,
        Query {
            registry_id: "crpd2nrqffpp3e93946m",
            ..Query::default()
        },
    )
    .await;
    assert_eq!(registry, ["crpbjc9kb6dfomrdc0lg", "crpnanhnu5ea83js93tf"]);
    let folder = list_all(
        &mut client,
        Query {
            folder_id: "b1gdemo7f0lder2qk8vh",
            order_by: "name desc, created_at",
            page_size: 2,
            ..Query::default()
        },
    )
    .await;
    assert_eq!(
        folder,
        [
            "crpphk31u48ts5plqaqo",
            "crp0rp8juv273i2hplls",
            "crpphg9khf9ophjidojm"
        ]
    );
}
