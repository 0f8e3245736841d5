//! The real binary as a child process: started on port 0 with JSON logs,
//! its log lines read back, signals sent to it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_image-service");

pub struct Server {
    pub child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    pub addr: String,
    pub http_addr: String,
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
                "--shutdown-delay",
                "0s",
            ])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|err| panic!("log line is not JSON ({err}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            addr: String::new(),
            http_addr: String::new(),
        };
        let listening = server.wait_for(|line| line["message"] == "serving gRPC and REST");
        server.addr = listening["grpc"].as_str().unwrap().to_owned();
        server.http_addr = listening["http"].as_str().unwrap().to_owned();
        assert!(!server.addr.ends_with(":0"), "the real port is logged");
        assert!(!server.http_addr.ends_with(":0"), "the real port is logged");
        server
    }

    pub fn wait_for(&mut self, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .expect("expected log line within 10 s");
            if want(&line) {
                return line;
            }
        }
    }

    /// Lines logged within `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(wait) {
            out.push(line);
        }
        out
    }

    pub fn signal_term(&self) {
        self.signal("TERM");
    }

    /// Sends the signal named `name` (TERM, HUP, ...) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {pid}");
    }

    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        self.child.wait().expect("server exits")
    }
}

impl Drop for Server {
    /// A failed test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
