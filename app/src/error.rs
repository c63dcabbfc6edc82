//! The one error type of the application. It crosses the wire from server functions to the
//! browser and is the body of REST errors, so it carries only what a user may see: internal
//! causes are logged on the server under an incident id and never sent.

use serde::{Deserialize, Serialize};
use server_fn_error::{FromServerFnError, ServerFnErrorErr};

// Re-exported through leptos so the browser and server builds agree on the version.
mod server_fn_error {
    pub use leptos::server_fn::codec::JsonEncoding;
    pub use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
    pub use leptos::server_fn::{Bytes, Encodes};
}

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

impl FromServerFnError for AppError {
    type Encoder = server_fn_error::JsonEncoding;

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

    /// Encodes the error for the response. On the server it also sets the response status
    /// (server functions answer 500 for every error otherwise); this covers errors raised
    /// before the function body runs, such as undecodable arguments.
    fn ser(&self) -> server_fn_error::Bytes {
        #[cfg(feature = "ssr")]
        self.set_response_status();
        <server_fn_error::JsonEncoding as server_fn_error::Encodes<Self>>::encode(self)
            .unwrap_or_else(|e| server_fn_error::Bytes::from(format!("{{\"Internal\":\"{e}\"}}")))
    }
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::AppError;
    use axum::response::{IntoResponse, Response};

    impl AppError {
        /// An internal failure: the cause goes to the log under a fresh incident id, the user
        /// gets only the id.
        pub fn internal(context: &str, cause: impl std::fmt::Display) -> Self {
            let incident = hex::encode(rand::random::<[u8; 4]>());
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
                // connection slot / resources left (class 53).
                sqlx::Error::Database(ref db)
                    if db.code().is_some_and(|c| {
                        c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
                    }) =>
                {
                    Self::unavailable("the database", err)
                }
                other => Self::internal("database", other),
            }
        }
    }

    impl AppError {
        fn http_status(&self) -> http::StatusCode {
            http::StatusCode::from_u16(self.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
        }

        /// Sets the status of the server function response being built, if there is one.
        pub(super) fn set_response_status(&self) {
            if let Some(options) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
                options.set_status(self.http_status());
            }
        }
    }

    /// REST handlers answer errors as plain text, as OSCAR does.
    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            (self.http_status(), self.to_string()).into_response()
        }
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

    #[test]
    fn malformed_server_fn_arguments_are_a_client_error() {
        let err = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field".into()));
        assert_eq!(err.status(), 400);
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::internal("test", "secret connection string postgres://u:pw@h/db");
        assert!(!err.to_string().contains("pw@h"), "{err}");
        assert_eq!(err.status(), 500);
    }
}
