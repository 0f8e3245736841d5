use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

use image_service::catalog::Catalog;
use image_service::config::{CheckCatalogArgs, Cli, Command, ServeArgs};
use image_service::domain::container::registry_of;
use image_service::startup::{Application, StartupError};
use image_service::telemetry;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::CheckCatalog(args) => check_catalog(&args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    telemetry::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&format!("cannot start the async runtime: {err}")),
    };
    let result = runtime.block_on(async {
        let signal = shutdown_signal().map_err(StartupError::Signals)?;
        let app = Application::build(&args).await?;
        app.run_until(signal).await
    });
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
    let mut folders: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for image in &catalog.compute_images {
        *folders
            .entry(&image.folder_id)
            .or_default()
            .entry(&image.family)
            .or_default() += 1;
    }
    for (folder, families) in folders {
        println!("  compute folder {folder}:");
        for (family, count) in families {
            let family = if family.is_empty() {
                "(no family)"
            } else {
                family
            };
            println!("    {family}: {count} images");
        }
    }
    let mut repositories: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &catalog.container_images {
        *repositories.entry(&image.name).or_default() += 1;
    }
    for (repository, count) in repositories {
        println!("  container repository {repository}: {count} images");
    }
    let mut per_registry: BTreeMap<&str, usize> = BTreeMap::new();
    for image in &catalog.container_images {
        if let Some(registry) = registry_of(&image.name) {
            *per_registry.entry(registry).or_default() += 1;
        }
    }
    for registry in &catalog.container_registries {
        let count = per_registry.get(registry.id.as_str()).copied().unwrap_or(0);
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
