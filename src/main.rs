//! `image-service`: see `image-service --help`, and `cli` for the commands.

fn main() -> std::process::ExitCode {
    image_service::cli::commands::run()
}
