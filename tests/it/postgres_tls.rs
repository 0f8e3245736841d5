//! TLS to the real PostgreSQL server, set in the URL the libpq way (`sslmode`,
//! `sslrootcert`). The local server (Debian's) speaks TLS with its snake-oil
//! certificate, self-signed for `localhost`, which serves as the root here.

use crate::common;
use crate::pg_support;

use std::process::Command;

use common::TestApp;
use image_service::proto::compute::GetImageRequest;
use image_service::proto::compute::image_service_client::ImageServiceClient;
use image_service::store::postgres::{self, Database};
use pg_support::{TestSchema, quick_pool};

/// The certificate the local server presents (its `ssl_cert_file`).
const SERVER_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

const CATALOG: &str = r#"{"computeImages": [
  {"id": "fd8tls00000000000001", "folderId": "f1", "name": "over-tls", "status": "READY"}
]}"#;

/// The schema's URL with the host replaced and `params` appended.
fn tls_url(schema: &TestSchema, host: &str, params: &str) -> String {
    let url = schema.url.replacen("127.0.0.1", host, 1);
    format!("{url}&{params}")
}

/// A plaintext connection to look at the server with.
async fn admin(schema: &TestSchema) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

/// A schema of the test's own on a server that speaks TLS with the
/// certificate these tests expect.
async fn tls_schema(test: &str) -> Option<TestSchema> {
    let schema = TestSchema::create(test).await?;
    let row = admin(&schema)
        .await
        .query_one(
            "SELECT current_setting('ssl'), current_setting('ssl_cert_file')",
            &[],
        )
        .await
        .expect("reads the settings");
    let (ssl, cert): (String, String) = (row.get(0), row.get(1));
    assert_eq!(ssl, "on", "the local PostgreSQL has ssl off");
    assert_eq!(
        cert, SERVER_CERT,
        "these tests expect the local server's certificate"
    );
    Some(schema)
}

/// Connections of `application` open now, and how many of them use TLS.
async fn connections_of(schema: &TestSchema, application: &str) -> (i64, i64) {
    let row = admin(schema)
        .await
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = $1",
            &[&application],
        )
        .await
        .expect("reads pg_stat_ssl");
    (row.get(0), row.get(1))
}

fn migrate_with_binary(url: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_image-service"))
        .args(["migrate", "--database-url", url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs the binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_serves_over_an_encrypted_verified_connection() {
    let Some(schema) = tls_schema("verify_full").await else {
        return;
    };
    let application = format!("tls-test-{}", uuid::Uuid::new_v4().simple());
    let url = tls_url(
        &schema,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={SERVER_CERT}&application_name={application}"),
    );
    // The binary's commands take the same URL.
    let (migrated, stderr) = migrate_with_binary(&url);
    assert!(migrated, "{stderr}");
    let database = Database::connect(&url, &quick_pool()).expect("valid URL");
    postgres::import_catalog(
        &database,
        &image_service::store::catalog::Catalog::from_json("tls.json", CATALOG).unwrap(),
        postgres::ImportMode::Upsert,
    )
    .await
    .expect("imports over TLS");

    let app = TestApp::with_database(database).await;
    let mut client = ImageServiceClient::new(app.channel().await);
    let image = client
        .get(GetImageRequest {
            image_id: "fd8tls00000000000001".into(),
        })
        .await
        .expect("Get over a TLS database connection")
        .into_inner();
    assert_eq!(image.name, "over-tls");

    let (open, encrypted) = connections_of(&schema, &application).await;
    assert!(open >= 1, "the pool keeps its connection open");
    assert_eq!(encrypted, open, "every connection of ours uses TLS");
    app.stop().await;
    schema.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_is_checked_as_sslmode_says() {
    let Some(schema) = tls_schema("tls_checks").await else {
        return;
    };

    // verify-full checks the host name: the certificate is for localhost only.
    let (ok, stderr) = migrate_with_binary(&tls_url(
        &schema,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={SERVER_CERT}"),
    ));
    assert!(!ok, "verify-full accepted a certificate for another name");
    assert!(stderr.contains("certificate"), "{stderr}");
    // verify-ca checks the chain only.
    let (ok, stderr) = migrate_with_binary(&tls_url(
        &schema,
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={SERVER_CERT}"),
    ));
    assert!(ok, "{stderr}");

    // A root that did not issue the server's certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_ca = common::write_temp(&other.cert.pem());
    let other_ca = other_ca.path().to_str().unwrap().to_owned();
    for mode in ["verify-ca", "verify-full", "require"] {
        let (ok, stderr) = migrate_with_binary(&tls_url(
            &schema,
            "localhost",
            &format!("sslmode={mode}&sslrootcert={other_ca}"),
        ));
        assert!(!ok, "{mode} accepted a certificate from another root");
        assert!(stderr.contains("certificate"), "{mode}: {stderr}");
    }

    // require without a root: encrypted, the certificate not checked (libpq's meaning).
    let application = format!("tls-require-{}", uuid::Uuid::new_v4().simple());
    let url = tls_url(
        &schema,
        "127.0.0.1",
        &format!("sslmode=require&application_name={application}"),
    );
    let database = Database::connect(&url, &quick_pool()).expect("valid URL");
    postgres::check_schema(&database)
        .await
        .expect("connects with require");
    let (open, encrypted) = connections_of(&schema, &application).await;
    assert!(
        open >= 1 && encrypted == open,
        "{open} open, {encrypted} encrypted"
    );

    // A root file that can't be read stops the command, naming it.
    let (ok, stderr) = migrate_with_binary(&tls_url(
        &schema,
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
    ));
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/root.crt"), "{stderr}");
    schema.drop().await;
}
