//! SQL both engines read: `$1`-style parameters.
//!
//! PostgreSQL takes only `$n` parameters; SQLite takes them too (sqlx binds
//! `$n` to the n-th argument), so every statement is written with them.
//! Statements assembled at run time (optional filters, `IN` lists) are
//! written with `?` where a value goes and numbered by [`numbered`] before
//! they run, or built with [`SqlBuilder`].

use sqlx::any::AnyArguments;

/// `sql` with each `?` outside quotes replaced by `$1`, `$2`, … in order.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut n, mut quoted) = (0, false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    out
}

/// A value bound into an assembled statement.
#[derive(Debug, Clone)]
pub enum Value {
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

/// A statement assembled piece by piece, its values bound as `$n` in the
/// order they are pushed (sqlx's `QueryBuilder` writes `?` for the Any
/// driver, which PostgreSQL refuses).
#[derive(Debug, Default)]
pub struct SqlBuilder {
    sql: String,
    values: Vec<Value>,
}

impl SqlBuilder {
    pub fn new(sql: impl Into<String>) -> SqlBuilder {
        SqlBuilder { sql: sql.into(), values: Vec::new() }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a parameter bound to `value`.
    pub fn push_bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        let placeholder = format!("${}", self.values.len());
        self.push(&placeholder)
    }

    /// A list `($a, $b, …)` of parameters bound to `values`.
    pub fn push_list<T: Into<Value>>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push_bind(value);
        }
        self.push(")")
    }

    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The statement with its values bound, ready to run.
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, self.arguments())
    }

    /// The statement returning one column.
    pub fn query_scalar<O>(&self) -> sqlx::query::QueryScalar<'_, sqlx::Any, O, AnyArguments<'_>>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(&self.sql, self.arguments())
    }

    fn arguments(&self) -> AnyArguments<'_> {
        use sqlx::Arguments;
        let mut arguments = AnyArguments::default();
        for value in &self.values {
            let added = match value {
                Value::Int(n) => arguments.add(*n),
                Value::Text(text) => arguments.add(text.as_str()),
            };
            added.expect("the Any driver encodes integers and text");
        }
        arguments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_outside_quotes_are_numbered() {
        assert_eq!(numbered("a = ? AND b IN (?, ?) AND c = '?'"), "a = $1 AND b IN ($2, $3) AND c = '?'");
        assert_eq!(numbered("no parameters"), "no parameters");
    }

    #[test]
    fn a_built_statement_numbers_its_values() {
        let mut sql = SqlBuilder::new("SELECT 1 WHERE a = ");
        sql.push_bind(1_i64).push(" AND b IN ").push_list(["x".to_owned(), "y".to_owned()]);
        assert_eq!(sql.sql(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
    }
}
