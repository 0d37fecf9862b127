//! A throwaway `nats-server` with JetStream, for tests that need a real broker.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server` started for one test on a free loopback port with its own store directory,
/// killed (and its directory removed) when dropped.
///
/// The binary comes from `SAGA_NATS_SERVER`, else `nats-server` on `PATH`. Without one,
/// [`NatsServer::start`] returns `None` so the test can skip, except when `CI=true`, where a
/// missing broker fails the run.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    monitor_port: u16,
    store: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a broker, or says why it could not (`None`: no binary here, outside CI).
    pub fn start() -> Option<NatsServer> {
        let Some(binary) = find_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "nats-server is not installed (set SAGA_NATS_SERVER or put it on PATH); CI requires it"
                );
            }
            eprintln!("skipping: no nats-server binary (set SAGA_NATS_SERVER or put it on PATH)");
            return None;
        };
        // A free port may be taken by another test's broker before this one binds it: then
        // the broker exits, and it starts again on other ports.
        let mut tries = 0;
        loop {
            let port = free_port();
            let monitor_port = free_port();
            let store = std::env::temp_dir().join(format!("saga-nats-{}-{port}", std::process::id()));
            let mut server = NatsServer { binary: binary.clone(), port, monitor_port, store, child: None };
            match server.try_launch() {
                Ok(()) => return Some(server),
                Err(why) if tries < 4 => {
                    tries += 1;
                    eprintln!("nats-server on port {port}: {why}; trying other ports");
                }
                Err(why) => panic!("nats-server on port {port}: {why}"),
            }
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Where the broker's monitoring endpoint answers: `GET {this}/jsz?consumers=true` shows
    /// every stream and consumer with its delivered, acknowledged and pending counts.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// Kills the broker at once (`SIGKILL`), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// Starts the broker on its port, again after a moment if it could not bind it.
    fn launch(&mut self) {
        let mut tries = 0;
        while let Err(why) = self.try_launch() {
            tries += 1;
            assert!(tries < 5, "nats-server on port {}: {why}", self.port);
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts the broker and waits until it listens; says why not if it exited or did not
    /// listen within 30 s.
    fn try_launch(&mut self) -> Result<(), String> {
        let mut child = Command::new(&self.binary)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-m", &self.monitor_port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.binary.display()));
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited ({status}) before listening"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SAGA_NATS_SERVER") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("nats-server")).find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}
