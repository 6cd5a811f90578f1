//! Command line: the flags, and their check into a [`Config`] the run can trust.
//!
//! Everything a request is built from is validated here, once, by rendering each template with
//! a sample sequence number and UUID: a placeholder only ever expands to digits, hex and dashes,
//! so a template that renders to a valid path or header value once does so for every request.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Uri};
use uuid::Uuid;

use crate::template::Template;

const ABOUT: &str = "Fixed-rate, latency-corrected HTTP/1.1 load generator";

const LONG_ABOUT: &str = "\
Fixed-rate, latency-corrected HTTP/1.1 load generator.

Open loop: request i is due at t0 + i/RATE, whatever the server does. N keep-alive connections \
take the next due request in turn, wait for its due time and send it. When every connection is \
busy, due requests wait for one, and that wait is part of their latency: the corrected latency \
runs from the due time, the uncorrected one from the actual send. They differ when the server \
stalls: a closed loop would hide the requests it did not get to send meanwhile. The timer wakes \
up to 2 ms after its deadline, so requests are woken 2 ms ahead and may leave up to 2 ms before \
their due time; corrected latency then runs from the send (start_lag_ms shows what is left).

Placeholders in the URL path and query, header values and body: {seq} (0-based request \
number, warm-up included) and {uuid} (a fresh v4 UUID per request, the same for every {uuid} \
of one request).

Percentiles are nearest rank over every answered request: the value at rank ceil(p/100 x n) \
of the n sorted samples. Warm-up requests are sent at the same rate but counted nowhere.

Prints one JSON object on stdout. Exit codes: 0 done, 2 bad arguments, 3 URL unreachable at \
start, 4 no request answered, 1 other failures (e.g. the log file).";

#[derive(Debug, Parser)]
#[command(name = "orders-bench-load", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    /// Target, http:// only: http://HOST[:PORT][/PATH][?QUERY]; the path and query may hold
    /// placeholders.
    #[arg(long)]
    pub url: String,
    /// Requests per second to issue, fixed (fractions allowed).
    #[arg(long)]
    pub rate: f64,
    /// Length of the measured window, in seconds.
    #[arg(long)]
    pub duration: f64,
    /// Persistent HTTP/1.1 connections; at most one request in flight on each.
    #[arg(long)]
    pub connections: u32,
    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request header `Name: value`, repeatable; the value may hold placeholders.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body; may hold placeholders.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body read from a file (UTF-8); may hold placeholders.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// Seconds at the same rate before the measured window, not counted in any figure.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// CSV file, one line per answered request of the measured window, ordered by seq, no
    /// header: seq,uuid,status,due_us,sent_us,answered_us,location (epoch microseconds, UTC;
    /// sent_us may precede due_us by up to 2 ms; location is the response's Location header,
    /// empty if none).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Per-request bound in milliseconds, on connecting and, separately, on the exchange.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// Past this many requests the kept samples alone take hundreds of MB.
const MAX_REQUESTS: f64 = 20_000_000.0;

/// A header to send: built once when constant, rendered per request otherwise.
#[derive(Debug, Clone)]
pub enum HeaderTemplate {
    Constant(HeaderValue),
    Rendered(Template),
}

/// The checked configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL as given, for the report.
    pub url: String,
    /// `HOST:PORT`, resolved at start.
    pub connect_to: String,
    /// The Host header's value: the URL's authority as written.
    pub host: HeaderValue,
    pub path: Template,
    pub method: Method,
    pub headers: Vec<(HeaderName, HeaderTemplate)>,
    pub body: Template,
    pub rate: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: u32,
    pub timeout: Duration,
    pub log: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--url {0:?}: {1}")]
    Url(String, &'static str),
    #[error("--url path {0:?} is not a valid request target")]
    Path(String),
    #[error("--{0} must be a finite number > 0 (got {1})")]
    Positive(&'static str, f64),
    #[error("--warmup must be a finite number >= 0 (got {0})")]
    Warmup(f64),
    #[error("--connections must be at least 1")]
    Connections,
    #[error("--timeout-ms must be at least 1")]
    Timeout,
    #[error("--rate x (--warmup + --duration) is {0:.0} requests; at most {MAX_REQUESTS} are kept")]
    TooMany(f64),
    #[error("--method {0:?} is not an HTTP method")]
    Method(String),
    #[error("--header {0:?}: expected `Name: value`")]
    HeaderShape(String),
    #[error("--header {0:?}: invalid header name")]
    HeaderName(String),
    #[error("--header {0:?}: invalid header value")]
    HeaderValue(String),
    #[error("--body-file {0}: {1}")]
    BodyFile(PathBuf, std::io::Error),
}

impl Config {
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        for (name, value) in [("rate", args.rate), ("duration", args.duration)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::Positive(name, value));
            }
        }
        if !(args.warmup.is_finite() && args.warmup >= 0.0) {
            return Err(ConfigError::Warmup(args.warmup));
        }
        let total = args.rate * (args.warmup + args.duration);
        if total > MAX_REQUESTS {
            return Err(ConfigError::TooMany(total));
        }
        if args.connections == 0 {
            return Err(ConfigError::Connections);
        }
        if args.timeout_ms == 0 {
            return Err(ConfigError::Timeout);
        }
        let (authority, target) = split_url(&args.url)?;
        let connect_to = with_port(authority);
        let host = HeaderValue::from_str(authority)
            .map_err(|_| ConfigError::Url(args.url.clone(), "invalid host"))?;
        let path = Template::parse(&target);
        let sample = Uuid::nil();
        if path.render(0, &sample).parse::<Uri>().is_err() {
            return Err(ConfigError::Path(target));
        }
        let method = Method::from_bytes(args.method.as_bytes())
            .map_err(|_| ConfigError::Method(args.method.clone()))?;
        let headers = args
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        let body = match (args.body, args.body_file) {
            (Some(b), _) => b,
            (None, Some(path)) => {
                std::fs::read_to_string(&path).map_err(|e| ConfigError::BodyFile(path, e))?
            }
            (None, None) => String::new(),
        };
        Ok(Self {
            url: args.url,
            connect_to,
            host,
            path,
            method,
            headers,
            body: Template::parse(&body),
            rate: args.rate,
            duration_s: args.duration,
            warmup_s: args.warmup,
            connections: args.connections,
            timeout: Duration::from_millis(args.timeout_ms),
            log: args.log,
        })
    }
}

/// `http://AUTHORITY/TARGET` into the authority and the request target (path and query).
fn split_url(url: &str) -> Result<(&str, String), ConfigError> {
    let bad = |why| ConfigError::Url(url.to_owned(), why);
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(bad("https is not supported (no TLS): use http://"));
    } else {
        return Err(bad("expected http://HOST[:PORT][/PATH]"));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("expected a HOST[:PORT] without user info"));
    }
    let target = match target.chars().next() {
        None => "/".to_owned(),
        Some('?') => format!("/{target}"),
        Some(_) => target.to_owned(),
    };
    Ok((authority, target))
}

/// The authority with port 80 made explicit when the URL has none (`[::1]` included).
fn with_port(authority: &str) -> String {
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    }
}

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderTemplate), ConfigError> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| ConfigError::HeaderShape(raw.to_owned()))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| ConfigError::HeaderName(raw.to_owned()))?;
    let template = Template::parse(value.trim());
    let sample = template.render(0, &Uuid::nil());
    let constant =
        HeaderValue::from_str(&sample).map_err(|_| ConfigError::HeaderValue(raw.to_owned()))?;
    let header = if template.is_constant() {
        HeaderTemplate::Constant(constant)
    } else {
        HeaderTemplate::Rendered(template)
    };
    Ok((name, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_target() {
        let ok = |u: &str| split_url(u).map(|(a, t)| (a.to_owned(), t)).ok();
        assert_eq!(ok("http://h:8080"), Some(("h:8080".into(), "/".into())));
        assert_eq!(ok("http://h?x=1"), Some(("h".into(), "/?x=1".into())));
        assert_eq!(
            ok("http://h/o/{seq}"),
            Some(("h".into(), "/o/{seq}".into()))
        );
        assert!(ok("https://h/").is_none());
        assert!(ok("h:80/").is_none());
        assert!(ok("http:///x").is_none());
        assert_eq!(with_port("h"), "h:80");
        assert_eq!(with_port("[::1]"), "[::1]:80");
        assert_eq!(with_port("[::1]:9"), "[::1]:9");
    }
}
