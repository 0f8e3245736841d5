//! Cached replicas (`serve --database-url … --cache`) on the real PostgreSQL,
//! called over gRPC by a tonic client: random writes on random replicas
//! converge to what a replica started afterwards answers, with a replica
//! restarted mid-stream; every write is read back on the replica that took
//! it; a killed notification connection and a database outage are caught up
//! after; a replica too far behind the change record loads everything again.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{self, TestApp, binding, process::Server, test_settings};
use crate::pg_support::{self, Mode, Proxy, TestSchema, quick_pool};

use image_service::app::{Application, Settings};
use image_service::ops::replica_health::IN_STEP_SERVICE;
use image_service::proto::compute::create_image_request::Source;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::compute::{self, CreateImageMetadata};
use image_service::proto::container_registry;
use image_service::proto::container_registry::image_service_client::ImageServiceClient as RegistryClient;
use image_service::proto::operation::operation_service_client::OperationServiceClient;
use image_service::proto::operation::{GetOperationRequest, Operation};
use image_service::proto::yandex::cloud::access::SetAccessBindingsRequest;
use image_service::store::catalog::Catalog;
use image_service::store::postgres::{self, Database, ImportMode};
use image_service::store::replica::FollowSettings;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// The folders the writes go to (the first two hold demo images too).
const FOLDERS: [&str; 3] = [
    "b1gdemo7f0lder2qk8vh",
    "b1g2teamapps0f0lder7",
    "b1greplicas0f0lder00",
];
/// The folders of the demo's container registries.
const REGISTRY_FOLDERS: [&str; 2] = ["b1gdemo7f0lder2qk8vh", "b1g2teamapps0f0lder7"];

/// A schema holding the demo catalog, migrated.
async fn demo_schema(test: &str) -> Option<TestSchema> {
    let schema = TestSchema::create(test).await?;
    let database = schema.migrated().await;
    let catalog = Catalog::demo().expect("the demo catalog");
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports");
    Some(schema)
}

/// A cached replica on `url`.
async fn replica(url: &str, follow: FollowSettings) -> TestApp {
    replica_with(url, follow, |_| {}).await
}

async fn replica_with(
    url: &str,
    follow: FollowSettings,
    edit: impl FnOnce(&mut Settings),
) -> TestApp {
    let database = Database::connect(url, &quick_pool()).expect("valid URL");
    let mut settings = test_settings(None);
    edit(&mut settings);
    let app = Application::build_cached(&settings, database, follow)
        .await
        .expect("the replica starts");
    TestApp::from_application(app)
}

/// Notifications, and a poll too slow to matter: what a test sees came
/// through the notifications (or a reconnect's catch-up).
fn notified_only() -> FollowSettings {
    FollowSettings {
        poll_interval: Duration::from_secs(3600),
        listen: true,
    }
}

struct Clients {
    images: ImageServiceClient<Channel>,
    registry: RegistryClient<Channel>,
    operations: OperationServiceClient<Channel>,
    health: HealthClient<Channel>,
}

impl Clients {
    async fn of(app: &TestApp) -> Self {
        let channel = app.channel().await;
        Self {
            images: ImageServiceClient::new(channel.clone()),
            registry: RegistryClient::new(channel.clone()),
            operations: OperationServiceClient::new(channel.clone()),
            health: HealthClient::new(channel),
        }
    }

    /// Polls OperationService.Get until done, as the SDKs wait.
    async fn wait(&mut self, operation: Operation) -> Operation {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut operation = operation;
        while !operation.done {
            assert!(
                Instant::now() < deadline,
                "operation {} never finished",
                operation.id
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            operation = self
                .operations
                .get(GetOperationRequest {
                    operation_id: operation.id.clone(),
                })
                .await
                .expect("the operation is readable")
                .into_inner();
        }
        operation
    }

    async fn get(&mut self, id: &str) -> Result<compute::Image, Code> {
        self.images
            .get(compute::GetImageRequest {
                image_id: id.into(),
            })
            .await
            .map(|r| r.into_inner())
            .map_err(|status| status.code())
    }

    async fn in_step(&mut self) -> ServingStatus {
        let status = self
            .health
            .check(HealthCheckRequest {
                service: IN_STEP_SERVICE.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        ServingStatus::try_from(status).expect("a known status")
    }

    async fn create(&mut self, folder: &str, name: &str) -> Result<String, tonic::Status> {
        let started = self
            .images
            .create(compute::CreateImageRequest {
                folder_id: folder.into(),
                name: name.into(),
                family: "replicated".into(),
                source: Some(Source::DiskId("fhmdisk0000000000001".into())),
                ..Default::default()
            })
            .await?
            .into_inner();
        let metadata = started
            .metadata
            .as_ref()
            .map(|any| CreateImageMetadata::decode(any.value.as_slice()).expect("metadata"))
            .expect("Create has metadata");
        self.wait(started).await;
        Ok(metadata.image_id)
    }
}

/// Everything a replica serves, as comparable lines: every Get of `ids`
/// (the image or its error code), every folder's List (all pages, by a
/// small page size), and the container Lists of the registries' folders.
async fn served(
    clients: &mut Clients,
    ids: &BTreeSet<String>,
    containers: &[String],
) -> Vec<String> {
    let mut lines = Vec::new();
    for id in ids {
        let line = match clients.get(id).await {
            Ok(image) => format!("get {id} {}", hex(&image.encode_to_vec())),
            Err(code) => format!("get {id} {code:?}"),
        };
        lines.push(line);
    }
    for folder in FOLDERS {
        let mut token = String::new();
        loop {
            let page = clients
                .images
                .list(compute::ListImagesRequest {
                    folder_id: folder.into(),
                    page_size: 3,
                    page_token: token.clone(),
                    order_by: "createdAt desc".into(),
                    ..Default::default()
                })
                .await
                .expect("List answers")
                .into_inner();
            for image in &page.images {
                lines.push(format!("list {folder} {}", hex(&image.encode_to_vec())));
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    for id in containers {
        let line = match clients
            .registry
            .get(container_registry::GetImageRequest {
                image_id: id.clone(),
            })
            .await
        {
            Ok(image) => format!(
                "container {id} {}",
                hex(&image.into_inner().encode_to_vec())
            ),
            Err(status) => format!("container {id} {:?}", status.code()),
        };
        lines.push(line);
    }
    for folder in REGISTRY_FOLDERS {
        let page = clients
            .registry
            .list(container_registry::ListImagesRequest {
                folder_id: folder.into(),
                page_size: 1000,
                ..Default::default()
            })
            .await
            .expect("container List answers")
            .into_inner();
        for image in page.images {
            lines.push(format!("containers {folder} {}", image.id));
        }
    }
    lines
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until `clients` serve `want`; the first difference otherwise.
async fn converge(
    clients: &mut Clients,
    want: &[String],
    ids: &BTreeSet<String>,
    containers: &[String],
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = served(clients, ids, containers).await;
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            let first = got
                .iter()
                .zip(want)
                .find(|(g, w)| g != w)
                .map(|(g, w)| format!("got  {g}\nwant {w}"))
                .unwrap_or_else(|| format!("{} lines, want {}", got.len(), want.len()));
            panic!("{what} never served what a fresh replica serves:\n{first}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small deterministic generator: the same writes every run.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The container images of the demo catalog.
fn demo_containers() -> Vec<String> {
    let catalog = Catalog::demo().expect("the demo catalog");
    catalog
        .container_images
        .iter()
        .map(|image| image.id)
        .collect()
}

fn demo_compute() -> BTreeSet<String> {
    let catalog = Catalog::demo().expect("the demo catalog");
    catalog
        .compute_images
        .iter()
        .map(|image| image.id)
        .collect()
}

/// One random write on `clients`, read back there at once (read-your-writes).
async fn random_write(
    clients: &mut Clients,
    dice: &mut Dice,
    step: usize,
    live: &mut Vec<String>,
    ids: &mut BTreeSet<String>,
    containers: &mut Vec<String>,
) {
    match dice.below(10) {
        0..=3 => {
            let folder = FOLDERS[dice.below(FOLDERS.len())];
            let id = clients
                .create(folder, &format!("replicated-{step}"))
                .await
                .expect("Create succeeds");
            let image = clients
                .get(&id)
                .await
                .expect("the writer reads its Create at once");
            assert_eq!(image.status, compute::image::Status::Ready as i32);
            live.push(id.clone());
            ids.insert(id);
        }
        4..=5 if !live.is_empty() => {
            let id = live[dice.below(live.len())].clone();
            let description = format!("changed at step {step}");
            let started = clients
                .images
                .update(compute::UpdateImageRequest {
                    image_id: id.clone(),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["description".into(), "labels".into()],
                    }),
                    description: description.clone(),
                    labels: [("step".to_owned(), step.to_string())].into(),
                    ..Default::default()
                })
                .await
                .expect("Update succeeds")
                .into_inner();
            clients.wait(started).await;
            let image = clients.get(&id).await.expect("still there");
            assert_eq!(
                image.description, description,
                "the writer reads its Update at once"
            );
        }
        6 if !live.is_empty() => {
            let id = live.swap_remove(dice.below(live.len()));
            let started = clients
                .images
                .delete(compute::DeleteImageRequest {
                    image_id: id.clone(),
                })
                .await
                .expect("Delete succeeds")
                .into_inner();
            clients.wait(started).await;
            assert_eq!(
                clients.get(&id).await,
                Err(Code::NotFound),
                "the writer reads its Delete at once"
            );
        }
        7 if !live.is_empty() => {
            let id = live[dice.below(live.len())].clone();
            let started = clients
                .images
                .set_access_bindings(SetAccessBindingsRequest {
                    resource_id: id,
                    access_bindings: vec![binding("viewer", &format!("user{step}"), "userAccount")],
                })
                .await
                .expect("SetAccessBindings succeeds")
                .into_inner();
            clients.wait(started).await;
        }
        8 if !containers.is_empty() => {
            let id = containers.swap_remove(dice.below(containers.len()));
            let started = clients
                .registry
                .delete(container_registry::DeleteImageRequest {
                    image_id: id.clone(),
                })
                .await
                .expect("container Delete succeeds")
                .into_inner();
            clients.wait(started).await;
            let gone = clients
                .registry
                .get(container_registry::GetImageRequest { image_id: id })
                .await
                .map(drop)
                .map_err(|s| s.code());
            assert_eq!(
                gone,
                Err(Code::NotFound),
                "the writer reads its container Delete at once"
            );
        }
        _ => {
            // A Create in a folder of demo images, named like nothing else.
            let id = clients
                .create(FOLDERS[0], &format!("extra-{step}"))
                .await
                .expect("Create succeeds");
            live.push(id.clone());
            ids.insert(id);
        }
    }
}

/// What the random writes made, for the comparison afterwards.
struct Written {
    dice: Dice,
    live: Vec<String>,
    ids: BTreeSet<String>,
    containers: Vec<String>,
}

impl Written {
    async fn steps(&mut self, clients: &mut [Clients], steps: std::ops::Range<usize>) {
        for step in steps {
            let on = self.dice.below(clients.len());
            random_write(
                &mut clients[on],
                &mut self.dice,
                step,
                &mut self.live,
                &mut self.ids,
                &mut self.containers,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_converge_with_a_restart_mid_stream() {
    let Some(schema) = demo_schema("three_replicas_converge").await else {
        return;
    };
    let follow = FollowSettings::default();
    let mut replicas = vec![
        replica(&schema.url, follow).await,
        replica(&schema.url, follow).await,
        replica(&schema.url, follow).await,
    ];
    let mut clients = Vec::new();
    for app in &replicas {
        clients.push(Clients::of(app).await);
    }
    let all_containers = demo_containers();
    let mut written = Written {
        dice: Dice(0x5eed_1234_abcd_0001),
        live: Vec::new(),
        ids: demo_compute(),
        containers: all_containers.clone(),
    };
    written.steps(&mut clients, 0..25).await;

    // Mid-stream: the writes go on on the first two replicas while the third
    // stops and a new one starts in its place (loading as they land).
    let third = clients.pop().expect("three");
    let writer = tokio::spawn(async move {
        written.steps(&mut clients, 25..70).await;
        (written, clients)
    });
    replicas.pop().expect("three").stop().await;
    drop(third);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let restarted = replica(&schema.url, follow).await;
    let mut restarted_clients = Clients::of(&restarted).await;
    let (written, mut clients) = writer.await.expect("the writes succeed");
    clients.push(Clients::of(&restarted).await);
    replicas.push(restarted);
    // And a few more, on all three.
    let mut written = written;
    written.steps(&mut clients, 70..80).await;

    // A replica started now reads the database as it stands: the truth.
    let fresh = replica(&schema.url, follow).await;
    let mut fresh_clients = Clients::of(&fresh).await;
    let want = served(&mut fresh_clients, &written.ids, &all_containers).await;
    assert!(
        want.iter()
            .any(|l| l.starts_with("get ") && l.ends_with("NotFound")),
        "some writes were Deletes"
    );
    assert!(
        want.iter()
            .any(|l| l.starts_with("container ") && l.ends_with("NotFound")),
        "some writes were container Deletes"
    );
    converge(
        &mut restarted_clients,
        &want,
        &written.ids,
        &all_containers,
        "the restarted replica",
    )
    .await;
    for (i, clients) in clients.iter_mut().enumerate() {
        converge(
            clients,
            &want,
            &written.ids,
            &all_containers,
            &format!("replica {i}"),
        )
        .await;
    }
    fresh.stop().await;
    for app in replicas {
        app.stop().await;
    }
    schema.drop().await;
}

/// Terminates the notification connection of the replica named `name`.
async fn kill_listener(schema: &TestSchema, name: &str) -> i64 {
    schema
        .count(&format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = '{name} change listener'"
        ))
        .await
}

fn named(url: &str, name: &str) -> String {
    format!("{url}&application_name={name}")
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = reqwest::get(app.http_url("/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_notification_connection_is_caught_up() {
    let Some(schema) = demo_schema("killed_notification_connection").await else {
        return;
    };
    let writer = replica(&named(&schema.url, "writer"), notified_only()).await;
    let follower = replica(&named(&schema.url, "follower"), notified_only()).await;
    let (mut on_writer, mut on_follower) =
        (Clients::of(&writer).await, Clients::of(&follower).await);
    wait_until(|| async { metric(&follower, "image_service_replica_listening").await == 1.0 })
        .await;

    // Seen through a notification.
    let first = on_writer
        .create(FOLDERS[2], "before-the-kill")
        .await
        .expect("created");
    eventually(&mut on_follower, &first).await;

    // The follower's connection dies; a write lands before it can be back,
    // so its notification is never delivered to the follower.
    assert_eq!(kill_listener(&schema, "follower").await, 1);
    let missed = on_writer
        .create(FOLDERS[2], "while-not-listening")
        .await
        .expect("created");
    // The reconnect's catch-up reads what was missed: the poll is an hour away.
    eventually(&mut on_follower, &missed).await;
    wait_until(|| async {
        metric(&follower, "image_service_replica_listener_connects_total").await == 2.0
    })
    .await;
    assert_eq!(on_follower.in_step().await, ServingStatus::Serving);
    // And notifications flow again.
    let after = on_writer
        .create(FOLDERS[2], "after-the-reconnect")
        .await
        .expect("created");
    eventually(&mut on_follower, &after).await;

    follower.stop().await;
    writer.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_notifications_a_replica_polls() {
    let Some(schema) = demo_schema("replica_polls").await else {
        return;
    };
    let polling = FollowSettings {
        poll_interval: Duration::from_millis(100),
        listen: false,
    };
    let writer = replica(&schema.url, notified_only()).await;
    let poller = replica(&schema.url, polling).await;
    let (mut on_writer, mut on_poller) = (Clients::of(&writer).await, Clients::of(&poller).await);
    let id = on_writer
        .create(FOLDERS[2], "polled")
        .await
        .expect("created");
    eventually(&mut on_poller, &id).await;
    assert_eq!(
        metric(&poller, "image_service_replica_listening").await,
        0.0
    );
    assert_eq!(on_poller.in_step().await, ServingStatus::Serving);
    poller.stop().await;
    writer.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_catalog_import_reloads_the_replicas() {
    let Some(schema) = demo_schema("import_reloads_replicas").await else {
        return;
    };
    let cached = replica(&schema.url, notified_only()).await;
    let mut clients = Clients::of(&cached).await;
    let mut catalog = common::demo_catalog_json();
    let first = catalog["computeImages"][0].clone();
    let mut added = first.clone();
    added["id"] = "fd8importedl8ter0001".into();
    added["name"] = "imported-later".into();
    catalog["computeImages"]
        .as_array_mut()
        .expect("a list")
        .push(added);
    let catalog = Catalog::from_json("test", &catalog.to_string()).expect("valid");
    postgres::import_catalog(&schema.database(), &catalog, ImportMode::Upsert)
        .await
        .expect("imports");
    eventually(&mut clients, "fd8importedl8ter0001").await;
    assert_eq!(
        metric(&cached, "image_service_replica_reloads_total").await,
        1.0
    );
    cached.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_a_database_outage_reads_go_on_and_writes_wait() {
    let Some(schema) = demo_schema("replica_outage").await else {
        return;
    };
    let proxy = Proxy::start(pg_support::database_addr(&schema.url)).await;
    let follow = FollowSettings {
        poll_interval: Duration::from_millis(200),
        listen: true,
    };
    let cut_off = replica(&pg_support::url_via(&schema.url, proxy.addr), follow).await;
    let other = replica(&schema.url, follow).await;
    let (mut on_cut_off, mut on_other) = (Clients::of(&cut_off).await, Clients::of(&other).await);
    let before = on_cut_off
        .create(FOLDERS[2], "before-the-outage")
        .await
        .expect("created");

    proxy.set(Mode::Down);
    wait_until(|| async {
        metric(&cut_off, "image_service_replica_database_reachable").await == 0.0
    })
    .await;
    // Reads from memory; the image services stay SERVING, "in step" does not.
    assert_eq!(
        on_cut_off.get(&before).await.map(|i| i.name),
        Ok("before-the-outage".into())
    );
    let listed = on_cut_off
        .images
        .list(compute::ListImagesRequest {
            folder_id: FOLDERS[0].into(),
            ..Default::default()
        })
        .await
        .expect("List is answered from memory")
        .into_inner();
    let in_folder = Catalog::demo()
        .expect("the demo catalog")
        .compute_images
        .iter()
        .filter(|image| image.folder_id == FOLDERS[0])
        .count();
    assert!(in_folder > 0);
    assert_eq!(listed.images.len(), in_folder);
    assert_eq!(on_cut_off.in_step().await, ServingStatus::NotServing);
    let serving = on_cut_off
        .health
        .check(HealthCheckRequest {
            service: "yandex.cloud.compute.v1.ImageService".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(serving, ServingStatus::Serving as i32);
    // Writes answer UNAVAILABLE at once, saying why.
    let started = Instant::now();
    let refused = on_cut_off
        .create(FOLDERS[2], "during-the-outage")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("from memory"),
        "{}",
        refused.message()
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The age of the data grows, and says so.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(metric(&cut_off, "image_service_replica_data_age_seconds").await >= 1.0);

    // Meanwhile the database moves on, beyond what its change record keeps.
    let during = on_other
        .create(FOLDERS[2], "written-during-the-outage")
        .await
        .expect("created");
    schema
        .count(
            "WITH gone AS (DELETE FROM {schema}.image_changes RETURNING seq) \
             SELECT count(*) FROM gone",
        )
        .await;
    schema
        .count(
            "WITH moved AS (UPDATE {schema}.image_change_sequence SET pruned_through = seq \
             RETURNING seq) SELECT count(*) FROM moved",
        )
        .await;

    proxy.set(Mode::Up);
    // Back: caught up (by loading everything again) before it says in step.
    eventually(&mut on_cut_off, &during).await;
    wait_until(|| async { metric(&cut_off, "image_service_replica_in_step").await == 1.0 }).await;
    assert_eq!(on_cut_off.in_step().await, ServingStatus::Serving);
    assert_eq!(
        metric(&cut_off, "image_service_replica_reloads_total").await,
        1.0
    );
    on_cut_off
        .create(FOLDERS[2], "after-the-outage")
        .await
        .expect("writes again");

    other.stop().await;
    cut_off.stop().await;
    schema.drop().await;
}

/// Waits until image `id` is served by `clients`.
async fn eventually(clients: &mut Clients, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while clients.get(id).await.is_err() {
        assert!(Instant::now() < deadline, "image {id} never showed up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until<F, Fut>(condition: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "the condition never held");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_binary_logs_the_age_of_its_data_through_an_outage() {
    let Some(schema) = demo_schema("replica_outage_log").await else {
        return;
    };
    let proxy = Proxy::start(pg_support::database_addr(&schema.url)).await;
    let url = pg_support::url_via(&schema.url, proxy.addr);
    let mut server = tokio::task::block_in_place(|| {
        Server::start(&[
            "--database-url",
            &url,
            "--cache",
            "--cache-poll-interval",
            "200ms",
        ])
    });
    proxy.set(Mode::Down);
    let warned = tokio::task::block_in_place(|| {
        server.wait_for(|line| {
            line["level"] == "WARN"
                && line["message"].as_str().is_some_and(|m| {
                    m.contains("the database is out of reach; serving reads from memory")
                })
        })
    });
    assert!(warned["data_age_seconds"].as_u64().is_some(), "{warned}");
    proxy.set(Mode::Up);
    tokio::task::block_in_place(|| {
        server.wait_for(|line| {
            line["message"] == "cached replica: the database is back and this replica has caught up"
        })
    });
    assert!(server.terminate().success());
    schema.drop().await;
}

#[tokio::test]
async fn changes_older_than_the_retention_are_pruned_and_the_floor_recorded() {
    let Some(schema) = demo_schema("changes_pruned").await else {
        return;
    };
    let database = schema.database();
    // The import recorded one change (shard 0); make it two hours old, and
    // record a fresh one beside it.
    schema
        .count("WITH aged AS (UPDATE {schema}.image_changes SET changed_at_ms = 0 RETURNING 1) SELECT count(*) FROM aged")
        .await;
    let catalog = Catalog::demo().expect("the demo catalog");
    postgres::import_catalog(&database, &catalog, ImportMode::Upsert)
        .await
        .expect("imports");
    assert_eq!(
        schema
            .count("SELECT count(*) FROM {schema}.image_changes")
            .await,
        2
    );
    assert_eq!(
        postgres::changes::prune(&database).await.expect("prunes"),
        1
    );
    assert_eq!(
        schema
            .count("SELECT count(*) FROM {schema}.image_changes")
            .await,
        1
    );
    assert_eq!(
        schema
            .count("SELECT pruned_through FROM {schema}.image_change_sequence WHERE shard = 0")
            .await,
        1,
        "the floor is the newest number pruned"
    );
    assert_eq!(
        postgres::changes::prune(&database).await.expect("prunes"),
        0
    );
    schema.drop().await;
}
