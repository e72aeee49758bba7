//! An S3-compatible server: `moto_server`, in memory, one per test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::process::{find_program, free_port, signal, wait_for_port};

/// A running `moto_server`. Its credentials are any; its buckets are made
/// with [`S3Server::create_bucket`].
pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts a server on a free port; `None` when moto is not installed
    /// (see the crate docs).
    pub fn start() -> Option<S3Server> {
        let program = find_program("moto_server", "an S3-compatible server; pip install 'moto[server]'")?;
        let port = free_port();
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        wait_for_port(&mut child, port, "moto_server");
        Some(S3Server { child, port })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket` (a plain `PUT /<bucket>`, which moto accepts unsigned).
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto_server accepts a connection");
        write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)
            .expect("the request is sent");
        let mut reply = String::new();
        stream.read_to_string(&mut reply).expect("moto_server answers");
        assert!(reply.starts_with("HTTP/1.1 200"), "creating bucket {bucket}: {}", reply.lines().next().unwrap_or_default());
    }

    /// Stops answering (SIGSTOP): connections hang, as with a server that
    /// died or a network that dropped, until [`S3Server::resume`].
    pub fn pause(&self) {
        signal(&self.child, libc::SIGSTOP);
    }

    pub fn resume(&self) {
        signal(&self.child, libc::SIGCONT);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
