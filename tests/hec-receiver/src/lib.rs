//! A test receiver for Splunk's HTTP Event Collector (HEC) protocol, for tests where no real
//! Splunk is installable. It follows Splunk's documented behaviour:
//!
//! * endpoints `/services/collector`, `/services/collector/event` (+`/1.0`),
//!   `/services/collector/raw` (+`/1.0`), `/services/collector/ack`,
//!   `/services/collector/health` (+`/1.0`);
//! * auth: `Authorization: Splunk <token>` or Basic (token as password); missing → 401 code 2,
//!   malformed → 401 code 3, unknown token → 403 code 4, disabled token → 403 code 1,
//!   `?token=` → 400 code 16 (query-string auth not enabled);
//! * channels: `X-Splunk-Request-Channel` header or `?channel=`; a GUID is required for
//!   ack-enabled tokens (missing → 400 code 10, not a GUID → 400 code 11);
//! * bodies: concatenated JSON event objects, optionally `Content-Encoding: gzip`; empty →
//!   400 code 5; per-event errors (bad JSON/not an object → 6, index not allowed → 7, no
//!   `event` → 12, blank `event` → 13, nested indexed `fields` → 15) answer 400 with
//!   `invalid-event-number` (0-based) after keeping the events before it, as Splunk does;
//! * indexer acknowledgement: success answers carry `ackId` (per channel, from 0); `POST
//!   /services/collector/ack` with `{"acks":[..]}` answers `{"acks":{"0":true,..}}`, and a
//!   `true` is reported only once; ack on a non-ack token → 400 code 14.
//!
//! Test controls: inject responses for the next requests ([`HecReceiver::inject`], e.g. 503
//! code 9), mark events containing a marker as invalid ([`HecReceiver::set_poison`]),
//! withhold acks ([`HecReceiver::withhold_acks`]), and inspect accepted events and the
//! request log. `GET /__test/events` returns the accepted events as JSON (for non-Rust
//! clients).
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde_json::{json, Value};

/// One HEC token.
#[derive(Clone, Debug)]
pub struct TokenConfig {
    /// The token (a GUID in Splunk).
    pub token: String,
    /// Disabled tokens answer 403 code 1.
    pub enabled: bool,
    /// Indexer acknowledgement (`useACK`).
    pub ack: bool,
    /// Allowed indexes; empty = any.
    pub indexes: Vec<String>,
}

impl TokenConfig {
    /// An enabled token without ack, any index.
    pub fn new(token: &str) -> Self {
        TokenConfig {
            token: token.to_string(),
            enabled: true,
            ack: false,
            indexes: Vec::new(),
        }
    }

    /// Same token with indexer acknowledgement on.
    pub fn with_ack(mut self) -> Self {
        self.ack = true;
        self
    }
}

/// A canned answer for the next event request (after authentication).
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP status.
    pub status: u16,
    /// HEC code.
    pub code: u32,
    /// HEC text.
    pub text: String,
}

impl Fault {
    /// 503 code 9 "Server is busy".
    pub fn busy() -> Self {
        Fault {
            status: 503,
            code: 9,
            text: "Server is busy".into(),
        }
    }

    /// 500 code 8 "Internal server error".
    pub fn internal() -> Self {
        Fault {
            status: 500,
            code: 8,
            text: "Internal server error".into(),
        }
    }

    /// 503 code 18 "HEC is unhealthy, queues are full".
    pub fn queues_full() -> Self {
        Fault {
            status: 503,
            code: 18,
            text: "HEC is unhealthy, queues are full".into(),
        }
    }
}

/// One accepted event.
#[derive(Clone, Debug)]
pub struct ReceivedEvent {
    /// The event object as sent (`time`, `sourcetype`, `event`, ...).
    pub envelope: Value,
    /// The channel of the request, if any.
    pub channel: Option<String>,
    /// The ackId of the request, if the token uses ack.
    pub ack_id: Option<u64>,
}

/// One request, as logged.
#[derive(Clone, Debug)]
pub struct RequestLog {
    /// Path without query.
    pub path: String,
    /// HTTP status answered.
    pub status: u16,
    /// HEC code answered (0 = success).
    pub code: u32,
    /// The body was gzip-encoded.
    pub gzip: bool,
    /// Events accepted from this request.
    pub accepted: usize,
    /// Channel used.
    pub channel: Option<String>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, TokenConfig>,
    faults: VecDeque<Fault>,
    poison: Option<String>,
    withhold_acks: usize,
    events: Vec<ReceivedEvent>,
    log: Vec<RequestLog>,
    channels: HashMap<String, Channel>,
}

#[derive(Default)]
struct Channel {
    next_ack: u64,
    /// ackId → indexed (true) or withheld (false, never becomes true).
    acks: HashMap<u64, bool>,
}

/// A running receiver on 127.0.0.1.
pub struct HecReceiver {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl HecReceiver {
    /// Starts on an ephemeral port with these tokens.
    pub fn start(tokens: Vec<TokenConfig>) -> anyhow::Result<Self> {
        Self::start_on("127.0.0.1:0", tokens)
    }

    /// Starts on `addr` with these tokens.
    pub fn start_on(addr: &str, tokens: Vec<TokenConfig>) -> anyhow::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("hec-receiver: bind {addr}: {e}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| anyhow::anyhow!("hec-receiver: not an IP listener"))?;
        let server = Arc::new(server);
        let state = Arc::new(Mutex::new(State {
            tokens: tokens.into_iter().map(|t| (t.token.clone(), t)).collect(),
            ..State::default()
        }));
        let (srv, st) = (Arc::clone(&server), Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("hec-receiver".into())
            .spawn(move || {
                for req in srv.incoming_requests() {
                    handle(&st, req);
                }
            })?;
        Ok(HecReceiver {
            addr,
            state,
            server,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next event request(s) with these faults, in order.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Events whose JSON text contains `marker` are invalid (400 code 6).
    pub fn set_poison(&self, marker: Option<&str>) {
        self.lock().poison = marker.map(str::to_string);
    }

    /// The next `n` successful ack requests get an ackId that never becomes true.
    pub fn withhold_acks(&self, n: usize) {
        self.lock().withhold_acks = n;
    }

    /// Accepted events so far.
    pub fn events(&self) -> Vec<ReceivedEvent> {
        self.lock().events.clone()
    }

    /// The request log so far.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.lock().log.clone()
    }
}

impl Drop for HecReceiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A HEC answer: status, code, text and extra members.
struct Answer {
    status: u16,
    body: Value,
}

fn hec(status: u16, code: u32, text: &str) -> Answer {
    Answer {
        status,
        body: json!({"text": text, "code": code}),
    }
}

fn handle(state: &Arc<Mutex<State>>, mut req: tiny_http::Request) {
    let url = req.url().to_string();
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (url.clone(), String::new()),
    };
    let header = |name: &str| {
        req.headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let auth = header("Authorization");
    let gzip = header("Content-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let channel = header("X-Splunk-Request-Channel").or_else(|| query_param(&query, "channel"));
    let query_token = query_param(&query, "token");
    let mut raw = Vec::new();
    let read_ok = req.as_reader().read_to_end(&mut raw).is_ok();

    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    let mut accepted = 0;
    let answer = match path.trim_end_matches('/') {
        "/__test/events" => Answer {
            status: 200,
            body: Value::Array(st.events.iter().map(|e| e.envelope.clone()).collect()),
        },
        "/services/collector/health" | "/services/collector/health/1.0" => {
            hec(200, 17, "HEC is healthy")
        }
        p @ ("/services/collector"
        | "/services/collector/event"
        | "/services/collector/event/1.0"
        | "/services/collector/raw"
        | "/services/collector/raw/1.0"
        | "/services/collector/ack") => {
            match authenticate(&st, auth.as_deref(), query_token.is_some()) {
                Err(a) => a,
                Ok(token) => {
                    if !read_ok {
                        hec(400, 6, "Invalid data format")
                    } else if p == "/services/collector/ack" {
                        ack_status(&mut st, &token, channel.as_deref(), &raw)
                    } else {
                        let body = if gzip { gunzip(&raw) } else { Some(raw) };
                        match body {
                            None => hec(400, 6, "Invalid data format"),
                            Some(body) => {
                                let raw_endpoint = p.starts_with("/services/collector/raw");
                                let (a, n) = ingest(
                                    &mut st,
                                    &token,
                                    channel.as_deref(),
                                    &body,
                                    raw_endpoint,
                                );
                                accepted = n;
                                a
                            }
                        }
                    }
                }
            }
        }
        _ => Answer {
            status: 404,
            body: json!({"text": "The requested URL was not found on this server.", "code": 404}),
        },
    };
    let code = answer.body.get("code").and_then(Value::as_u64).unwrap_or(0) as u32;
    st.log.push(RequestLog {
        path,
        status: answer.status,
        code,
        gzip,
        accepted,
        channel,
    });
    drop(st);
    let mut resp =
        tiny_http::Response::from_string(answer.body.to_string()).with_status_code(answer.status);
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]) {
        resp = resp.with_header(h);
    }
    let _ = req.respond(resp);
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| v.to_string())
    })
}

fn authenticate(st: &State, auth: Option<&str>, query_token: bool) -> Result<TokenConfig, Answer> {
    let Some(auth) = auth else {
        return Err(if query_token {
            hec(400, 16, "Query string authorization is not enabled")
        } else {
            hec(401, 2, "Token is required")
        });
    };
    let token = if let Some(t) = strip_prefix_ci(auth, "Splunk ") {
        t.trim().to_string()
    } else if let Some(b) = strip_prefix_ci(auth, "Basic ") {
        match decode_basic(b.trim()) {
            Some(t) => t,
            None => return Err(hec(401, 3, "Invalid authorization")),
        }
    } else {
        return Err(hec(401, 3, "Invalid authorization"));
    };
    match st.tokens.get(&token) {
        None => Err(hec(403, 4, "Invalid token")),
        Some(t) if !t.enabled => Err(hec(403, 1, "Token disabled")),
        Some(t) => Ok(t.clone()),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// Basic auth: base64("user:token"); the token is the password.
fn decode_basic(b64: &str) -> Option<String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in b64.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

fn gunzip(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Channel checks for ack-enabled tokens; returns the channel to use (if any).
fn check_channel(token: &TokenConfig, channel: Option<&str>) -> Result<Option<String>, Answer> {
    match channel {
        None if token.ack => Err(hec(400, 10, "Data channel is missing")),
        Some(c) if !is_guid(c) => Err(hec(400, 11, "Invalid data channel")),
        other => Ok(other.map(str::to_string)),
    }
}

fn ingest(
    st: &mut State,
    token: &TokenConfig,
    channel: Option<&str>,
    body: &[u8],
    raw_endpoint: bool,
) -> (Answer, usize) {
    let channel = match check_channel(token, channel) {
        Ok(c) => c,
        Err(a) => return (a, 0),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return (hec(400, 5, "No data"), 0);
    }
    if let Some(f) = st.faults.pop_front() {
        return (hec(f.status, f.code, &f.text), 0);
    }
    // Validate event by event; events before an invalid one are kept (Splunk indexes them).
    let mut good: Vec<Value> = Vec::new();
    let mut failure: Option<(u32, &str, usize)> = None;
    if raw_endpoint {
        for line in String::from_utf8_lossy(body)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            good.push(json!({"event": line}));
        }
    } else {
        let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
        let mut i = 0usize;
        loop {
            let next = stream.next();
            let Some(item) = next else { break };
            let problem = match &item {
                Err(_) => Some((6, "Invalid data format")),
                Ok(v) => validate_event(st, token, v),
            };
            if let Some((code, text)) = problem {
                failure = Some((code, text, i));
                break;
            }
            if let Ok(v) = item {
                good.push(v);
            }
            i += 1;
        }
    }
    let n = good.len();
    let ack_id = if token.ack && failure.is_none() {
        let withhold = st.withhold_acks > 0;
        if withhold {
            st.withhold_acks -= 1;
        }
        let ch = st
            .channels
            .entry(channel.clone().unwrap_or_default())
            .or_default();
        let id = ch.next_ack;
        ch.next_ack += 1;
        ch.acks.insert(id, !withhold);
        Some(id)
    } else {
        None
    };
    for envelope in good {
        st.events.push(ReceivedEvent {
            envelope,
            channel: channel.clone(),
            ack_id,
        });
    }
    match failure {
        Some((code, text, i)) => (
            Answer {
                status: 400,
                body: json!({"text": text, "code": code, "invalid-event-number": i}),
            },
            n,
        ),
        None => {
            let mut body = json!({"text": "Success", "code": 0});
            if let (Some(id), Some(obj)) = (ack_id, body.as_object_mut()) {
                obj.insert("ackId".into(), json!(id));
            }
            (Answer { status: 200, body }, n)
        }
    }
}

fn validate_event(st: &State, token: &TokenConfig, v: &Value) -> Option<(u32, &'static str)> {
    let Some(obj) = v.as_object() else {
        return Some((6, "Invalid data format"));
    };
    if let Some(marker) = &st.poison {
        if v.to_string().contains(marker.as_str()) {
            return Some((6, "Invalid data format"));
        }
    }
    match obj.get("time") {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(s)) if s.parse::<f64>().is_ok() => {}
        Some(_) => return Some((6, "Invalid data format")),
    }
    match obj.get("event") {
        None => return Some((12, "Event field is required")),
        Some(Value::String(s)) if s.is_empty() => return Some((13, "Event field cannot be blank")),
        Some(Value::Null) => return Some((13, "Event field cannot be blank")),
        Some(_) => {}
    }
    if let Some(index) = obj.get("index") {
        let ok = index
            .as_str()
            .is_some_and(|i| token.indexes.is_empty() || token.indexes.iter().any(|t| t == i));
        if !ok {
            return Some((7, "Incorrect index"));
        }
    }
    if let Some(fields) = obj.get("fields") {
        let flat = fields.as_object().is_some_and(|m| {
            m.values().all(|v| match v {
                Value::Object(_) => false,
                Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
                _ => true,
            })
        });
        if !flat {
            return Some((15, "Error in handling indexed fields"));
        }
    }
    None
}

fn ack_status(st: &mut State, token: &TokenConfig, channel: Option<&str>, body: &[u8]) -> Answer {
    if !token.ack {
        return hec(400, 14, "ACK is disabled");
    }
    let channel = match check_channel(token, channel) {
        Ok(Some(c)) => c,
        Ok(None) => return hec(400, 10, "Data channel is missing"),
        Err(a) => return a,
    };
    let ids: Option<Vec<u64>> = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("acks")?
            .as_array()?
            .iter()
            .map(Value::as_u64)
            .collect()
    });
    let Some(ids) = ids else {
        return hec(400, 6, "Invalid data format");
    };
    let Some(ch) = st.channels.get_mut(&channel) else {
        return hec(400, 11, "Invalid data channel");
    };
    let mut acks = serde_json::Map::new();
    for id in ids {
        // A true is reported once, then forgotten (later queries say false).
        let indexed = ch.acks.get(&id) == Some(&true);
        if indexed {
            ch.acks.remove(&id);
        }
        acks.insert(id.to_string(), Value::Bool(indexed));
    }
    Answer {
        status: 200,
        body: json!({ "acks": acks }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_and_guid_helpers() {
        // "x:tok-1"
        assert_eq!(decode_basic("eDp0b2stMQ==").as_deref(), Some("tok-1"));
        assert!(is_guid("0a1b2c3d-0000-4000-8000-00000000abcd"));
        assert!(!is_guid("not-a-guid"));
        assert_eq!(
            query_param("a=1&channel=x", "channel").as_deref(),
            Some("x")
        );
    }
}
