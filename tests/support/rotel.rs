//! The `rotel` OpenTelemetry collector for end-to-end tests.
//!
//! rotel ships as a Python wheel; the first test that needs it installs it with
//! `python3 -m pip install --target <target>/tmp/rotel-<version> rotel==<version>`, once per
//! build directory: a file lock serialises concurrent test binaries, and a marker file records
//! a finished install. A failed install fails the test with pip's output.

#![allow(dead_code)] // each test binary uses a different part

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The rotel release the tests run against.
pub const ROTEL_VERSION: &str = "0.0.1a15";

/// The `rotel-agent` executable, installed on first use.
pub fn rotel_agent() -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rotel-{ROTEL_VERSION}"));
    let agent = root.join("rotel").join("rotel-agent");
    let done = root.join(".installed");
    std::fs::create_dir_all(&root).expect("create the rotel directory");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.with_extension("lock"))
        .expect("open the rotel install lock");
    lock.lock().expect("take the rotel install lock");
    if !done.exists() {
        let output = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg("--target")
            .arg(&root)
            .arg(format!("rotel=={ROTEL_VERSION}"))
            .output();
        match output {
            Ok(out) if out.status.success() && agent.exists() => {
                File::create(&done).expect("mark the rotel install done");
            }
            Ok(out) => panic!(
                "installing rotel {ROTEL_VERSION} with pip failed ({}); the end-to-end tests \
                 need python3 with pip and access to PyPI (see DEVELOPERS.md)\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!(
                "cannot run python3 to install rotel {ROTEL_VERSION}: {e}; the end-to-end tests \
                 need python3 with pip (see DEVELOPERS.md)"
            ),
        }
    }
    drop(lock);
    agent
}

/// A port that was free a moment ago (rotel takes its listen addresses as arguments).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// A running rotel that receives OTLP and forwards it, over gRPC, to `forward_to`.
pub struct Rotel {
    child: Child,
    /// Where rotel receives OTLP/gRPC.
    pub grpc: SocketAddr,
    /// Where rotel receives OTLP/HTTP.
    pub http: SocketAddr,
    dir: PathBuf,
}

impl Rotel {
    /// Starts rotel and waits until both receivers accept connections.
    ///
    /// The listen ports were free when picked, but another process (another test's rotel
    /// connecting out, say) can take one before rotel binds it. Then rotel exits at start-up,
    /// and it is started again on fresh ports, a few times before the test fails.
    pub fn start(forward_to: SocketAddr, dir: &Path) -> Self {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start(forward_to, dir) {
                Ok(rotel) => return rotel,
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "rotel exited at start-up 3 times: {}",
            failures.join("\n---\n")
        );
    }

    fn try_start(forward_to: SocketAddr, dir: &Path) -> Result<Self, String> {
        let agent = rotel_agent();
        let grpc: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let http: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(&agent)
            .arg("start")
            .args(["--otlp-grpc-endpoint", &grpc.to_string()])
            .args(["--otlp-http-endpoint", &http.to_string()])
            .args(["--exporter", "otlp"])
            .args(["--otlp-exporter-endpoint", &format!("http://{forward_to}")])
            .args(["--otlp-exporter-protocol", "grpc"])
            .args(["--otlp-exporter-compression", "none"])
            .args(["--batch-timeout", "50ms"])
            .arg("--pid-file")
            .arg(dir.join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.join("rotel.log"))
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("rotel.out")).expect("rotel stdout file"))
            .stderr(File::create(dir.join("rotel.err")).expect("rotel stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent.display()));
        let mut rotel = Rotel {
            child,
            grpc,
            http,
            dir: dir.to_owned(),
        };
        rotel.wait_until_listening()?;
        Ok(rotel)
    }

    /// `Err` with rotel's output if it exited before listening.
    fn wait_until_listening(&mut self) -> Result<(), String> {
        // Generous: only a rotel that never comes up fails here.
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("({status}) {}", self.output()));
            }
            let up = |addr| TcpStream::connect_timeout(addr, Duration::from_millis(200)).is_ok();
            if up(&self.grpc) && up(&self.http) {
                return Ok(());
            }
            if Instant::now() > give_up {
                panic!(
                    "rotel did not listen on {} and {}: {}",
                    self.grpc,
                    self.http,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What rotel printed so far, for failure messages.
    pub fn output(&self) -> String {
        let mut text = String::new();
        for name in ["rotel.out", "rotel.err"] {
            if let Ok(mut f) = File::open(self.dir.join(name)) {
                let _ = f.read_to_string(&mut text);
            }
        }
        text
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
