//! Signing enrolment (签名登记): who may be given a new signing key.
//!
//! A doctor's key is under their sole control once sealed under their PIN,
//! but a *new* key — a first PIN, a forgotten one, an imported PKCS#12 —
//! is issued to whoever holds the doctor's session and password, and an
//! administrator can reset a password. So a new key also needs a one-time
//! enrolment code, made by the registration officer on the server's
//! console (`telediag user enrol-signing`, never over HTTP) and handed to
//! the doctor in person, as a CA's registration authority checks identity
//! before issuing a certificate. The web admin role cannot make one.
//!
//! Codes are 12 characters of Crockford's base32 (60 random bits), valid
//! for [`DEFAULT_VALID_HOURS`], used once; only their SHA-256 is stored.

use sha2::{Digest, Sha256};
use telediag_archive::db::now_ms;
use telediag_archive::{Database, DbError};

use super::SigningError;

/// How long a code stays valid unless the officer says otherwise.
pub const DEFAULT_VALID_HOURS: u32 = 72;

/// Crockford's base32: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The code as typed, reduced to its 12 characters: case, spaces and
/// dashes do not matter, and the letters Crockford maps to digits are read
/// as those digits.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

fn digest(code: &str) -> String {
    hex::encode(Sha256::digest(normalise(code).as_bytes()))
}

/// Makes a code for `user_id`, replacing any earlier one; returns it as
/// printed (`XXXX-XXXX-XXXX`).
pub async fn issue(db: &Database, user_id: i64, valid_hours: u32) -> Result<String, DbError> {
    let random: [u8; 8] = rand::random();
    let bits = u64::from_le_bytes(random);
    let chars: String = (0..12).map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char).collect();
    let code = format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..]);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO signing_enrolments (user_id, code_sha256, issued_at, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE SET code_sha256 = excluded.code_sha256, issued_at = excluded.issued_at,
           expires_at = excluded.expires_at",
    )
    .bind(user_id)
    .bind(digest(&code))
    .bind(now)
    .bind(now + i64::from(valid_hours) * 3_600_000)
    .execute(db.pool())
    .await?;
    Ok(code)
}

/// Whether `user_id` holds an unexpired code.
pub async fn pending(db: &Database, user_id: i64) -> Result<bool, DbError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM signing_enrolments WHERE user_id = $1 AND expires_at > $2")
        .bind(user_id)
        .bind(now_ms())
        .fetch_optional(db.pool())
        .await?;
    Ok(found.is_some())
}

/// Uses up `user_id`'s code, in the transaction that stores their new key:
/// refused, storing nothing, when no code was given or it is not theirs,
/// current and unused.
pub(super) async fn consume(tx: &mut sqlx::AnyConnection, user_id: i64, code: Option<&str>) -> Result<(), SigningError> {
    let code = code.map(str::trim).filter(|c| !c.is_empty()).ok_or(SigningError::EnrolmentRequired)?;
    let used = sqlx::query("DELETE FROM signing_enrolments WHERE user_id = $1 AND code_sha256 = $2 AND expires_at > $3")
        .bind(user_id)
        .bind(digest(code))
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| SigningError::Unusable(format!("the enrolment code cannot be checked: {e}")))?
        .rows_affected();
    if used == 1 { Ok(()) } else { Err(SigningError::EnrolmentWrong) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_the_same_however_it_is_typed() {
        assert_eq!(normalise("k7qf-9m2x-p4td"), "K7QF9M2XP4TD");
        assert_eq!(normalise(" K7QF 9M2X P4TD "), "K7QF9M2XP4TD");
        assert_eq!(digest("O1LI-0000-0000"), digest("0111-0000-0000"), "Crockford's look-alikes");
        assert_ne!(digest("K7QF-9M2X-P4TD"), digest("K7QF-9M2X-P4TE"));
    }
}
