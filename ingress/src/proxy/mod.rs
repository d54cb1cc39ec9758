//! One client connection: read request heads, route, forward to an upstream, relay the
//! response, keep the connection for the next request. Requests on one connection are handled
//! one after the other, so pipelined requests are answered in order.
//!
//! ```text
//! wait for head (keep-alive idle timeout, drain) ─▶ head complete? (request-head timeout)
//!   ─▶ parse + route + pick + serialise the upstream head     (sync, no await)
//!   ─▶ exchange: checkout (pool | connect, eject and try the next backend on refusal)
//!        ─▶ write head [─▶ 100 Continue ─▶ relay request body]
//!        ─▶ read response head (response timeout; 1xx forwarded) ─▶ relay response body
//!        ─▶ pool the upstream connection | tunnel after 101
//!   ─▶ error? the status comes from `ProxyError::response`; close when the body was not read
//! ```
//!
//! Owns the exchange's control flow and its failure rules (retry once on a fresh connection,
//! close after framing errors). Owns no parsing (see `http`), no state that outlives the
//! connection (the core's view, balancer, pool and counters: see `cores`) and no socket
//! plumbing (see `stream`, `upstream`).

pub mod body;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::access::Entry;
use crate::cores::Core;
use crate::error::{ErrorKind, ErrorResponse, ProxyError};
use crate::http::{
    self, ClientBody, Forwarding, Framing, HttpError, MAX_HEADERS, parse_request, parse_response,
    write_error_retry_after, write_request, write_response,
};
use crate::route;
use crate::stream::{self, Duplex, read_more, write_all};
use crate::upstream::{self, UpConn};
use body::{BodyMode, RelayError, relay};

/// Read buffer size of a client connection.
const CLIENT_BUF: usize = 16 * 1024;
/// Most backends tried for one request when connecting fails.
const MAX_CONNECT_TRIES: usize = 3;
/// A Content-Length body up to this size is read whole before the response head is written,
/// so head and body leave in one write (an origin's head and sendfile'd body arrive as two
/// segments; writing each as it comes costs the client a second send and wake-up).
const COALESCE_BODY: usize = 32 * 1024;

/// What the exchange needs to know about the request once its head is gone from the buffer.
#[derive(Debug, Clone, Copy)]
struct ReqInfo {
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
    upgrade: bool,
    is_head: bool,
    idempotent: bool,
    minor: u8,
    /// How long the upstream has to send its response head (the route's `timeout`, else
    /// `--response-timeout`).
    response_head: Duration,
    /// The route's `max-body`: most request body bytes (after chunked decoding).
    max_body: Option<u64>,
}

impl ReqInfo {
    fn has_body(&self) -> bool {
        matches!(self.framing, Framing::Chunked)
            || matches!(self.framing, Framing::Length(n) if n > 0)
    }
}

/// A client connection's buffers, reused for every request on it.
struct Client<S> {
    stream: S,
    rbuf: Vec<u8>,
    out: Vec<u8>,
    up_head: Vec<u8>,
    service: String,
    route: String,
    /// The believed client address as text, when a trusted proxy named one.
    real_ip: String,
    /// Filled only when the access log is on.
    log: LogFields,
}

/// What the access log says of the current request besides status, route and timing.
#[derive(Default)]
struct LogFields {
    client_ip: String,
    /// `METHOD TARGET`.
    request: String,
    minor: u8,
    upstream: Option<SocketAddr>,
}

/// How an exchange ended.
enum Outcome {
    /// The response was relayed; close the client connection when `close`.
    Done { status: u16, close: bool },
    /// 101: tunnel the client and this upstream connection.
    Tunnel(UpConn),
}

/// How forwarding on one upstream connection ended.
enum Forwarded {
    /// The response was relayed; `reusable`: the upstream connection may be pooled.
    Done {
        status: u16,
        close: bool,
        reusable: bool,
    },
    /// 101 was relayed; the connection becomes a tunnel.
    Upgraded,
}

/// A failed exchange and whether the client already got part of a response.
struct Failed {
    error: ProxyError,
    response_started: bool,
}

impl From<ProxyError> for Failed {
    fn from(error: ProxyError) -> Self {
        Self {
            error,
            response_started: false,
        }
    }
}

/// Serves one accepted client connection until it closes, fails, or the core drains.
pub async fn serve_connection<S: Duplex>(core: Rc<Core>, stream: S, peer: SocketAddr) {
    let peer_ip = peer.ip().to_canonical();
    let client_ip = peer_ip.to_string();
    let mut c = Client {
        stream,
        rbuf: Vec::with_capacity(CLIENT_BUF),
        out: Vec::with_capacity(CLIENT_BUF),
        up_head: Vec::with_capacity(2048),
        service: String::new(),
        route: String::new(),
        real_ip: String::new(),
        log: LogFields::default(),
    };
    if core.logs_access() {
        c.log.client_ip.clone_from(&client_ip);
    }
    let mut first = true;
    loop {
        let head_start = Instant::now();
        // Wait for the next request (keep-alive idle, or until the core drains).
        if c.rbuf.is_empty() {
            if core.draining() && !first {
                return;
            }
            let wait = if first {
                core.config.timeouts.request_head
            } else {
                core.config.timeouts.keepalive_idle
            };
            let read = if first {
                // A new connection's first request is served even when the core starts
                // draining meanwhile (then with `Connection: close`): its client connected
                // before we stopped accepting, and a restart must not turn it away.
                monoio::time::timeout(wait, c.stream.read_more(&mut c.rbuf)).await
            } else {
                monoio::select! {
                    biased;
                    r = monoio::time::timeout(wait, c.stream.read_more(&mut c.rbuf)) => r,
                    () = core.drain_signal() => return,
                }
            };
            match read {
                Ok(Ok(n)) if n > 0 => {}
                Err(_) if first => {
                    respond_error(
                        &core,
                        &mut c,
                        ProxyError::new(ErrorKind::ClientHeadTimeout),
                        false,
                        false,
                    )
                    .await;
                    return;
                }
                _ => return,
            }
        }
        first = false;
        let started = Instant::now();
        // Read until the head is complete, then decide everything about it without awaiting.
        let planned = loop {
            let step = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                match parse_request(&c.rbuf, &mut headers) {
                    Ok(None) => None,
                    Err(e) => Some(Err(e)),
                    Ok(Some(head)) => {
                        if core.logs_access() {
                            c.log.request.clear();
                            c.log.request.push_str(head.method);
                            c.log.request.push(' ');
                            c.log.request.push_str(head.target);
                            c.log.minor = head.minor;
                            c.log.upstream = None;
                        }
                        let planned = plan(
                            &core,
                            &head,
                            Peer {
                                ip: peer_ip,
                                text: &client_ip,
                            },
                            &mut c.up_head,
                            &mut c.route,
                            &mut c.service,
                            &mut c.real_ip,
                        );
                        Some(Ok((head.head_len, planned)))
                    }
                }
            };
            match step {
                Some(Ok((head_len, planned))) => {
                    c.rbuf.drain(..head_len);
                    break Ok(planned);
                }
                Some(Err(e)) => break Err(e),
                None => {
                    let left = core
                        .config
                        .timeouts
                        .request_head
                        .saturating_sub(head_start.elapsed());
                    match monoio::time::timeout(left, c.stream.read_more(&mut c.rbuf)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        Ok(_) => return,
                        Err(_) => {
                            let e = ProxyError::new(ErrorKind::ClientHeadTimeout);
                            respond_error(&core, &mut c, e, false, false).await;
                            return;
                        }
                    }
                }
            }
        };
        let (info, target) = match planned {
            Err(e) => {
                let e = ProxyError::new(ErrorKind::BadRequest(e));
                c.route.clear();
                c.route.push_str("none");
                c.log.request.clear();
                c.log.upstream = None;
                respond_error(&core, &mut c, e, false, false).await;
                record(&core, &c, 400, started);
                linger_close(c.stream).await;
                return;
            }
            Ok(p) => p,
        };
        let result = match target {
            Ok(addr) => exchange(&core, &mut c, info, addr).await,
            Err(e) => Err(Failed::from(e)),
        };
        match result {
            Ok(Outcome::Done { status, close }) => {
                record(&core, &c, status, started);
                if close || core.draining() {
                    return;
                }
            }
            Ok(Outcome::Tunnel(up)) => {
                record(&core, &c, 101, started);
                let mut up = up;
                if !c.rbuf.is_empty() && write_all(&mut up.stream, &mut c.rbuf).await.is_err() {
                    return;
                }
                body::tunnel(c.stream, up.stream).await;
                return;
            }
            Err(f) => {
                {
                    let mut counters = core.counters.borrow_mut();
                    counters.proxy_errors += 1;
                    let limit = match f.error.kind {
                        ErrorKind::RateLimited { .. } => Some("rate"),
                        ErrorKind::BodyTooLarge => Some("max_body"),
                        ErrorKind::ResponseTimeout => Some("timeout"),
                        _ => None,
                    };
                    if let Some(limit) = limit {
                        counters.limited(&c.route, limit);
                    }
                }
                if f.response_started {
                    return;
                }
                // An unread request body cannot be told from the next request: close.
                let close = info.has_body() || !info.keep_alive;
                let status = respond_error(&core, &mut c, f.error, close, info.is_head).await;
                record(&core, &c, status, started);
                if close
                    || status == 0
                    || matches!(
                        f.error.response(),
                        ErrorResponse::Status { close: true, .. }
                    )
                {
                    linger_close(c.stream).await;
                    return;
                }
            }
        }
    }
}

/// The TCP peer of a client connection.
#[derive(Clone, Copy)]
struct Peer<'a> {
    ip: std::net::IpAddr,
    /// `ip` as text.
    text: &'a str,
}

/// Routes the parsed request, picks a backend and writes the upstream head into `up_head`.
fn plan(
    core: &Core,
    head: &http::RequestHead<'_, '_>,
    peer: Peer<'_>,
    up_head: &mut Vec<u8>,
    route_label: &mut String,
    service: &mut String,
    real_ip: &mut String,
) -> (ReqInfo, Result<SocketAddr, ProxyError>) {
    let mut info = ReqInfo {
        framing: head.framing,
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        upgrade: head.upgrade,
        is_head: head.is_head(),
        idempotent: head.is_idempotent(),
        minor: head.minor,
        response_head: core.config.timeouts.response_head,
        max_body: None,
    };
    core.refresh();
    route_label.clear();
    service.clear();
    let routed = core.with_view(|view| {
        view.routes
            .lookup_indexed(head.host, head.path)
            .map(|(index, route)| {
                route_label.push_str(&route.label);
                service.push_str(route.service.as_str());
                (
                    route.timeout,
                    route.max_body,
                    route.rate.map(|r| (index, r)),
                    route::stripped_target(route, head.path),
                )
            })
    });
    let Some((route_timeout, max_body, rate, target_override)) = routed else {
        route_label.push_str("none");
        return (info, Err(ProxyError::new(ErrorKind::NoRoute)));
    };
    if let Some(t) = route_timeout {
        info.response_head = t;
    }
    info.max_body = max_body;
    real_ip.clear();
    let client = if core.config.trusted_proxies.is_empty() {
        peer.ip
    } else {
        let believed = crate::client::client_addr(
            peer.ip,
            head.headers
                .iter()
                .filter(|h| http::name_is(h.name, "x-forwarded-for"))
                .map(|h| h.value),
            &core.config.trusted_proxies,
        );
        if believed != peer.ip {
            use std::fmt::Write as _;
            let _ = write!(real_ip, "{believed}");
        }
        believed
    };
    if let Some((index, rate)) = rate {
        let admitted = core.limiter.borrow_mut().admit(
            index,
            rate,
            core.config.threads,
            client,
            Instant::now(),
        );
        if let Err(retry_after_s) = admitted {
            return (
                info,
                Err(ProxyError::new(ErrorKind::RateLimited { retry_after_s })),
            );
        }
    }
    if let (Some(max), Framing::Length(n)) = (max_body, head.framing)
        && n > max
    {
        // Refused before any upstream is contacted.
        return (info, Err(ProxyError::new(ErrorKind::BodyTooLarge)));
    }
    let target = core.pick(service, &[]);
    up_head.clear();
    if let Ok(addr) = target {
        let host = if head.has_host {
            String::new()
        } else {
            addr.to_string()
        };
        let fwd = Forwarding {
            client_ip: peer.text,
            real_ip: if real_ip.is_empty() {
                peer.text
            } else {
                real_ip
            },
            proto: core.config.proto,
            default_host: &host,
            tunnel: head.upgrade,
            target: target_override,
        };
        write_request(head, &fwd, up_head);
    }
    (info, target)
}

/// Forwards one request and relays its response.
async fn exchange<S: Duplex>(
    core: &Rc<Core>,
    c: &mut Client<S>,
    info: ReqInfo,
    first: SocketAddr,
) -> Result<Outcome, Failed> {
    let mut addr = first;
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut fresh_only = false;
    loop {
        let pooled = if fresh_only {
            None
        } else {
            core.take_pooled(addr)
        };
        let reused = pooled.is_some();
        let mut up = match pooled {
            Some(up) => up,
            None => match upstream::connect(
                addr,
                core.config.timeouts.connect,
                core.config.timeouts.upstream_link,
            )
            .await
            {
                Ok(up) => up,
                Err(e) => {
                    if e.kind == ErrorKind::ConnectTimeout {
                        core.eject_host(addr);
                    } else {
                        core.eject(addr);
                    }
                    tried.push(addr);
                    if tried.len() >= MAX_CONNECT_TRIES {
                        return Err(e.into());
                    }
                    match core.pick(&c.service, &tried) {
                        Ok(next) => {
                            addr = next;
                            continue;
                        }
                        Err(_) => return Err(e.into()),
                    }
                }
            },
        };
        {
            let mut counters = core.counters.borrow_mut();
            if reused {
                counters.upstream_reused += 1;
            } else {
                counters.upstream_new += 1;
            }
        }
        core.begin(addr);
        c.log.upstream = Some(addr);
        let result = forward(core, c, &info, &mut up, reused).await;
        core.end(addr);
        match result {
            Ok(Forwarded::Upgraded) => {
                core.succeeded(addr);
                return Ok(Outcome::Tunnel(up));
            }
            Ok(Forwarded::Done {
                status,
                close,
                reusable,
            }) => {
                core.succeeded(addr);
                if reusable {
                    core.put_pooled(addr, up);
                }
                return Ok(Outcome::Done { status, close });
            }
            Err(f) if f.error.kind == ErrorKind::UpstreamLost => {
                // Its host stopped acknowledging: the other replicas there are most likely gone
                // too. An idempotent request with no response byte yet goes to another host.
                tracing::warn!(backend = %addr, "upstream link lost (nothing acknowledged within the link timeout); host ejected");
                core.eject_host(addr);
                tried.push(addr);
                if f.error.retry
                    && tried.len() < MAX_CONNECT_TRIES
                    && let Ok(next) = core.pick(&c.service, &tried)
                {
                    core.counters.borrow_mut().retries += 1;
                    addr = next;
                    fresh_only = false;
                    continue;
                }
                return Err(f);
            }
            Err(f) if f.error.retry && !fresh_only => {
                core.counters.borrow_mut().retries += 1;
                fresh_only = true;
            }
            Err(f) => {
                if !reused && f.error.kind == ErrorKind::UpstreamIo && !f.response_started {
                    core.eject(addr);
                }
                return Err(f);
            }
        }
    }
}

/// Request bodies up to this size are sent with the link timeout on: they fit in a Linux
/// receive window as it starts (64 KiB), so a backend that does not read yet still acknowledges
/// them.
const UNPAUSED_BODY: u64 = 64 * 1024;

/// Whether an upstream socket error means its host is gone: the link timeout expired
/// (`ETIMEDOUT`), or the network says the host cannot be reached.
fn link_lost(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::TimedOut | K::HostUnreachable | K::NetworkUnreachable
    )
}

/// Sends the request on `up` and relays the response. Returns the outcome and whether `up`
/// can be pooled.
async fn forward<S: Duplex>(
    core: &Core,
    c: &mut Client<S>,
    info: &ReqInfo,
    up: &mut UpConn,
    reused: bool,
) -> Result<Forwarded, Failed> {
    let upstream_io = |retry: bool| {
        let e = ProxyError::new(ErrorKind::UpstreamIo);
        Failed::from(if retry { e.retryable() } else { e })
    };
    // Nothing of the request can have been processed by a host that acknowledged nothing,
    // but only an idempotent request without a body is sent again (the body is not kept).
    let lost = |retry: bool| {
        let e = ProxyError::new(ErrorKind::UpstreamLost);
        Failed::from(if retry && info.idempotent && !info.has_body() {
            e.retryable()
        } else {
            e
        })
    };
    // The head alone first: if it fails on a reused connection nothing of the body was read.
    if let Err(e) = stream::write_all_keep(&mut up.stream, &mut c.up_head).await {
        if link_lost(&e) {
            return Err(lost(true));
        }
        return Err(upstream_io(reused));
    }
    if info.has_body() {
        if info.expect_continue {
            c.out.clear();
            c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            if c.stream.write_buf(&mut c.out).await.is_err() {
                return Err(ProxyError::new(ErrorKind::ClientIo).into());
            }
        }
        let mode = match info.framing {
            Framing::Length(n) => BodyMode::Length(n),
            _ => BodyMode::Chunked { reencode: true },
        };
        // A body larger than a receive buffer may meet a zero window from a backend that reads
        // slowly, which the link timeout would take for a lost host: pause it meanwhile.
        let link = core.config.timeouts.upstream_link;
        let paused = link.is_some()
            && !matches!(info.framing, Framing::Length(n) if n <= UNPAUSED_BODY)
            && upstream::set_user_timeout(&up.stream, None).is_ok();
        let mut out = std::mem::take(&mut c.out);
        out.clear();
        let idle = core.config.timeouts.body_idle;
        let relayed = relay(
            mode,
            &mut c.stream,
            &mut c.rbuf,
            &mut up.stream,
            &mut out,
            idle,
            info.max_body.unwrap_or(u64::MAX),
        )
        .await;
        c.out = out;
        match relayed {
            Ok(()) => {}
            Err(RelayError::Framing(e)) => {
                return Err(ProxyError::new(ErrorKind::BadRequest(e)).into());
            }
            Err(RelayError::Source(_) | RelayError::SourceClosed) => {
                return Err(ProxyError::new(ErrorKind::ClientIo).into());
            }
            Err(RelayError::Destination(_)) => return Err(upstream_io(false)),
            // Dropping `up` (never pooled after an error) aborts the upstream request; no
            // response byte has gone to the client yet (the response is read after the body).
            Err(RelayError::TooLarge) => {
                return Err(ProxyError::new(ErrorKind::BodyTooLarge).into());
            }
        }
        if paused && let Err(e) = upstream::set_user_timeout(&up.stream, link) {
            tracing::debug!(error = %e, "cannot restore the link timeout");
        }
    }
    // Response head(s).
    let retry_ok = reused && info.idempotent && !info.has_body();
    let deadline = Instant::now() + info.response_head;
    let mut got_bytes = !up.buf.is_empty();
    c.out.clear();
    loop {
        let step = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match parse_response(&up.buf, &mut headers, info.is_head) {
                Ok(None) => None,
                Err(e) => Some(Err(e)),
                Ok(Some(head)) => {
                    let interim = head.is_interim();
                    let status = head.status;
                    let len = head.head_len;
                    let reusable = head.reusable;
                    let framing = if interim && status == 100 {
                        None
                    } else {
                        let keep = info.keep_alive && !core.draining();
                        Some(write_response(&head, info.minor, keep, &mut c.out))
                    };
                    up.buf.drain(..len);
                    Some(Ok((interim, status, reusable, framing)))
                }
            }
        };
        match step {
            Some(Err(e)) => {
                tracing::debug!(error = %e, "malformed upstream response");
                return Err(ProxyError::new(ErrorKind::BadResponse(e)).into());
            }
            Some(Ok((true, _, _, _))) => {
                // Interim: forward it (100 was dropped: the proxy answered Expect itself).
                if !c.out.is_empty()
                    && info.minor == 1
                    && c.stream.write_buf(&mut c.out).await.is_err()
                {
                    return Err(ProxyError::new(ErrorKind::ClientIo).into());
                }
                c.out.clear();
                continue;
            }
            Some(Ok((false, status, reusable, Some(framing)))) => {
                if status == 101 {
                    if !info.upgrade {
                        let e = HttpError::BadStartLine;
                        return Err(ProxyError::new(ErrorKind::BadResponse(e)).into());
                    }
                    c.out.extend_from_slice(&up.buf);
                    up.buf.clear();
                    if c.stream.write_buf(&mut c.out).await.is_err() {
                        return Err(ProxyError::new(ErrorKind::ClientIo).into());
                    }
                    return Ok(Forwarded::Upgraded);
                }
                return relay_response(
                    c,
                    up,
                    framing,
                    status,
                    reusable,
                    core.config.timeouts.body_idle,
                )
                .await;
            }
            Some(Ok((false, _, _, None))) => {
                // A final response always has a framing; unreachable by construction.
                let e = HttpError::BadStartLine;
                return Err(ProxyError::new(ErrorKind::BadResponse(e)).into());
            }
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                match monoio::time::timeout(left, read_more(&mut up.stream, &mut up.buf)).await {
                    Err(_) => return Err(ProxyError::new(ErrorKind::ResponseTimeout).into()),
                    Ok(Ok(n)) if n > 0 => got_bytes = true,
                    Ok(Err(e)) if link_lost(&e) => {
                        return Err(lost(!got_bytes));
                    }
                    Ok(_) => return Err(upstream_io(retry_ok && !got_bytes)),
                }
            }
        }
    }
}

/// Writes the response head (in `c.out`) and relays the body to the client.
async fn relay_response<S: Duplex>(
    c: &mut Client<S>,
    up: &mut UpConn,
    framing: http::ClientFraming,
    status: u16,
    reusable: bool,
    idle: std::time::Duration,
) -> Result<Forwarded, Failed> {
    let mode = match framing.body {
        ClientBody::None => None,
        ClientBody::Length(n) => Some(BodyMode::Length(n)),
        ClientBody::Chunked => Some(BodyMode::Chunked { reencode: true }),
        ClientBody::Dechunk => Some(BodyMode::Chunked { reencode: false }),
        ClientBody::UntilClose => Some(BodyMode::UntilClose),
    };
    let started = |error| Failed {
        error,
        response_started: true,
    };
    if let ClientBody::Length(n) = framing.body {
        let want = usize::try_from(n).unwrap_or(usize::MAX);
        if want <= COALESCE_BODY {
            // Nothing was written to the client yet: a failure here is still a clean 502/504.
            while up.buf.len() < want {
                match monoio::time::timeout(idle, read_more(&mut up.stream, &mut up.buf)).await {
                    Ok(Ok(got)) if got > 0 => {}
                    Ok(_) => return Err(ProxyError::new(ErrorKind::UpstreamIo).into()),
                    Err(_) => return Err(ProxyError::new(ErrorKind::ResponseTimeout).into()),
                }
            }
        }
    }
    let mut out = std::mem::take(&mut c.out);
    let relayed = match mode {
        None => c
            .stream
            .write_buf(&mut out)
            .await
            .map_err(RelayError::Destination),
        Some(mode) => {
            relay(
                mode,
                &mut up.stream,
                &mut up.buf,
                &mut c.stream,
                &mut out,
                idle,
                u64::MAX,
            )
            .await
        }
    };
    out.clear();
    c.out = out;
    match relayed {
        Ok(()) => Ok(Forwarded::Done {
            status,
            close: framing.close,
            reusable: reusable && up.buf.is_empty(),
        }),
        Err(RelayError::Destination(_)) => Err(started(ProxyError::new(ErrorKind::ClientIo))),
        Err(RelayError::Framing(e)) => Err(started(ProxyError::new(ErrorKind::BadResponse(e)))),
        // `TooLarge` cannot happen here (no limit on responses); counted as the upstream's.
        Err(RelayError::Source(_) | RelayError::SourceClosed | RelayError::TooLarge) => {
            Err(started(ProxyError::new(ErrorKind::UpstreamIo)))
        }
    }
}

/// Writes the error response for `error` (unless the client is gone); returns its status (0:
/// none sent). `head_only` omits the body (HEAD requests).
async fn respond_error<S: Duplex>(
    core: &Core,
    c: &mut Client<S>,
    error: ProxyError,
    close: bool,
    head_only: bool,
) -> u16 {
    let ErrorResponse::Status {
        status,
        text,
        close: must_close,
    } = error.response()
    else {
        return 0;
    };
    tracing::debug!(core = core.id, ?error, status, "request failed");
    c.out.clear();
    let retry_after = match error.kind {
        ErrorKind::RateLimited { retry_after_s } => Some(retry_after_s),
        _ => None,
    };
    write_error_retry_after(
        &mut c.out,
        status,
        text,
        close || must_close,
        head_only,
        retry_after,
    );
    let _ = c.stream.write_buf(&mut c.out).await;
    status
}

/// Counts one response, and logs it when the access log is on.
fn record<S>(core: &Core, c: &Client<S>, status: u16, started: Instant) {
    if status == 0 {
        return;
    }
    let elapsed = started.elapsed();
    core.counters.borrow_mut().record(&c.route, status, elapsed);
    if core.logs_access() {
        core.log_access(&Entry {
            client: &c.log.client_ip,
            request: &c.log.request,
            minor: c.log.minor,
            status,
            elapsed,
            route: &c.route,
            upstream: c.log.upstream,
        });
    }
}

/// Closes after an error without resetting the connection under the response: shut down
/// writing, then read and discard what the client still sends, briefly.
async fn linger_close<S: Duplex>(mut stream: S) {
    let _ = stream.close_write().await;
    let mut buf = Vec::with_capacity(stream::READ_CHUNK);
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut total = 0usize;
    while total < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(left, stream.read_more(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                total += n;
                buf.clear();
            }
            _ => return,
        }
    }
}
