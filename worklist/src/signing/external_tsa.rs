//! An external RFC 3161 timestamp authority over HTTP (RFC 3161 §3.4):
//! `POST` a DER TimeStampReq as `application/timestamp-query`, read a DER
//! TimeStampResp. For centres whose rules require an accredited TSA.
//!
//! The answer is checked before it is embedded: granted, over our message
//! imprint, with our nonce; the token's signature itself is the verifier's
//! to check against the TSA's certificate, which the token carries.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use der::{Decode, Encode};

/// A TSA reached at an `http://` URL.
#[derive(Debug)]
pub struct HttpTsa {
    host: String,
    port: u16,
    path: String,
}

/// The longest a TSA may take; a signature waits for it.
const TIMEOUT: Duration = Duration::from_secs(15);
/// A TimeStampResp is a few kilobytes; more is not one.
const MAX_RESPONSE: u64 = 256 * 1024;

impl HttpTsa {
    /// Checks `url` is `http://host[:port]/path` (a TSA's answer is signed:
    /// TLS adds no integrity it lacks).
    pub fn new(url: &str) -> Result<HttpTsa, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("expected an http:// URL, found {url:?}"))?;
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| format!("expected a port number in {url:?}, found {port:?}"))?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        Ok(HttpTsa { host: host.to_owned(), port, path })
    }

    fn post(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let address = std::net::ToSocketAddrs::to_socket_addrs(&(self.host.as_str(), self.port))
            .map_err(|e| format!("TSA {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("TSA {}: no address", self.host))?;
        let mut stream = TcpStream::connect_timeout(&address, TIMEOUT).map_err(|e| format!("TSA {}: {e}", self.host))?;
        stream.set_read_timeout(Some(TIMEOUT)).and_then(|()| stream.set_write_timeout(Some(TIMEOUT))).map_err(|e| e.to_string())?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/timestamp-query\r\nAccept: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| format!("TSA {}: {e}", self.host))?;
        let mut response = Vec::new();
        stream.take(MAX_RESPONSE).read_to_end(&mut response).map_err(|e| format!("TSA {}: {e}", self.host))?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the TSA's answer is not HTTP")?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("the TSA answered HTTP {status}"));
        }
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            return Err("the TSA answered chunked; expected a Content-Length body".into());
        }
        Ok(response[split + 4..].to_vec())
    }
}

impl telediag_reports::Timestamper for HttpTsa {
    fn timestamp(&self, sha256: &[u8; 32]) -> Result<Vec<u8>, String> {
        let err = |e: &dyn std::fmt::Display| format!("timestamp request: {e}");
        // A positive INTEGER in its minimal DER form (first byte 0x01..=0x7F),
        // so that a TSA echoes it byte for byte.
        let mut nonce: [u8; 8] = rand::random();
        nonce[0] = (nonce[0] & 0x7f) | 0x01;
        let nonce = der::asn1::Int::new(&nonce).map_err(|e| err(&e))?;
        let imprint = x509_tsp::MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier { oid: const_oid::db::rfc5912::ID_SHA_256, parameters: None },
            hashed_message: der::asn1::OctetString::new(sha256.to_vec()).map_err(|e| err(&e))?,
        };
        let request = x509_tsp::TimeStampReq {
            version: x509_tsp::TspVersion::V1,
            message_imprint: imprint.clone(),
            req_policy: None,
            nonce: Some(nonce.clone()),
            cert_req: true,
            extensions: None,
        };
        let answer = self.post(&request.to_der().map_err(|e| err(&e))?)?;
        let response = x509_tsp::TimeStampResp::from_der(&answer).map_err(|e| format!("the TSA's answer is not a TimeStampResp: {e}"))?;
        if !matches!(response.status.status, cmpv2::status::PkiStatus::Accepted | cmpv2::status::PkiStatus::GrantedWithMods) {
            return Err(format!("the TSA refused: {:?}", response.status.status));
        }
        let token = response.time_stamp_token.ok_or("the TSA granted but sent no token")?;
        let signed: cms::signed_data::SignedData = token.content.decode_as().map_err(|e| format!("the token is not SignedData: {e}"))?;
        let content = signed.encap_content_info.econtent.ok_or("the token holds no TSTInfo")?;
        let info = x509_tsp::TstInfo::from_der(content.value()).map_err(|e| format!("the token's TSTInfo: {e}"))?;
        if info.message_imprint != imprint {
            return Err("the TSA stamped another message imprint than ours".into());
        }
        if info.nonce.as_ref() != Some(&nonce) {
            return Err("the TSA's answer does not carry our nonce".into());
        }
        token.to_der().map_err(|e| err(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::HttpTsa;

    #[test]
    fn only_http_urls_with_a_host_are_taken() {
        let tsa = HttpTsa::new("http://tsa.example.cn:8318/tsr").unwrap();
        assert_eq!((tsa.host.as_str(), tsa.port, tsa.path.as_str()), ("tsa.example.cn", 8318, "/tsr"));
        assert_eq!(HttpTsa::new("http://tsa.example.cn").unwrap().path, "/");
        for bad in ["https://tsa.example.cn/", "tsa.example.cn", "http://:80/", "http://tsa:port/"] {
            assert!(HttpTsa::new(bad).is_err(), "{bad}");
        }
    }
}
