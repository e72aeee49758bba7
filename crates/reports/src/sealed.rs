//! A doctor's private key sealed under their signing PIN.
//!
//! 电子签名法 asks that the signature-creation data be under the signer's
//! sole control. The key is therefore stored only encrypted: AES-256-GCM
//! under a key derived from the PIN by Argon2id (memory-hard, so a copied
//! database does not give up a six-digit PIN to a GPU in seconds). The
//! ciphertext is bound to the certificate it belongs to (the certificate's
//! DER is the AEAD's associated data), so a sealed key moved onto another
//! doctor's certificate does not open.
//!
//! The sealed form is self-describing — a version byte, the Argon2 costs,
//! salt, nonce, ciphertext — so the costs can rise later without locking
//! out doctors who sealed under the old ones.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::identity::SigningKey;

const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 3 * 4 + SALT_LEN + NONCE_LEN;

/// Argon2id costs: OWASP's 19 MiB, two passes, one lane (about 40 ms on
/// the 2-core reference machine, paid once per signature or unlock).
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
const LANES: u32 = 1;
/// Costs above these are refused when opening: a tampered row must not
/// make the server allocate gigabytes.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_PASSES: u32 = 16;

/// Why a sealed key did not open.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The PIN is not the one the key was sealed under (or the sealed
    /// bytes, or the certificate they are bound to, were changed).
    #[error("the signing PIN is wrong")]
    WrongPin,
    #[error("the sealed key is malformed: {0}")]
    Malformed(String),
    #[error("cannot seal the key: {0}")]
    Seal(String),
}

/// Seals `key` under `pin`, bound to `certificate_der`.
pub fn seal(key: &SigningKey, pin: &str, certificate_der: &[u8]) -> Result<Vec<u8>, SealError> {
    let plaintext = zeroize::Zeroizing::new(key.to_pkcs8_der().map_err(|e| SealError::Seal(e.to_string()))?);
    let salt: [u8; SALT_LEN] = random();
    let nonce: [u8; NONCE_LEN] = random();
    let cipher = cipher(pin, &salt, MEMORY_KIB, PASSES, LANES)?;
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: &plaintext, aad: certificate_der })
        .map_err(|e| SealError::Seal(e.to_string()))?;
    let mut sealed = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    sealed.push(VERSION);
    for cost in [MEMORY_KIB, PASSES, LANES] {
        sealed.extend_from_slice(&cost.to_be_bytes());
    }
    sealed.extend_from_slice(&salt);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Opens a key sealed by [`seal`] with `pin`, for `certificate_der`.
pub fn open(sealed: &[u8], pin: &str, certificate_der: &[u8]) -> Result<SigningKey, SealError> {
    if sealed.len() <= HEADER_LEN {
        return Err(SealError::Malformed(format!("expected more than {HEADER_LEN} bytes, found {}", sealed.len())));
    }
    if sealed[0] != VERSION {
        return Err(SealError::Malformed(format!("expected version {VERSION}, found {}", sealed[0])));
    }
    let cost = |i: usize| u32::from_be_bytes(sealed[1 + 4 * i..5 + 4 * i].try_into().expect("four bytes"));
    let (memory, passes, lanes) = (cost(0), cost(1), cost(2));
    if memory > MAX_MEMORY_KIB || passes > MAX_PASSES || lanes != LANES {
        return Err(SealError::Malformed(format!(
            "Argon2 costs m={memory} KiB t={passes} p={lanes} are outside what this server seals with"
        )));
    }
    let salt = &sealed[13..13 + SALT_LEN];
    let nonce = &sealed[13 + SALT_LEN..HEADER_LEN];
    let cipher = cipher(pin, salt, memory, passes, lanes)?;
    let plaintext = zeroize::Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: &sealed[HEADER_LEN..], aad: certificate_der })
            .map_err(|_| SealError::WrongPin)?,
    );
    SigningKey::from_pkcs8_der(&plaintext).map_err(|e| SealError::Malformed(e.to_string()))
}

fn cipher(pin: &str, salt: &[u8], memory: u32, passes: u32, lanes: u32) -> Result<Aes256Gcm, SealError> {
    let params = argon2::Params::new(memory, passes, lanes, Some(32)).map_err(|e| SealError::Malformed(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    argon.hash_password_into(pin.as_bytes(), salt, key.as_mut()).map_err(|e| SealError::Malformed(e.to_string()))?;
    Ok(Aes256Gcm::new_from_slice(key.as_ref()).expect("a 32-byte key"))
}

fn random<const N: usize>() -> [u8; N] {
    use p256::elliptic_curve::rand_core::{OsRng, RngCore};
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CentreCa;

    fn doctor() -> crate::SigningIdentity {
        CentreCa::create("测试中心").unwrap().issue("王医生", "user-1").unwrap()
    }

    #[test]
    fn the_right_pin_opens_and_nothing_else_does() {
        let doctor = doctor();
        let cert = doctor.to_der().unwrap().certificate;
        let sealed = seal(&doctor.key, "204816", &cert).unwrap();
        let opened = open(&sealed, "204816", &cert).unwrap();
        assert_eq!(opened.public_key_der().unwrap(), doctor.key.public_key_der().unwrap());
        assert!(matches!(open(&sealed, "204817", &cert), Err(SealError::WrongPin)));
        // The plaintext key is nowhere in the sealed bytes.
        let plain = doctor.key.to_pkcs8_der().unwrap();
        assert!(!sealed.windows(32).any(|w| plain.windows(32).any(|p| p == w)));
    }

    #[test]
    fn a_sealed_key_moved_to_another_certificate_or_tampered_does_not_open() {
        let (a, b) = (doctor(), doctor());
        let cert_a = a.to_der().unwrap().certificate;
        let sealed = seal(&a.key, "204816", &cert_a).unwrap();
        assert!(matches!(open(&sealed, "204816", &b.to_der().unwrap().certificate), Err(SealError::WrongPin)));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(open(&flipped, "204816", &cert_a), Err(SealError::WrongPin)));
        let mut greedy = sealed;
        greedy[1..5].copy_from_slice(&(4 * 1024 * 1024u32).to_be_bytes());
        assert!(matches!(open(&greedy, "204816", &cert_a), Err(SealError::Malformed(_))));
        assert!(matches!(open(&[1, 2, 3], "204816", &cert_a), Err(SealError::Malformed(_))));
    }
}
