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

    /// Creates `bucket` (see [`create_bucket`]).
    pub fn create_bucket(&self, bucket: &str) {
        create_bucket(&self.endpoint(), bucket);
    }

    /// The keys under `prefix` in `bucket`, as the test sees them
    /// (ListObjectsV2, unsigned, page by page).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{bucket}?list-type=2&max-keys=1000&prefix={}", query_escape(prefix));
            if let Some(token) = &token {
                path.push_str(&format!("&continuation-token={}", query_escape(token)));
            }
            let (status, body) = self.get(&path);
            assert_eq!(status, 200, "listing {bucket}: {}", String::from_utf8_lossy(&body));
            let body = String::from_utf8(body).expect("an XML listing");
            keys.extend(elements(&body, "Key").map(|key| key.replace("&amp;", "&")));
            token = elements(&body, "NextContinuationToken").next().map(str::to_owned);
            if token.is_none() {
                return keys;
            }
        }
    }

    /// Downloads every object under `prefix` in `bucket` into `dir` (see
    /// [`download`]).
    pub fn download(&self, bucket: &str, prefix: &str, dir: &std::path::Path) {
        download(&self.endpoint(), bucket, prefix, dir);
    }

    /// An unsigned GET (moto accepts them): status and body.
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto_server accepts a connection");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", self.port).expect("the request is sent");
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).expect("moto_server answers");
        let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP reply");
        let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(!head.contains("transfer-encoding: chunked"), "moto answered chunked, which this client does not read");
        (status, reply[split + 4..].to_vec())
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

/// Creates `bucket` on the server at `endpoint` (`http://host:port`): a
/// plain `PUT /<bucket>`, which moto accepts unsigned.
pub fn create_bucket(endpoint: &str, bucket: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).expect("the S3 server accepts a connection");
    write!(stream, "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("the request is sent");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("the S3 server answers");
    assert!(reply.starts_with("HTTP/1.1 200"), "creating bucket {bucket}: {}", reply.lines().next().unwrap_or_default());
}

/// Downloads every object under `prefix` in `bucket` at `endpoint` into
/// `dir` (as `dir/<key>`), with boto3 (which moto installs): a client
/// independent of the one under test, signing its requests as S3 requires
/// for reads.
pub fn download(endpoint: &str, bucket: &str, prefix: &str, dir: &std::path::Path) {
    const SCRIPT: &str = r#"
import os, sys, boto3
endpoint, bucket, prefix, out = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for item in page.get("Contents", []):
        path = os.path.join(out, item["Key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, item["Key"], path)
"#;
    let out = Command::new("python3").args(["-c", SCRIPT, endpoint, bucket, prefix]).arg(dir).output().expect("python3 runs");
    assert!(out.status.success(), "downloading {bucket}/{prefix}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Deletes `bucket` at `endpoint` with everything in it (boto3), quietly:
/// for clean-up, where a failure must not hide the test's own.
pub fn delete_bucket(endpoint: &str, bucket: &str) {
    const SCRIPT: &str = r#"
import sys, boto3
endpoint, bucket = sys.argv[1:3]
s3 = boto3.resource("s3", endpoint_url=endpoint, region_name="us-east-1",
                    aws_access_key_id="test", aws_secret_access_key="test")
s3.Bucket(bucket).objects.all().delete()
s3.Bucket(bucket).delete()
"#;
    let _ = Command::new("python3").args(["-c", SCRIPT, endpoint, bucket]).output();
}

/// The texts of every `<name>…</name>` in `xml`.
fn elements<'a>(xml: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let texts: Vec<&str> =
        xml.split(open.as_str()).skip(1).filter_map(|rest| rest.split_once(close.as_str()).map(|(text, _)| text)).collect();
    texts.into_iter()
}

/// `text` percent-encoded for a query string.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
