//! Who may use the console: anyone who can reach a loopback address, or, on any other
//! address, whoever shows the token, as `Authorization: Bearer TOKEN`, or once as
//! `?token=TOKEN`, which leaves an HttpOnly cookie for the pages that follow.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The cookie that carries the token once a page was opened with it.
const COOKIE: &str = "saga_console";

/// The environment variable a token may come from instead of `--token`.
pub(crate) const TOKEN_VAR: &str = "SAGA_CONSOLE_TOKEN";

/// Why the console must not listen on `addr` as asked: a non-loopback address without a token.
pub(crate) fn refuse_binding(addr: &SocketAddr, token: Option<&str>) -> Option<String> {
    match token {
        _ if addr.ip().is_loopback() => None,
        Some(token) if !token.is_empty() => None,
        _ => Some(format!(
            "serving on {addr}, beyond this machine, needs a token: give --token or set {TOKEN_VAR}"
        )),
    }
}

/// The token requests must carry, if any.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) token: Option<Arc<str>>,
}

/// Lets a request through if it carries the token (or none is needed), and refuses it with
/// 401 otherwise; health checks pass without it. A POST from another site's page is refused
/// (403) whatever it carries.
pub(crate) async fn check(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return (StatusCode::FORBIDDEN, "actions are taken from the console's own pages\n").into_response();
    }
    let Some(token) = guard.token.as_deref() else { return next.run(request).await };
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given, token));
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && same(value, token));
    if bearer || cookie {
        return next.run(request).await;
    }
    let in_query = request
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, value)| name == "token" && same(&percent_decoded(value), token));
    if in_query {
        let mut response = next.run(request).await;
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "this console needs its token: open it with ?token=TOKEN, or send Authorization: Bearer TOKEN\n",
    )
        .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Whether a request comes from a page of this console (or from no page at all): its
/// `Origin`, when it has one, names the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}

/// Whether `given` is `token`, in a time that does not depend on where they differ.
fn same(given: &str, token: &str) -> bool {
    given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// A query value with its percent-escapes and `+` decoded.
pub(crate) fn percent_decoded(value: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high * 16 + low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded_and_a_broken_escape_is_kept() {
        assert_eq!(percent_decoded("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decoded("50%"), "50%");
        assert_eq!(percent_decoded("%zz%4"), "%zz%4");
    }

    #[test]
    fn only_loopback_listens_without_a_token() {
        let loopback: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let everyone: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(refuse_binding(&loopback, None).is_none());
        assert!(refuse_binding(&everyone, None).is_some());
        assert!(refuse_binding(&everyone, Some("")).is_some());
        assert!(refuse_binding(&everyone, Some("s3cret")).is_none());
    }
}
