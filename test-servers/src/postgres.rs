//! PostgreSQL: a throwaway cluster per test (initdb into a temporary
//! directory, `postgres` on a free port, trust authentication on loopback),
//! stopped and deleted when dropped. Debian's `postgresql` package provides
//! the programs under `/usr/lib/postgresql/<version>/bin`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::process::{find_program, free_port, servers_required, signal, wait_for_port};

/// A running PostgreSQL cluster.
pub struct Postgres {
    child: Child,
    port: u16,
    bin: PathBuf,
    /// The cluster's data directory.
    data: PathBuf,
    /// Holds the cluster's files; removed on drop.
    _dir: TempDir,
    /// The user the server runs as when the tests run as root (PostgreSQL
    /// refuses root).
    run_as: Option<&'static str>,
}

/// Debian's versioned directory, or PATH.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).filter(|bin| bin.join("initdb").is_file()).collect())
        .unwrap_or_default();
    versions.sort();
    if let Some(bin) = versions.pop() {
        return Some(bin);
    }
    find_program("initdb", "PostgreSQL; apt-get install postgresql").and_then(|p| p.parent().map(Path::to_path_buf))
}

/// `program`, run as `user` (its uid and gid) when given: directly, not
/// through `runuser`, so that signals reach the server itself.
fn command_as(program: &Path, user: Option<&str>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(program);
    if let Some(user) = user {
        let name = std::ffi::CString::new(user).expect("a user name");
        // SAFETY: getpwnam returns a pointer into static storage or null; it
        // is read at once, before any other call that could reuse it.
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        assert!(!entry.is_null(), "no user {user}");
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        command.uid(uid).gid(gid);
    }
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

/// Starts `postgres` on `data` and waits until it listens on `port`.
fn spawn_server(bin: &Path, data: &Path, socket_dir: &Path, port: u16, run_as: Option<&str>) -> Child {
    let mut child = command_as(&bin.join("postgres"), run_as)
        .arg("-D")
        .arg(data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(socket_dir)
        // Throwaway clusters: no fsync, but commits still go through the
        // WAL, so a restart (`stop`, `start_again`) keeps what was committed.
        .args(["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=400"])
        .stderr(Stdio::null())
        .spawn()
        .expect("postgres starts");
    wait_for_port(&mut child, port, "postgres");
    child
}

/// A directory removed with its contents on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Postgres {
    /// Starts a cluster on a free port; `None` when PostgreSQL is not
    /// installed (see the crate docs).
    pub fn start() -> Option<Postgres> {
        let Some(bin) = postgres_bin() else {
            assert!(!servers_required(), "PostgreSQL is not installed, and TELEDIAG_REQUIRE_SERVERS=1");
            return None;
        };
        // SAFETY: geteuid has no preconditions.
        let run_as = (unsafe { libc::geteuid() } == 0).then_some("postgres");
        let dir = TempDir(std::env::temp_dir().join(format!("telediag-pg-{}-{:x}", std::process::id(), free_port())));
        std::fs::create_dir_all(&dir.0).expect("a temporary directory");
        if let Some(user) = run_as {
            let chowned = Command::new("chown").args(["-R", user]).arg(&dir.0).status().expect("chown runs");
            assert!(chowned.success(), "cannot give {} to {user}", dir.0.display());
        }
        let data = dir.0.join("data");
        let command = |program: &str| command_as(&bin.join(program), run_as);
        let initdb = command("initdb")
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(initdb.status.success(), "initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        let port = free_port();
        let child = spawn_server(&bin, &data, &dir.0, port, run_as);
        Some(Postgres { child, port, bin, data, _dir: dir, run_as })
    }

    /// A new, empty database on this cluster, as a `postgres://` URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = command_as(&self.bin.join("createdb"), self.run_as)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", name])
            .output()
            .expect("createdb runs");
        assert!(out.status.success(), "createdb {name}: {}", String::from_utf8_lossy(&out.stderr));
        self.url(name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops answering (SIGSTOP) until [`Postgres::resume`].
    pub fn pause(&self) {
        signal(&self.child, libc::SIGSTOP);
    }

    pub fn resume(&self) {
        signal(&self.child, libc::SIGCONT);
    }

    /// Stops the server as an operator's `pg_ctl stop -m fast` does (every
    /// connection cut, open transactions rolled back), until
    /// [`Postgres::start_again`].
    pub fn stop(&mut self) {
        signal(&self.child, libc::SIGINT);
        let _ = self.child.wait();
    }

    /// Starts the stopped server again on the same port and data.
    pub fn start_again(&mut self) {
        let socket_dir = self.data.parent().expect("the data directory's parent").to_owned();
        self.child = spawn_server(&self.bin, &self.data, &socket_dir, self.port, self.run_as);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // stopped already
        }
        self.resume();
        // SIGQUIT: immediate shutdown, children included.
        signal(&self.child, libc::SIGQUIT);
        let _ = self.child.wait();
    }
}
