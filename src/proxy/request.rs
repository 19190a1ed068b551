//! What of a client's request the proxy accepts, and how it answers one it stops reading.

use hyper::Response;
use hyper::header::{self, HeaderValue};

use crate::http_server::Body;

/// `response` with `Connection: close`: for answers given before the request body was read
/// whole, whose rest would otherwise be parsed as the next request (HTTP/1.1; HTTP/2 drops it).
pub(super) fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
