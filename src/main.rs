use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

use image_service::catalog::Catalog;
use image_service::config::{CheckCatalogArgs, Cli, Command, ServeArgs};
use image_service::startup::Application;
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
        let app = Application::build(&args).await?;
        app.run_until(shutdown_signal()).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err.to_string()),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown signal received, finishing calls in flight");
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
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("image-service: error: {message}");
    ExitCode::FAILURE
}
