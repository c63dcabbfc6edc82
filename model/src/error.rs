//! The one error type of the application. It crosses the wire from server functions to the
//! browser and is the body of REST errors, so it carries only what a user may see: internal
//! causes are logged on the server under an incident id and never sent.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Bad input; `field` names what to fix (a form field, a config path or a request part).
    #[error("{field}: {message}")]
    BadRequest { field: String, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// A request body over a configured limit; the message names the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Too many attempts (sign-ins); the message says when to try again.
    #[error("{0}")]
    TooManyRequests(String),
    /// A dependency (object store, database) is down or unreachable.
    #[error("{0}")]
    Unavailable(String),
    /// Something broke on our side; the id finds the logged cause.
    #[error("internal error (incident {0}); the cause is in the server log")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::Unauthorized("sign in first".into())
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge(_) => 413,
            Self::TooManyRequests(_) => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        }
    }
}

/// Server functions send the error as JSON; the web layer sets the response status from it.
#[cfg(feature = "server-fn")]
mod server_fn_error {
    use server_fn::codec::JsonEncoding;
    use server_fn::error::{FromServerFnError, ServerFnErrorErr};

    use super::AppError;

    impl FromServerFnError for AppError {
        type Encoder = JsonEncoding;

        fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
            match value {
                ServerFnErrorErr::Args(msg) | ServerFnErrorErr::Deserialization(msg) => {
                    Self::bad_request("request", msg)
                }
                ServerFnErrorErr::Request(msg) => {
                    Self::Unavailable(format!("the server could not be reached: {msg}"))
                }
                ServerFnErrorErr::MissingArg(arg) => Self::bad_request(arg, "is required"),
                other => Self::Internal(other.to_string()),
            }
        }
    }
}

#[cfg(feature = "server")]
mod server {
    use super::AppError;

    impl AppError {
        /// An internal failure: the cause goes to the log under a fresh incident id, the user
        /// gets only the id.
        pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
            let incident = format!("{:08x}", rand::random::<u32>());
            tracing::error!(%incident, context, %cause, "internal error");
            Self::Internal(incident)
        }

        /// A dependency failure the user can do nothing about but retry later.
        pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
            tracing::warn!(what, %cause, "dependency unavailable");
            Self::Unavailable(format!(
                "{what} is unavailable right now; try again shortly"
            ))
        }
    }

    impl From<sqlx::Error> for AppError {
        fn from(err: sqlx::Error) -> Self {
            match err {
                sqlx::Error::RowNotFound => Self::NotFound("not found".into()),
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                    Self::unavailable("the database", err)
                }
                // PostgreSQL restarting (57P01-57P03), a broken connection (class 08) or no
                // connection slot / resources left (class 53); SQLite still locked by another
                // writer after the busy timeout (SQLITE_BUSY and SQLITE_LOCKED, whose extended
                // codes keep the primary code in the low byte; PostgreSQL's codes have 5 chars).
                sqlx::Error::Database(ref db)
                    if db.code().is_some_and(|c| {
                        c.starts_with("08")
                            || c.starts_with("57P")
                            || c.starts_with("53")
                            || (c.len() < 5
                                && c.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6)))
                    }) =>
                {
                    Self::unavailable("the database", err)
                }
                other => Self::internal("database", other),
            }
        }
    }
}

/// REST handlers answer errors as plain text, as OSCAR does.
#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for AppError {
    fn into_response(self) -> axum_core::response::Response {
        let status = http::StatusCode::from_u16(self.status())
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_status() {
        assert_eq!(AppError::bad_request("name", "too long").status(), 400);
        assert_eq!(AppError::unauthorized().status(), 401);
        assert_eq!(AppError::Forbidden("no".into()).status(), 403);
        assert_eq!(AppError::NotFound("x".into()).status(), 404);
        assert_eq!(AppError::Conflict("x".into()).status(), 409);
        assert_eq!(AppError::PayloadTooLarge("x".into()).status(), 413);
        assert_eq!(AppError::Unavailable("x".into()).status(), 503);
        assert_eq!(AppError::Internal("abc".into()).status(), 500);
    }

    #[test]
    fn bad_request_names_the_field() {
        let err = AppError::bad_request("memory", "\"12X\" is not a Kubernetes quantity");
        assert_eq!(
            err.to_string(),
            "memory: \"12X\" is not a Kubernetes quantity"
        );
    }

    #[cfg(feature = "server-fn")]
    #[test]
    fn malformed_server_fn_arguments_are_a_client_error() {
        use server_fn::error::{FromServerFnError, ServerFnErrorErr};
        let err = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field".into()));
        assert_eq!(err.status(), 400);
    }

    #[cfg(feature = "server")]
    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::internal("test", "secret connection string postgres://u:pw@h/db");
        assert!(!err.to_string().contains("pw@h"), "{err}");
        assert_eq!(err.status(), 500);
    }
}
