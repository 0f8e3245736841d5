//! The PostgreSQL backend answers exactly as the in-memory one: the same
//! catalog (the demo one plus the generated List catalogs) imported into
//! PostgreSQL and served, next to the same catalog served from memory; the same
//! requests to both, over gRPC and REST, must get identical answers: every Get,
//! GetLatestByFamily, and every page of many List queries (filters, orders,
//! page sizes), page tokens included.

use crate::common;
use crate::list_support;
use crate::pg_support;

use common::TestApp;
use image_service::proto::{compute, container_registry};
use image_service::store::catalog::{Catalog, ImageList};
use image_service::store::postgres::{self, ImportMode};
use list_support::{
    AWKWARD_NAME, BIG_FOLDER, FAMILIES, FOLDER_A, FOLDER_B, REGISTRY_1, REGISTRY_2, REGISTRY_3,
    UNLISTED_REGISTRY, big_compute_catalog, container_catalog, repositories,
};
use pg_support::TestSchema;
use tonic::transport::Channel;

type ComputeClient = compute::image_service_client::ImageServiceClient<Channel>;
type ContainerClient = container_registry::image_service_client::ImageServiceClient<Channel>;

fn catalog() -> Catalog {
    let mut catalog = Catalog::demo().expect("demo catalog");
    let compute = catalog.compute_images.iter().chain(big_compute_catalog());
    catalog.compute_images = ImageList::from_images(compute, |i| &i.id).expect("unique ids");
    let containers = container_catalog();
    let container = (catalog.container_images.iter()).chain(containers.container_images.iter());
    catalog.container_images = ImageList::from_images(container, |i| &i.id).expect("unique ids");
    catalog
        .container_registries
        .extend(containers.container_registries);
    catalog
}

/// A call's outcome, comparable across servers.
fn outcome<T: PartialEq + std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, (tonic::Code, String)> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| (status.code(), status.message().to_owned()))
}

struct Servers {
    postgres: TestApp,
    memory: TestApp,
    catalog: Catalog,
}

impl Servers {
    async fn compute(&self) -> (ComputeClient, ComputeClient) {
        (
            ComputeClient::new(self.postgres.channel().await),
            ComputeClient::new(self.memory.channel().await),
        )
    }

    async fn container(&self) -> (ContainerClient, ContainerClient) {
        (
            ContainerClient::new(self.postgres.channel().await),
            ContainerClient::new(self.memory.channel().await),
        )
    }

    /// The REST answer of both servers to `path`: status and parsed body.
    async fn rest(&self, http: &reqwest::Client, path: &str) {
        let mut answers = Vec::new();
        for app in [&self.postgres, &self.memory] {
            let response = http
                .get(app.http_url(path))
                .send()
                .await
                .expect("REST call");
            let status = response.status();
            let body: serde_json::Value = response.json().await.expect("JSON body");
            answers.push((status, strip_request_id(body)));
        }
        assert_eq!(answers[0], answers[1], "REST {path}");
    }
}

/// Error bodies carry the request's id, which differs between the two calls.
fn strip_request_id(mut body: serde_json::Value) -> serde_json::Value {
    if let Some(details) = body.get_mut("details") {
        *details = serde_json::Value::Null;
    }
    body
}

async fn servers(test: &str) -> Option<(TestSchema, Servers)> {
    let schema = TestSchema::create(test).await?;
    let database = schema.migrated().await;
    let catalog = catalog();
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports");
    let servers = Servers {
        postgres: TestApp::with_database(database).await,
        memory: TestApp::with_repositories(repositories(catalog.clone())).await,
        catalog,
    };
    Some((schema, servers))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_answers_match_the_memory_backend() {
    let Some((schema, servers)) = servers("compute_answers_match_the_memory_backend").await else {
        return;
    };
    let (mut pg, mut memory) = servers.compute().await;

    let mut ids: Vec<String> = servers
        .catalog
        .compute_images
        .iter()
        .map(|i| i.id.clone())
        .collect();
    ids.extend(["nope".to_owned(), "crpnanhnu5ea83js93tf".to_owned()]);
    for id in &ids {
        let request = compute::GetImageRequest {
            image_id: id.clone(),
        };
        assert_eq!(
            outcome(pg.get(request.clone()).await),
            outcome(memory.get(request).await),
            "Get {id}"
        );
    }

    let folders = [
        BIG_FOLDER,
        "standard-images",
        "b1gdemo7f0lder2qk8vh",
        "b1gotherf0lder000001",
        "b1gnosuchf0lder00000",
    ];
    let mut families: Vec<String> = FAMILIES.iter().map(|f| (*f).to_owned()).collect();
    families.extend(
        servers
            .catalog
            .compute_images
            .iter()
            .map(|i| i.family.clone())
            .filter(|f| !f.is_empty()),
    );
    families.sort();
    families.dedup();
    families.push("no-such-family".to_owned());
    for folder in folders {
        for family in &families {
            let request = compute::GetImageLatestByFamilyRequest {
                folder_id: folder.into(),
                family: family.clone(),
            };
            assert_eq!(
                outcome(pg.get_latest_by_family(request.clone()).await),
                outcome(memory.get_latest_by_family(request).await),
                "GetLatestByFamily {folder} {family}"
            );
        }
    }

    let awkward = format!(
        "name = {}",
        serde_json::Value::String(AWKWARD_NAME.to_owned())
    );
    let filters = [
        String::new(),
        r#"status = "READY""#.to_owned(),
        r#"family IN ("debian-12", "app-base") AND status != "ERROR""#.to_owned(),
        r#"name = "img-007""#.to_owned(),
        r#"family NOT IN ("debian-12") AND name != "img-001""#.to_owned(),
        r#"id IN ("fd8000000z0000000000", "fd8007919z0000000001", "nope")"#.to_owned(),
        r#"status IN ("CREATING", "DELETING", "STATUS_UNSPECIFIED")"#.to_owned(),
        awkward,
        r#"family = """#.to_owned(),
    ];
    let orders = [
        "",
        "id desc",
        "name",
        "name desc",
        "createdAt",
        "created_at desc",
    ];
    let http = reqwest::Client::new();
    let mut pages = 0;
    for folder in folders {
        let size = if folder == BIG_FOLDER { 400 } else { 3 };
        for filter in &filters {
            for order_by in orders {
                let mut request = compute::ListImagesRequest {
                    folder_id: folder.into(),
                    page_size: size,
                    page_token: String::new(),
                    filter: filter.clone(),
                    order_by: order_by.into(),
                };
                let query = format!(
                    "/compute/v1/images?folderId={folder}&pageSize={size}&filter={}&orderBy={}",
                    encode(filter),
                    encode(order_by)
                );
                servers.rest(&http, &query).await;
                loop {
                    let answer = outcome(pg.list(request.clone()).await);
                    assert_eq!(
                        answer,
                        outcome(memory.list(request.clone()).await),
                        "List {folder} {filter:?} {order_by:?} {:?}",
                        request.page_token
                    );
                    pages += 1;
                    match answer {
                        Ok(page) if !page.next_page_token.is_empty() => {
                            request.page_token = page.next_page_token;
                        }
                        _ => break,
                    }
                }
            }
        }
    }
    assert!(pages > 500, "{pages} pages compared");

    for id in ["fd824k6uqk9cvi1ise4i", "nope"] {
        servers
            .rest(&http, &format!("/compute/v1/images/{id}"))
            .await;
    }
    servers
        .rest(
            &http,
            "/compute/v1/images:latestByFamily?folderId=standard-images&family=debian-12",
        )
        .await;

    servers.postgres.stop().await;
    servers.memory.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_answers_match_the_memory_backend() {
    let Some((schema, servers)) = servers("container_answers_match_the_memory_backend").await
    else {
        return;
    };
    let (mut pg, mut memory) = servers.container().await;
    let mut ids: Vec<String> = servers
        .catalog
        .container_images
        .iter()
        .map(|i| i.id.clone())
        .collect();
    ids.extend(["nope".to_owned(), "fd824k6uqk9cvi1ise4i".to_owned()]);
    for id in &ids {
        let request = container_registry::GetImageRequest {
            image_id: id.clone(),
        };
        assert_eq!(
            outcome(pg.get(request.clone()).await),
            outcome(memory.get(request).await),
            "Get {id}"
        );
    }

    let repository = format!("{REGISTRY_1}/team/db");
    // (registry_id, repository_name, folder_id)
    let scopes: Vec<(String, String, String)> = vec![
        (REGISTRY_1.into(), String::new(), String::new()),
        (REGISTRY_2.into(), String::new(), String::new()),
        (REGISTRY_3.into(), String::new(), String::new()),
        (UNLISTED_REGISTRY.into(), String::new(), String::new()),
        (String::new(), repository.clone(), String::new()),
        (
            String::new(),
            format!("{UNLISTED_REGISTRY}/y"),
            String::new(),
        ),
        (String::new(), String::new(), FOLDER_A.into()),
        (String::new(), String::new(), FOLDER_B.into()),
        (String::new(), String::new(), "b1gdemo7f0lder2qk8vh".into()),
        (String::new(), String::new(), "b1gnosuchf0lder00000".into()),
        (REGISTRY_2.into(), repository.clone(), FOLDER_B.into()),
    ];
    let filters = [
        String::new(),
        format!(r#"name = "{repository}""#),
        format!(r#"name = "{repository}" AND name = "{REGISTRY_1}/app""#),
    ];
    let orders = [
        "",
        "name",
        "digest desc, created_at",
        "created_at desc, name",
        "name desc, digest, created_at desc",
        "createdAt",
    ];
    let http = reqwest::Client::new();
    for (registry_id, repository_name, folder_id) in &scopes {
        for filter in &filters {
            for order_by in orders {
                for size in [0, 7] {
                    let mut request = container_registry::ListImagesRequest {
                        registry_id: registry_id.clone(),
                        repository_name: repository_name.clone(),
                        folder_id: folder_id.clone(),
                        page_size: size,
                        page_token: String::new(),
                        filter: filter.clone(),
                        order_by: order_by.into(),
                    };
                    if size == 7 {
                        let query = format!(
                            "/container-registry/v1/images?registryId={registry_id}&repositoryName={}\
                             &folderId={folder_id}&pageSize={size}&filter={}&orderBy={}",
                            encode(repository_name),
                            encode(filter),
                            encode(order_by)
                        );
                        servers.rest(&http, &query).await;
                    }
                    loop {
                        let answer = outcome(pg.list(request.clone()).await);
                        assert_eq!(
                            answer,
                            outcome(memory.list(request.clone()).await),
                            "List {registry_id:?} {repository_name:?} {folder_id:?} {filter:?} \
                             {order_by:?} {:?}",
                            request.page_token
                        );
                        match answer {
                            Ok(page) if !page.next_page_token.is_empty() => {
                                request.page_token = page.next_page_token;
                            }
                            _ => break,
                        }
                    }
                }
            }
        }
    }
    servers
        .rest(&http, "/container-registry/v1/images/crpnanhnu5ea83js93tf")
        .await;

    servers.postgres.stop().await;
    servers.memory.stop().await;
    schema.drop().await;
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
