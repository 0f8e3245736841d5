//! The one-shot commands (`check-catalog`, `migrate`, `import`, `export`,
//! `hash-token`) and `serve`, which runs the [`Application`] until a signal.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

use super::args::{CheckCatalogArgs, Cli, Command, ExportArgs, ImportArgs, MigrateArgs, ServeArgs};
use crate::app::{Application, StartupError};
use crate::domain::container::registry_of;
use crate::ops::telemetry;
use crate::store::catalog::Catalog;
use crate::store::postgres::{self, Database, ImportMode, PoolSettings};
use crate::transport::auth::TokenDigest;

/// Runs the command the command line names.
pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::CheckCatalog(args) => check_catalog(&args),
        Command::Migrate(args) => run_database_command(migrate(args)),
        Command::Import(args) => run_database_command(import(args)),
        Command::Export(args) => run_database_command(export(args)),
        Command::HashToken => hash_token(),
        Command::Openapi => openapi(),
    }
}

fn openapi() -> ExitCode {
    match crate::app::openapi_document() {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&format!("cannot make the OpenAPI document: {err}")),
    }
}

/// A pool on the database of a one-shot command, its schema migrated when `migrated`.
async fn database(url: &str, pool: PoolSettings, migrated: bool) -> Result<Database, String> {
    let database = Database::connect(url, &pool).map_err(|e| e.to_string())?;
    if migrated {
        let applied = postgres::migrate(&database)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(applied, "schema up to date");
    }
    Ok(database)
}

/// Prints the digest of the token on standard input (one line; the line end
/// is not part of the token), for the --auth-tokens file.
fn hash_token() -> ExitCode {
    use std::io::Read as _;
    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut input) {
        return fail(&format!("cannot read the token from standard input: {err}"));
    }
    let token = input.strip_suffix(b"\n").unwrap_or(&input);
    let token = token.strip_suffix(b"\r").unwrap_or(token);
    if token.is_empty() || !token.iter().all(u8::is_ascii_graphic) {
        return fail(
            "the token on standard input must be one line of visible ASCII (no spaces), as sent in authorization: Bearer <token>",
        );
    }
    println!("{}", TokenDigest::of(token).to_hex());
    ExitCode::SUCCESS
}

/// Runs one of the database commands, logging on stderr.
fn run_database_command(command: impl Future<Output = Result<(), String>>) -> ExitCode {
    telemetry::init_stderr();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

async fn migrate(args: MigrateArgs) -> Result<(), String> {
    let database = database(&args.database_url, args.pool.settings(), false).await?;
    let applied = postgres::migrate(&database)
        .await
        .map_err(|e| e.to_string())?;
    eprintln!(
        "schema up to date: {applied} migration(s) applied, {} known",
        postgres::MIGRATIONS.len()
    );
    Ok(())
}

async fn import(args: ImportArgs) -> Result<(), String> {
    // Validated before the database is touched: a bad file changes nothing.
    let catalog = Catalog::from_file(&args.file).map_err(|e| e.to_string())?;
    let database = database(&args.database_url, args.pool.settings(), true).await?;
    let mode = if args.replace {
        ImportMode::Replace
    } else {
        ImportMode::Upsert
    };
    postgres::import_catalog(&database, &catalog, mode)
        .await
        .map_err(|e| e.to_string())?;
    let verb = if args.replace {
        "replaced the catalog with"
    } else {
        "imported"
    };
    eprintln!("{}: {verb} {}", args.file.display(), catalog.summary());
    Ok(())
}

async fn export(args: ExportArgs) -> Result<(), String> {
    let database = database(&args.database_url, args.pool.settings(), false).await?;
    let catalog = postgres::export_catalog(&database)
        .await
        .map_err(|e| e.to_string())?;
    let json = catalog.to_json().map_err(|e| e.to_string())?;
    match &args.file {
        Some(path) => {
            std::fs::write(path, json)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            eprintln!("{}: exported {}", path.display(), catalog.summary());
        }
        None => {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(json.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("cannot write to standard output: {e}"))?;
        }
    }
    Ok(())
}

fn serve(args: ServeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    // The span exporter's gRPC client runs on this runtime.
    let telemetry = {
        let _runtime = runtime.enter();
        match telemetry::init(
            args.log_format,
            args.otlp_endpoint.as_deref(),
            args.otlp_ca.as_deref(),
        ) {
            Ok(telemetry) => telemetry,
            Err(err) => return fail(&err.to_string()),
        }
    };
    let result = runtime.block_on(async {
        let signal = shutdown_signal().map_err(StartupError::Signals)?;
        let app = Application::build(&args.settings()).await?;
        app.run_until(signal).await
    });
    // Sends the spans still batched while the runtime (and its client) is alive.
    telemetry.shutdown();
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err.to_string()),
    }
}

/// Registers the SIGINT and SIGTERM handlers now, before anything is served, so
/// an early signal is never met by the default action (exit without draining);
/// the returned future resolves when one arrives.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown signal received");
    })
}

fn check_catalog(args: &CheckCatalogArgs) -> ExitCode {
    let catalog = match Catalog::from_file(&args.file) {
        Ok(catalog) => catalog,
        Err(err) => return fail(&err.to_string()),
    };
    println!("{}: valid, {}", args.file.display(), catalog.summary());
    let mut folders: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for image in catalog.compute_images.iter() {
        *folders
            .entry(image.folder_id)
            .or_default()
            .entry(image.family)
            .or_default() += 1;
    }
    for (folder, families) in folders {
        println!("  compute folder {folder}:");
        for (family, count) in families {
            let family = if family.is_empty() {
                "(no family)"
            } else {
                &family
            };
            println!("    {family}: {count} images");
        }
    }
    let mut repositories: BTreeMap<String, usize> = BTreeMap::new();
    for image in catalog.container_images.iter() {
        *repositories.entry(image.name).or_default() += 1;
    }
    for (repository, count) in repositories {
        println!("  container repository {repository}: {count} images");
    }
    let mut per_registry: BTreeMap<String, usize> = BTreeMap::new();
    for image in catalog.container_images.iter() {
        if let Some(registry) = registry_of(&image.name) {
            *per_registry.entry(registry.to_owned()).or_default() += 1;
        }
    }
    for registry in &catalog.container_registries {
        let count = per_registry.get(&registry.id).copied().unwrap_or(0);
        println!(
            "  container registry {} in folder {}: {count} images",
            registry.id, registry.folder_id
        );
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("image-service: error: {message}");
    ExitCode::FAILURE
}
