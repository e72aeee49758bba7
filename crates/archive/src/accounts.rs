//! Stored user accounts and login sessions.
//!
//! Only rows live here. Password hashing, token issuing and role checks are
//! the worklist's; the archive never sees a password or a token, only their
//! hashes.

use sqlx::Row;

use crate::db::{Database, DbError, now_ms};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub site_id: Option<i64>,
    pub disabled: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUserRow {
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub site_id: Option<i64>,
}

/// Changes to a user; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub display_name: Option<String>,
    pub roles: Option<Vec<String>>,
    /// `Some(None)` removes the site.
    pub site_id: Option<Option<i64>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

/// An account's failed-login state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct LoginLock {
    /// Failed logins since the last success.
    pub failed_logins: i64,
    /// Logins are refused until then (ms since the epoch), if set.
    pub locked_until: Option<i64>,
}

/// Failed logins in a row that lock an account, and for how long at first;
/// each further run of failures doubles it, up to a day.
pub const LOCK_AFTER_FAILURES: i64 = 5;
pub const FIRST_LOCK_MS: i64 = 15 * 60 * 1000;
const LONGEST_LOCK_MS: i64 = 24 * 3600 * 1000;

/// How long the `attempts`th attempt since the last success locks a login
/// name for, if it does: every [`LOCK_AFTER_FAILURES`]th locks, for
/// [`FIRST_LOCK_MS`] and then twice as long each time, at most a day.
/// Accounts and names that are no account (the worklist's limiter) lock
/// alike, so a lock tells nothing of which exist.
pub fn lock_ms(attempts: i64) -> Option<i64> {
    (attempts > 0 && attempts % LOCK_AFTER_FAILURES == 0).then(|| {
        let doublings = (attempts / LOCK_AFTER_FAILURES - 1).min(10) as u32;
        (FIRST_LOCK_MS << doublings).min(LONGEST_LOCK_MS)
    })
}

fn user_from_row(r: &sqlx::any::AnyRow) -> UserRow {
    let roles: String = r.get(4);
    UserRow {
        id: r.get(0),
        username: r.get(1),
        display_name: r.get(2),
        password_hash: r.get(3),
        roles: roles.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        site_id: r.get(5),
        disabled: r.get::<i64, _>(6) != 0,
    }
}

const USER_COLUMNS: &str = "id, username, display_name, password_hash, roles, site_id, disabled";

impl Database {
    pub async fn insert_user(&self, user: &NewUserRow) -> Result<i64, DbError> {
        let exists = sqlx::query("SELECT 1 FROM users WHERE username = $1").bind(&user.username).fetch_optional(self.pool()).await?;
        if exists.is_some() {
            return Err(DbError::Conflict(format!("user {:?} exists already", user.username)));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, roles, site_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&user.username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.roles.join(","))
        .bind(user.site_id)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        Ok(sqlx::query(&sql).bind(username).fetch_optional(self.pool()).await?.as_ref().map(user_from_row))
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<UserRow>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(sqlx::query(&sql).bind(id).fetch_optional(self.pool()).await?.as_ref().map(user_from_row))
    }

    /// Every user, by username.
    pub async fn list_users(&self) -> Result<Vec<UserRow>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        Ok(sqlx::query(&sql).fetch_all(self.pool()).await?.iter().map(user_from_row).collect())
    }

    /// Changes what is given; a new password hash ends the user's sessions.
    pub async fn update_user(&self, id: i64, change: &UserChange) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        let found = sqlx::query(
            "UPDATE users SET display_name = COALESCE($1, display_name), roles = COALESCE($2, roles),
                site_id = CASE WHEN $3 THEN $4 ELSE site_id END, disabled = COALESCE($5, disabled),
                password_hash = COALESCE($6, password_hash) WHERE id = $7",
        )
        .bind(&change.display_name)
        .bind(change.roles.as_ref().map(|r| r.join(",")))
        .bind(change.site_id.is_some())
        .bind(change.site_id.flatten())
        .bind(change.disabled.map(i64::from))
        .bind(&change.password_hash)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if found == 0 {
            return Err(DbError::NotFound { what: "user", name: id.to_string() });
        }
        if change.password_hash.is_some() || change.disabled == Some(true) {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Enabled users holding the admin role.
    pub async fn count_admins(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE disabled = 0 AND (',' || roles || ',') LIKE '%,admin,%'")
            .fetch_one(self.pool())
            .await?)
    }

    /// Stores a session whose token hashes to `token_hash`.
    pub async fn insert_session(&self, token_hash: &str, user_id: i64, expires_at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now_ms())
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The failed-login state of `user_id`.
    pub async fn login_lock(&self, user_id: i64) -> Result<LoginLock, DbError> {
        let row =
            sqlx::query("SELECT failed_logins, locked_until FROM users WHERE id = $1").bind(user_id).fetch_optional(self.pool()).await?;
        Ok(row.map(|r| LoginLock { failed_logins: r.get(0), locked_until: r.get(1) }).unwrap_or_default())
    }

    /// Counts a login attempt *before* its password is checked, so that
    /// parallel attempts cannot each slip past the lock: `None` when the
    /// account is locked (nothing counted), else the attempts since the
    /// last success. Every [`LOCK_AFTER_FAILURES`]th attempt locks the
    /// account, for [`FIRST_LOCK_MS`] and then twice as long each time; a
    /// correct password ([`Database::clear_login_failures`]) lifts it.
    pub async fn begin_login_attempt(&self, user_id: i64) -> Result<Option<i64>, DbError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET failed_logins = failed_logins + 1
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $2) RETURNING failed_logins",
        )
        .bind(user_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(lock) = attempts.and_then(lock_ms) {
            let until = now + lock;
            sqlx::query("UPDATE users SET locked_until = $1 WHERE id = $2").bind(until).bind(user_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(attempts)
    }

    /// A successful login, or an admin lifting the lock: counting starts again.
    pub async fn clear_login_failures(&self, user_id: i64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1 AND (failed_logins != 0 OR locked_until IS NOT NULL)",
        )
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The enabled user of an unexpired session.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<UserRow>, DbError> {
        let sql = "SELECT u.id, u.username, u.display_name, u.password_hash, u.roles, u.site_id, u.disabled
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled = 0";
        Ok(sqlx::query(sql).bind(token_hash).bind(now_ms()).fetch_optional(self.pool()).await?.as_ref().map(user_from_row))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(self.pool()).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_attempt_locks_for_twice_as_long_up_to_a_day() {
        for (attempts, lock) in [
            (0, None),
            (4, None),
            (5, Some(FIRST_LOCK_MS)),
            (6, None),
            (10, Some(2 * FIRST_LOCK_MS)),
            (15, Some(4 * FIRST_LOCK_MS)),
            (1_000, Some(LONGEST_LOCK_MS)),
        ] {
            assert_eq!(lock_ms(attempts), lock, "attempt {attempts}");
        }
    }
}
