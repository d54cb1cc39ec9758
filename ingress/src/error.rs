//! Why an exchange failed, and the one place that turns that into an HTTP status.
//!
//! A [`ProxyError`] is a small `Copy` value: what went wrong ([`ErrorKind`]), who failed
//! ([`Side`]) and whether the request may be tried again on a fresh upstream connection. The
//! proxy decides what to answer from it alone ([`ProxyError::response`]); details go to the log.

use crate::http::HttpError;

/// Who failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client sent something wrong or went away.
    Client,
    /// The upstream refused, reset, timed out or sent something wrong.
    Upstream,
    /// The proxy's own configuration (no route, no backend).
    Proxy,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client's request head or body broke a rule.
    BadRequest(HttpError),
    /// The client did not send a full head in time (slowloris).
    ClientHeadTimeout,
    /// The client connection failed or closed mid-request.
    ClientIo,
    /// The request body is larger than its route's `max-body`.
    BodyTooLarge,
    /// The client is over its route's `rate`; a token comes in `retry_after_s` seconds.
    RateLimited { retry_after_s: u32 },
    /// No route matches the path.
    NoRoute,
    /// The routed service has no usable backend.
    NoBackend,
    /// The upstream refused the connection.
    ConnectRefused,
    /// Connecting took longer than the connect timeout.
    ConnectTimeout,
    /// The upstream connection failed or closed before a full response.
    UpstreamIo,
    /// The upstream's host stopped acknowledging (the link timeout): crashed or cut off.
    UpstreamLost,
    /// No response head within the response timeout.
    ResponseTimeout,
    /// The upstream's response (head or chunked body) is malformed.
    BadResponse(HttpError),
}

/// A failed exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Who failed.
    pub side: Side,
    /// Whether the request may be sent again on a fresh connection (reused connection, no
    /// response byte yet, and idempotent or nothing of it written).
    pub retry: bool,
}

/// What the client gets for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorResponse {
    /// Send this status and text, then close the connection when `close`.
    Status {
        status: u16,
        text: &'static str,
        close: bool,
    },
    /// Close without a response (the client is gone, or a response was already started).
    Close,
}

impl ProxyError {
    /// An error of `kind`, with the side it implies and no retry.
    #[must_use]
    pub const fn new(kind: ErrorKind) -> Self {
        let side = match kind {
            ErrorKind::BadRequest(_)
            | ErrorKind::ClientHeadTimeout
            | ErrorKind::ClientIo
            | ErrorKind::BodyTooLarge
            | ErrorKind::RateLimited { .. } => Side::Client,
            ErrorKind::NoRoute | ErrorKind::NoBackend => Side::Proxy,
            ErrorKind::ConnectRefused
            | ErrorKind::ConnectTimeout
            | ErrorKind::UpstreamIo
            | ErrorKind::UpstreamLost
            | ErrorKind::ResponseTimeout
            | ErrorKind::BadResponse(_) => Side::Upstream,
        };
        Self {
            kind,
            side,
            retry: false,
        }
    }

    /// The same error, marked retryable.
    #[must_use]
    pub const fn retryable(mut self) -> Self {
        self.retry = true;
        self
    }

    /// The one mapping from failure to response (SPEC §5 texts).
    #[must_use]
    pub const fn response(self) -> ErrorResponse {
        let (status, text, close) = match self.kind {
            ErrorKind::BadRequest(e) => (e.client_status(), "Bad request.", true),
            ErrorKind::ClientHeadTimeout => (408, "Request timeout.", true),
            ErrorKind::ClientIo => return ErrorResponse::Close,
            // The body is left unread: the connection closes after the answer.
            ErrorKind::BodyTooLarge => (413, "Payload too large.", true),
            ErrorKind::RateLimited { .. } => (429, "Too many requests.", false),
            ErrorKind::NoRoute => (404, "No route for this path.", false),
            ErrorKind::NoBackend => (503, "Service not found in Tower", false),
            ErrorKind::ConnectRefused | ErrorKind::UpstreamIo | ErrorKind::BadResponse(_) => {
                (502, "Bad gateway.", false)
            }
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamLost | ErrorKind::ResponseTimeout => {
                (504, "Gateway timeout.", false)
            }
        };
        ErrorResponse::Status {
            status,
            text,
            close,
        }
    }

    /// Whether this failure should eject the backend for a while (it refused or reset).
    #[must_use]
    pub const fn ejects_backend(self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectRefused | ErrorKind::ConnectTimeout
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_chosen_in_one_place() {
        let status = |k| match ProxyError::new(k).response() {
            ErrorResponse::Status { status, .. } => status,
            ErrorResponse::Close => 0,
        };
        assert_eq!(status(ErrorKind::NoRoute), 404);
        assert_eq!(status(ErrorKind::NoBackend), 503);
        assert_eq!(status(ErrorKind::ConnectRefused), 502);
        assert_eq!(status(ErrorKind::UpstreamIo), 502);
        assert_eq!(status(ErrorKind::BadResponse(HttpError::BadHeader)), 502);
        assert_eq!(status(ErrorKind::ConnectTimeout), 504);
        assert_eq!(status(ErrorKind::ResponseTimeout), 504);
        assert_eq!(status(ErrorKind::BodyTooLarge), 413);
        assert_eq!(status(ErrorKind::RateLimited { retry_after_s: 1 }), 429);
        assert_eq!(status(ErrorKind::UpstreamLost), 504);
        assert_eq!(status(ErrorKind::ClientHeadTimeout), 408);
        assert_eq!(
            status(ErrorKind::BadRequest(HttpError::TooManyHeaders)),
            431
        );
        assert_eq!(status(ErrorKind::BadRequest(HttpError::TargetTooLong)), 414);
        assert_eq!(status(ErrorKind::BadRequest(HttpError::BadChunk)), 400);
        assert_eq!(status(ErrorKind::ClientIo), 0);
        assert_eq!(ProxyError::new(ErrorKind::NoRoute).side, Side::Proxy);
        assert!(ProxyError::new(ErrorKind::UpstreamIo).retryable().retry);
    }
}
