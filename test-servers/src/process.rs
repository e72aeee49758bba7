//! Starting a server program on a free port and waiting until it listens.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

/// Whether a missing server program fails the test rather than skipping it.
pub(crate) fn servers_required() -> bool {
    std::env::var("TELEDIAG_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// `None` (and a message) when `program` is not on PATH, unless servers are
/// required.
pub(crate) fn find_program(program: &str, what: &str) -> Option<std::path::PathBuf> {
    let found =
        std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|dir| dir.join(program)).find(|path| path.is_file()));
    if found.is_none() {
        assert!(!servers_required(), "{program} ({what}) is not installed, and TELEDIAG_REQUIRE_SERVERS=1");
        eprintln!("skipped: {program} ({what}) is not installed; .ci/run installs it");
    }
    found
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free local port")
}

/// Waits until `port` accepts connections, or panics with what `child` said.
pub(crate) fn wait_for_port(child: &mut Child, port: u16, what: &str) {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not listen on port {port} within 60 s");
}

/// Sends `signal` to the process `child`.
pub(crate) fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}
