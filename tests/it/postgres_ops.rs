//! Running on PostgreSQL: migrations, `import` (validation, all or nothing,
//! `--replace`), `export` (exact round trip), and failures: a database that is
//! not there, one that goes away and comes back (through a TCP proxy the test
//! cuts), a page token whose image is gone.

use crate::common;
use crate::list_support;
use crate::pg_support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{TestApp, test_settings, write_temp};
use image_service::app::Settings;
use image_service::app::{Application, SERVED_SERVICES};
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::proto::{compute, container_registry};
use image_service::store::catalog::{Catalog, ImageList};
use image_service::store::postgres::{self, Database, ImportMode};
use list_support::{BIG_FOLDER, big_compute_catalog, compute_list};
use pg_support::{Mode, Proxy, TestSchema, closed_port, database_addr, quick_pool, url_via};
use tonic::Code;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

fn binary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_image-service"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs the binary")
}

#[track_caller]
fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn export_text(url: &str) -> String {
    let out = binary(&["export", "--database-url", url]);
    assert_success(&out);
    String::from_utf8(out.stdout).expect("UTF-8 export")
}

const SMALL: &str = r#"{
  "computeImages": [
    {"id": "fd8aaaaaaaaaaaaaaaaa", "folderId": "f1", "name": "a", "family": "fam-a",
     "status": "READY", "createdAt": "2025-01-01T00:00:00.123456789Z", "labels": {"x": "1", "y": "2"}},
    {"id": "fd8bbbbbbbbbbbbbbbbb", "folderId": "f1", "name": "b", "status": "CREATING"}
  ],
  "containerRegistryImages": [
    {"id": "crpimage000000000001", "name": "crpreg/app", "digest": "sha256:01", "tags": ["v1"]}
  ],
  "containerRegistries": [{"id": "crpreg", "folderId": "f1", "name": "reg"}]
}"#;

#[tokio::test]
async fn migrations_run_once_even_from_many_replicas_at_once() {
    let Some(schema) = TestSchema::create("migrations_run_once").await else {
        return;
    };
    let database = schema.database();
    let runs = (0..4).map(|_| {
        let database = database.clone();
        tokio::spawn(async move { postgres::migrate(&database).await })
    });
    let mut applied = 0;
    for run in runs {
        applied += run.await.expect("task").expect("migrates");
    }
    assert_eq!(applied, postgres::MIGRATIONS.len());
    assert_eq!(
        schema
            .count("SELECT count(*) FROM {schema}.schema_migrations")
            .await,
        postgres::MIGRATIONS.len() as i64
    );
    let out = binary(&["migrate", "--database-url", &schema.url]);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 migration(s) applied"),
        "{out:?}"
    );
    schema.drop().await;
}

/// Replicas that start together each run `migrate` on an empty schema: every
/// one must succeed. Before the lock was taken ahead of the bookkeeping table,
/// one or two of three failed on `pg_type_typname_nsp_index` in most rounds.
#[tokio::test]
async fn migrate_processes_started_together_all_succeed() {
    const ROUNDS: usize = 6;
    const REPLICAS: usize = 3;
    for round in 0..ROUNDS {
        let Some(schema) = TestSchema::create(&format!("migrate_together_{round}")).await else {
            return;
        };
        let children: Vec<_> = (0..REPLICAS)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_image-service"))
                    .args(["migrate", "--database-url", &schema.url])
                    .env("RUST_LOG", "warn")
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("starts the binary")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("waits for migrate");
            assert_success(&out);
        }
        assert_eq!(
            schema
                .count("SELECT count(*) FROM {schema}.schema_migrations")
                .await,
            postgres::MIGRATIONS.len() as i64,
            "round {round}"
        );
        schema.drop().await;
    }
}

#[tokio::test]
async fn import_validates_and_is_all_or_nothing() {
    let Some(schema) = TestSchema::create("import_validates_and_is_all_or_nothing").await else {
        return;
    };
    let good = write_temp(SMALL);
    assert_success(&binary(&[
        "import",
        "--database-url",
        &schema.url,
        good.path().to_str().expect("path"),
    ]));
    let before = export_text(&schema.url);
    assert!(before.contains("fd8aaaaaaaaaaaaaaaaa"), "{before}");

    // Refused by the catalog's validation (duplicate id), as `serve --catalog` would.
    let duplicate = write_temp(
        r#"{"computeImages": [{"id": "fd8new", "name": "n"}, {"id": "fd8new", "name": "m"}]}"#,
    );
    let out = binary(&[
        "import",
        "--database-url",
        &schema.url,
        "--replace",
        duplicate.path().to_str().expect("path"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("duplicate id"), "{stderr}");
    assert_eq!(export_text(&schema.url), before);

    // Valid for the catalog, refused by the database half-way (text can't hold
    // NUL): the compute images written before it are rolled back too.
    let half = write_temp(
        r#"{"computeImages": [{"id": "fd8ccccccccccccccccc", "folderId": "f1", "name": "c"}],
            "containerRegistryImages": [{"id": "crpbad", "name": "crpreg/a\u0000b"}]}"#,
    );
    let out = binary(&[
        "import",
        "--database-url",
        &schema.url,
        "--replace",
        half.path().to_str().expect("path"),
    ]);
    assert!(!out.status.success(), "{out:?}");
    assert_eq!(export_text(&schema.url), before);

    // Upsert: new ids added, known ids updated, the rest kept.
    let update = write_temp(
        r#"{"computeImages": [{"id": "fd8bbbbbbbbbbbbbbbbb", "folderId": "f1", "name": "b2", "status": "READY"},
                              {"id": "fd8ddddddddddddddddd", "folderId": "f2", "name": "d"}]}"#,
    );
    assert_success(&binary(&[
        "import",
        "--database-url",
        &schema.url,
        update.path().to_str().expect("path"),
    ]));
    let merged = Catalog::from_json("export", &export_text(&schema.url)).expect("valid export");
    let names: Vec<(String, String)> = merged
        .compute_images
        .iter()
        .map(|i| (i.id, i.name))
        .collect();
    let names: Vec<(&str, &str)> = names
        .iter()
        .map(|(i, n)| (i.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("fd8aaaaaaaaaaaaaaaaa", "a"),
            ("fd8bbbbbbbbbbbbbbbbb", "b2"),
            ("fd8ddddddddddddddddd", "d")
        ]
    );
    assert_eq!(merged.container_images.len(), 1);

    // Replace: exactly the file.
    assert_success(&binary(&[
        "import",
        "--database-url",
        &schema.url,
        "--replace",
        update.path().to_str().expect("path"),
    ]));
    let replaced = Catalog::from_json("export", &export_text(&schema.url)).expect("valid export");
    assert_eq!(replaced.compute_images.len(), 2);
    assert!(replaced.container_images.is_empty());
    assert!(replaced.container_registries.is_empty());
    schema.drop().await;
}

#[tokio::test]
async fn export_round_trips_exactly() {
    let Some(first) = TestSchema::create("export_round_trips_exactly").await else {
        return;
    };
    let Some(second) = TestSchema::create("export_round_trips_exactly").await else {
        return;
    };
    let mut catalog = Catalog::demo().expect("demo");
    let mut compute: Vec<compute::Image> = catalog.compute_images.iter().collect();
    compute.extend(big_compute_catalog());
    compute.extend(
        Catalog::from_json("small", SMALL)
            .expect("valid")
            .compute_images
            .iter(),
    );
    catalog.compute_images = compute_list(compute);
    let database = first.migrated().await;
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports");

    let exported = first.url.clone();
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let path = file.path().to_str().expect("path");
    assert_success(&binary(&["export", "--database-url", &exported, path]));
    let text = std::fs::read_to_string(path).expect("export written");
    assert_success(&binary(&["import", "--database-url", &second.url, path]));
    assert_eq!(
        export_text(&second.url),
        text,
        "import → export → import → export"
    );
    assert_eq!(export_text(&exported), text, "exports are stable");

    // The same images, in id order, field for field (nanoseconds, labels, ...).
    let mut expected = catalog.clone();
    let mut compute: Vec<compute::Image> = expected.compute_images.iter().collect();
    compute.sort_by(|a, b| a.id.cmp(&b.id));
    expected.compute_images = compute_list(compute);
    let mut container: Vec<_> = expected.container_images.iter().collect();
    container.sort_by(|a, b| a.id.cmp(&b.id));
    expected.container_images =
        ImageList::from_images(container, |i: &container_registry::Image| &i.id).expect("unique");
    expected
        .container_registries
        .sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        Catalog::from_json("export", &text).expect("valid"),
        expected
    );
    first.drop().await;
    second.drop().await;
}

async fn health(app: &TestApp, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(app.channel().await);
    let reply = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?;
    ServingStatus::try_from(reply.into_inner().status).ok()
}

/// Polls until every served service reports `wanted`, for at most `limit`.
async fn wait_for_health(app: &TestApp, wanted: ServingStatus, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = true;
        for service in SERVED_SERVICES.iter().chain(&[""]) {
            all &= health(app, service).await == Some(wanted);
        }
        if all {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "health not {wanted:?} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(app: &TestApp) -> u16 {
    reqwest::get(app.http_url("/readyz"))
        .await
        .expect("readyz answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_not_there_answers_unavailable_quickly() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port().await);
    let database = Database::connect(&url, &quick_pool()).expect("valid URL");
    let app = TestApp::with_database(database).await;
    let mut client = ImageServiceClient::new(app.channel().await);
    let start = Instant::now();
    let err = client
        .get(compute::GetImageRequest {
            image_id: "fd824k6uqk9cvi1ise4i".into(),
        })
        .await
        .expect_err("no database");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("database"), "{}", err.message());
    let err = client
        .list(compute::ListImagesRequest {
            folder_id: "standard-images".into(),
            ..Default::default()
        })
        .await
        .expect_err("no database");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");

    wait_for_health(&app, ServingStatus::NotServing, Duration::from_secs(5)).await;
    assert_eq!(readyz(&app).await, 503);
    let rest = reqwest::get(app.http_url("/compute/v1/images/fd824k6uqk9cvi1ise4i"))
        .await
        .expect("REST answers");
    assert_eq!(rest.status().as_u16(), 503);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_migrate_refuses_a_schema_that_is_not_migrated() {
    let Some(schema) = TestSchema::create("no_migrate_refuses_a_schema").await else {
        return;
    };
    let mut settings = Settings {
        database_url: Some(schema.url.clone()),
        no_migrate: true,
        pool: quick_pool(),
        ..test_settings(None)
    };
    let err = Application::build(&settings)
        .await
        .err()
        .expect("not migrated");
    assert!(err.to_string().contains("image-service migrate"), "{err}");
    settings.no_migrate = false;
    let app = TestApp::from_application(Application::build(&settings).await.expect("migrates"));
    app.stop().await;
    settings.no_migrate = true;
    let app = TestApp::from_application(Application::build(&settings).await.expect("migrated"));
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_waits_for_the_database_then_gives_up() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port().await);
    let settings = Settings {
        database_url: Some(url),
        database_startup_timeout: Duration::from_secs(2),
        pool: quick_pool(),
        ..test_settings(None)
    };
    let start = Instant::now();
    let err = Application::build(&settings)
        .await
        .err()
        .expect("no database, no server");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert!(err.to_string().contains("did not answer within"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_survives_the_database_going_away_and_coming_back() {
    let Some(schema) = TestSchema::create("serving_survives_the_database_going_away").await else {
        return;
    };
    let database = schema.migrated().await;
    postgres::import_catalog(
        &database,
        &Catalog::demo().expect("demo"),
        ImportMode::Replace,
    )
    .await
    .expect("imports");
    let proxy = Proxy::start(database_addr(&schema.url)).await;
    // Built as `serve` builds it, through the proxy: waits, migrates, watches.
    let settings = Settings {
        database_url: Some(url_via(&schema.url, proxy.addr)),
        pool: quick_pool(),
        ..test_settings(None)
    };
    let app = Application::build(&settings).await.expect("starts");
    let app = common::TestApp::from_application(app);
    let mut client = ImageServiceClient::new(app.channel().await);
    let get = compute::GetImageRequest {
        image_id: "fd824k6uqk9cvi1ise4i".into(),
    };
    assert!(client.get(get.clone()).await.is_ok());
    wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(3)).await;

    proxy.set(Mode::Down);
    let start = Instant::now();
    let err = client.get(get.clone()).await.expect_err("database cut off");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    wait_for_health(&app, ServingStatus::NotServing, Duration::from_secs(6)).await;
    assert_eq!(readyz(&app).await, 503);

    proxy.set(Mode::Up);
    let recovered = wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(8)).await;
    eprintln!("health SERVING again {recovered:?} after the database came back");
    assert_eq!(readyz(&app).await, 200);
    let image = client
        .get(get.clone())
        .await
        .expect("served again")
        .into_inner();
    assert_eq!(image.id, "fd824k6uqk9cvi1ise4i");

    // A database that stops answering (connections open, nothing comes back):
    // calls still end, within the statement timeout plus the acquire timeout.
    proxy.set(Mode::Stalled);
    let start = Instant::now();
    let err = client.get(get.clone()).await.expect_err("database stalled");
    let waited = start.elapsed();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    eprintln!(
        "stalled database: UNAVAILABLE after {waited:?}: {}",
        err.message()
    );
    wait_for_health(&app, ServingStatus::NotServing, Duration::from_secs(6)).await;
    proxy.set(Mode::Up);
    wait_for_health(&app, ServingStatus::Serving, Duration::from_secs(8)).await;
    assert!(client.get(get).await.is_ok());
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_whose_image_is_gone_is_refused() {
    let Some(schema) = TestSchema::create("a_page_token_whose_image_is_gone").await else {
        return;
    };
    let database = schema.migrated().await;
    let mut catalog = Catalog {
        compute_images: compute_list(big_compute_catalog()),
        ..Catalog::default()
    };
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports");
    let app = TestApp::with_database(database.clone()).await;
    let mut client = ImageServiceClient::new(app.channel().await);
    let mut request = compute::ListImagesRequest {
        folder_id: BIG_FOLDER.into(),
        page_size: 5,
        order_by: "name desc".into(),
        ..Default::default()
    };
    let page = client
        .list(request.clone())
        .await
        .expect("lists")
        .into_inner();
    let last = page.images.last().expect("a full page").id.clone();
    request.page_token = page.next_page_token;

    catalog.compute_images = compute_list(catalog.compute_images.iter().filter(|i| i.id != last));
    postgres::import_catalog(&database, &catalog, ImportMode::Replace)
        .await
        .expect("imports");
    let err = client.list(request).await.expect_err("cursor gone");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("no longer exists"),
        "{}",
        err.message()
    );
    app.stop().await;
    schema.drop().await;
}

#[test]
fn catalog_and_database_url_are_exclusive_on_the_command_line() {
    let file = write_temp(SMALL);
    let out = binary(&[
        "serve",
        "--catalog",
        file.path().to_str().expect("path"),
        "--database-url",
        "postgres://postgres@127.0.0.1:1/test",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be used with"),
        "{out:?}"
    );
}
