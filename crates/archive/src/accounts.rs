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

fn user_from_row(r: &sqlx::sqlite::SqliteRow) -> UserRow {
    let roles: String = r.get(4);
    UserRow {
        id: r.get(0),
        username: r.get(1),
        display_name: r.get(2),
        password_hash: r.get(3),
        roles: roles.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        site_id: r.get(5),
        disabled: r.get(6),
    }
}

const USER_COLUMNS: &str = "id, username, display_name, password_hash, roles, site_id, disabled";

impl Database {
    pub async fn insert_user(&self, user: &NewUserRow) -> Result<i64, DbError> {
        let exists = sqlx::query("SELECT 1 FROM users WHERE username = ?")
            .bind(&user.username)
            .fetch_optional(self.pool())
            .await?;
        if exists.is_some() {
            return Err(DbError::Conflict(format!("user {:?} exists already", user.username)));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO users (username, display_name, password_hash, roles, site_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
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
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?");
        Ok(sqlx::query(&sql).bind(username).fetch_optional(self.pool()).await?.as_ref().map(user_from_row))
    }

    pub async fn count_users(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.pool()).await?)
    }

    /// Stores a session whose token hashes to `token_hash`.
    pub async fn insert_session(&self, token_hash: &str, user_id: i64, expires_at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
            .bind(token_hash)
            .bind(user_id)
            .bind(now_ms())
            .bind(expires_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The enabled user of an unexpired session.
    pub async fn session_user(&self, token_hash: &str) -> Result<Option<UserRow>, DbError> {
        let sql = format!(
            "SELECT u.id, u.username, u.display_name, u.password_hash, u.roles, u.site_id, u.disabled
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0"
        );
        Ok(sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(user_from_row))
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?").bind(token_hash).execute(self.pool()).await?;
        Ok(())
    }
}
