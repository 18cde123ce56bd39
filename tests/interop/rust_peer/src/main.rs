//! A real rust-libp2p peer for microp2p's interop tests. It speaks the same JSON-lines control
//! contract as js_peer.mjs, py_peer.py and go_peer (docs/architecture.md, "Command line"):
//!
//!   microp2p-rust-peer --listen MA [--seed HEX64] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]...
//!       [--dht client|server] [--dht-server] [--dht-protocol ID] [--kad-max-packet N]
//!       [--relay-hop|--relay-server] [--relay-client] [--listen <relay>/p2p/R/p2p-circuit]
//!       [--pub-wait-ms N]
//!   microp2p-rust-peer --print-id --seed HEX64
//!
//! stdout carries JSON lines only (events); stdin takes JSON lines (commands); logs go to stderr.
//! Exits on {"cmd":"stop"}, stdin EOF, SIGTERM or SIGINT.
//!
//! Transports: TCP only, Noise only, yamux only (what microp2p speaks).
//! Where rust-libp2p differs by design from the js peer, this peer adapts and says so:
//!  * rust pings on a timer (no on-demand ping): the `ping` command reports the next N results of
//!    rust's own ping behaviour, which runs every PING_INTERVAL on every connection.
//!  * rust's gossipsub hides message signatures from the application: a DataTransform (which does
//!    see the raw message) records them so `gossip:message` can carry the signature like js does.
//!  * rust keeps no gossipsub wire counters (no `stats`), and has no graft/prune events.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, DataTransform, IdentTopic, MessageAuthenticity, RawMessage, TopicHash};
use libp2p::identity::Keypair;
use libp2p::kad::{self, store::MemoryStore, GetClosestPeersOk, GetProvidersOk, Mode, QueryId, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, ping, relay, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

mod bench;

const ECHO_PROTOCOL: StreamProtocol = StreamProtocol::new("/microp2p/echo/1.0.0");
const IPFS_KAD: &str = "/ipfs/kad/1.0.0";
// Bounds: every wait in this peer ends by itself so a test can never hang on it.
const PUB_WAIT_MS_DEFAULT: u64 = 10_000;
const TICK: Duration = Duration::from_millis(100);
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
const ECHO_TIMEOUT: Duration = Duration::from_secs(60);
const ECHO_CHUNK: usize = 16384;
const ECHO_MAX_STREAMS: usize = 256;
const ECHO_READ_BUF: usize = 65536;
const PING_INTERVAL: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const DHT_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
const DHT_TABLE_WAIT: Duration = Duration::from_secs(5);
const DISCOVERED_MAX: usize = 10_000;
const DISCOVERED_ADDRS_MAX: usize = 8;
// gossipsub defaults to a 64 KiB message cap; js/go/microp2p accept 1 MiB+ and the tests send 256 KiB.
const GOSSIP_MAX_TRANSMIT: usize = 4 << 20;
// Signatures remembered between the transform and the delivery event (bounded).
const SIG_CACHE_MAX: usize = 100_000;
// Bench payloads (same layout as microp2p's cli and js_peer.mjs):
//   "BNCH" + index (4 bytes BE) + wall-clock send time in us (8 bytes BE) + padding.
const BENCH_MAGIC: &[u8; 4] = b"BNCH";
const BENCH_HEADER: usize = 16;
const BENCH_MAX_COUNT: usize = 1_000_000;
const BENCH_MAX_WAIT_MS: u64 = 600_000;
const INTERNAL_QUEUE: usize = 4096;

fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn usage(msg: &str) -> ! {
    eprintln!("rust_peer: {msg}");
    std::process::exit(2)
}

#[derive(Default)]
struct Opts {
    listen: Vec<String>,
    dial: Vec<String>,
    sub: Vec<String>,
    publish: Vec<(String, String)>,
    seed: Option<String>,
    print_id: bool,
    dht: Option<String>,
    dht_protocol: Option<String>,
    kad_max_packet: Option<usize>,
    relay_hop: bool,
    pub_wait_ms: u64,
}

fn parse_args() -> Opts {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Opts { pub_wait_ms: PUB_WAIT_MS_DEFAULT, ..Default::default() };
    let mut i = 0;
    while i < argv.len() {
        let a = argv[i].as_str();
        let mut val = || -> String {
            i += 1;
            argv.get(i).cloned().unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a {
            "--listen" => o.listen.push(val()),
            "--dial" => o.dial.push(val()),
            "--sub" => o.sub.push(val()),
            "--pub" => {
                let v = val();
                match v.find(':') {
                    Some(k) if k > 0 => o.publish.push((v[..k].to_string(), v[k + 1..].to_string())),
                    _ => usage("--pub wants TOPIC:MSG"),
                }
            }
            "--seed" => o.seed = Some(val()),
            "--print-id" => o.print_id = true,
            "--pub-wait-ms" => o.pub_wait_ms = val().parse().unwrap_or_else(|_| usage("--pub-wait-ms wants a number")),
            "--dht" => {
                let m = val();
                if m != "client" && m != "server" {
                    usage("--dht wants client or server")
                }
                o.dht = Some(m)
            }
            "--dht-server" => o.dht = Some("server".into()),
            "--dht-client" => o.dht = Some("client".into()),
            "--dht-protocol" => o.dht_protocol = Some(val()),
            "--kad-max-packet" => o.kad_max_packet = Some(val().parse().unwrap_or_else(|_| usage("--kad-max-packet wants a number"))),
            "--relay-hop" | "--relay-server" => o.relay_hop = true,
            "--relay-client" => {}
            "--gossip-protocols" => usage("--gossip-protocols is not supported by the rust peer"),
            _ => usage(&format!("unknown argument {a}")),
        }
        i += 1;
    }
    if let Some(s) = &o.seed {
        if s.len() != 64 || hex::decode(s).is_err() {
            usage("--seed wants 64 hex digits")
        }
    }
    if o.dht_protocol.is_some() && o.dht.is_none() {
        o.dht = Some("server".into());
    }
    o
}

fn keypair_for(seed: &Option<String>) -> Keypair {
    let mut bytes = match seed {
        Some(s) => hex::decode(s).unwrap(),
        None => {
            let mut b = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut b);
            b
        }
    };
    Keypair::ed25519_from_bytes(&mut bytes).unwrap_or_else(|e| usage(&format!("bad seed: {e}")))
}

/// Records each received message's signature, keyed by (author, seqno), for the delivery event.
#[derive(Clone, Default)]
struct SigTransform {
    sigs: Arc<Mutex<HashMap<(Vec<u8>, u64), Vec<u8>>>>,
}

impl DataTransform for SigTransform {
    fn inbound_transform(&self, raw: RawMessage) -> Result<gossipsub::Message, std::io::Error> {
        if let (Some(src), Some(seq), Some(sig)) = (raw.source, raw.sequence_number, raw.signature.clone()) {
            let mut m = self.sigs.lock().unwrap();
            if m.len() >= SIG_CACHE_MAX {
                m.clear();
            }
            m.insert((src.to_bytes(), seq), sig);
        }
        Ok(gossipsub::Message { source: raw.source, data: raw.data, sequence_number: raw.sequence_number, topic: raw.topic })
    }
    fn outbound_transform(&self, _topic: &TopicHash, data: Vec<u8>) -> Result<Vec<u8>, std::io::Error> {
        Ok(data)
    }
}

/// The echo server: a connection handler that accepts `/microp2p/echo/1.0.0` streams and echoes
/// each in its own task. (libp2p-stream's `accept` hands inbound streams over a zero-capacity
/// channel and drops those that arrive while one is pending: 50 concurrent echo streams lose most.)
mod echo_server {
    use super::{echo_serve, ECHO_PROTOCOL};
    use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
    use libp2p::core::{transport::PortUse, Endpoint};
    use libp2p::swarm::handler::{ConnectionEvent, FullyNegotiatedInbound};
    use libp2p::swarm::{
        ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm, NetworkBehaviour,
        SubstreamProtocol, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
    };
    use libp2p::{Multiaddr, PeerId, StreamProtocol};
    use std::convert::Infallible;
    use std::task::{Context, Poll};

    #[derive(Default)]
    pub struct Behaviour;

    pub struct Handler;

    impl ConnectionHandler for Handler {
        type FromBehaviour = Infallible;
        type ToBehaviour = Infallible;
        type InboundProtocol = ReadyUpgrade<StreamProtocol>;
        type OutboundProtocol = DeniedUpgrade;
        type InboundOpenInfo = ();
        type OutboundOpenInfo = ();

        fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, ()> {
            SubstreamProtocol::new(ReadyUpgrade::new(ECHO_PROTOCOL), ())
        }
        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ConnectionHandlerEvent<DeniedUpgrade, (), Infallible>> {
            Poll::Pending
        }
        fn on_behaviour_event(&mut self, e: Infallible) {
            match e {}
        }
        fn on_connection_event(&mut self, event: ConnectionEvent<Self::InboundProtocol, DeniedUpgrade>) {
            if let ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound { protocol: stream, .. }) = event {
                tokio::spawn(echo_serve(stream));
            }
        }
    }

    impl NetworkBehaviour for Behaviour {
        type ConnectionHandler = Handler;
        type ToSwarm = Infallible;

        fn handle_established_inbound_connection(
            &mut self, _: ConnectionId, _: PeerId, _: &Multiaddr, _: &Multiaddr,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(Handler)
        }
        fn handle_established_outbound_connection(
            &mut self, _: ConnectionId, _: PeerId, _: &Multiaddr, _: Endpoint, _: PortUse,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(Handler)
        }
        fn on_swarm_event(&mut self, _: FromSwarm) {}
        fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, e: THandlerOutEvent<Self>) {
            match e {}
        }
        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
            Poll::Pending
        }
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    gossipsub: gossipsub::Behaviour<SigTransform>,
    kad: Toggle<kad::Behaviour<MemoryStore>>,
    relay: Toggle<relay::Behaviour>,
    relay_client: relay::client::Behaviour,
    stream: libp2p_stream::Behaviour,
    echo: echo_server::Behaviour,
}

struct ConnInfo {
    peer: PeerId,
    addr: Multiaddr,
    outbound: bool,
    relayed: bool,
}

fn conn_json(id: ConnectionId, c: &ConnInfo) -> Value {
    let mut addr = c.addr.clone();
    if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr = addr.with(Protocol::P2p(c.peer));
    }
    let mut v = json!({"peer": c.peer.to_string(), "addr": addr.to_string(),
        "direction": if c.outbound { "outbound" } else { "inbound" }, "id": format!("{id}")});
    if c.relayed {
        v["relayed"] = json!(true);
    }
    v
}

fn with_event(name: &str, mut v: Value) -> Value {
    v["event"] = json!(name);
    v
}

fn with_id(cmd: &Value, mut v: Value) -> Value {
    if let Some(id) = cmd.get("id") {
        v["id"] = id.clone();
    }
    v
}

fn err_event(cmd: &Value, msg: impl std::fmt::Display) -> Value {
    let name = cmd.get("cmd").cloned().unwrap_or(Value::Null);
    with_id(cmd, json!({"event": "error", "where": name, "cmd": name, "message": msg.to_string()}))
}

/// Messages from helper tasks (stdin, echo, timers) to the swarm loop.
enum Msg {
    Line(String),
    Eof,
    BenchPublish { topic: String, data: Vec<u8>, last: Option<(Value, Instant, usize)> },
    BenchTimeout(u64),
}

struct PendingDial {
    cmd: Value,
    deadline: Instant,
    then: Option<Value>, // a command to run once connected (ping/echo to an address)
}

struct PendingPing {
    cmd: Value,
    peer: PeerId,
    left: usize,
    deadline: Instant,
}

struct PendingPublish {
    topic: String,
    data: Vec<u8>,
    text: Value,
    deadline: Instant,
    wait_ms: u64,
}

struct Bench {
    gen: u64,
    topic: String,
    want: usize,
    got: usize,
    lat: Vec<u64>,
    first_sent: Option<u64>,
    last_recv: u64,
}

enum DhtQuery {
    FindPeer(Value, PeerId),
    Closest(Value, String),
    Provide(Value, String),
    ProvideCount(Value, String),
    Providers(Value, String, Vec<Value>, HashSet<PeerId>),
}

struct Peer {
    swarm: Swarm<Behaviour>,
    tx: mpsc::Sender<Msg>,
    sigs: SigTransform,
    conns: HashMap<ConnectionId, ConnInfo>,
    dials: HashMap<ConnectionId, PendingDial>,
    pings: Vec<PendingPing>,
    publishes: VecDeque<PendingPublish>,
    bench: Option<Bench>,
    bench_gen: u64,
    failed_bench: usize,
    queries: HashMap<QueryId, DhtQuery>,
    kad_protocol: StreamProtocol,
    listen_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    reservations: Vec<Multiaddr>,
    publish_wait_ms: u64,
    dht_waiting: Vec<(Value, Instant)>,
    // Addresses Kademlia learned from closerPeers answers (rust's closest-peers result lists only
    // peers that answered, so a client-mode target would never be "found" without these).
    discovered: HashMap<PeerId, Vec<Multiaddr>>,
}

fn parse_key(k: &str) -> Result<Vec<u8>, String> {
    if let Ok(p) = PeerId::from_str(k) {
        return Ok(p.to_bytes());
    }
    cid_multihash(k).ok_or_else(|| format!("key {k:?} is neither a peer id nor a CID"))
}

/// The multihash of a CID (v0 base58 "Qm...", or v1 multibase base32 "b..."); the DHT key.
fn cid_multihash(k: &str) -> Option<Vec<u8>> {
    if k.starts_with("Qm") {
        return bs58_decode(k);
    }
    let body = k.strip_prefix('b')?;
    let raw = base32_decode(body)?;
    let (ver, n1) = uvarint(&raw)?;
    if ver != 1 {
        return None;
    }
    let (_codec, n2) = uvarint(&raw[n1..])?;
    Some(raw[n1 + n2..].to_vec())
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &x) in b.iter().enumerate().take(9) {
        v |= ((x & 0x7f) as u64) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.chars() {
        let v = match c {
            'a'..='z' => c as u32 - 'a' as u32,
            '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn bs58_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHA: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::new();
    for c in s.bytes() {
        let mut carry = ALPHA.iter().position(|&a| a == c)? as u32;
        for b in out.iter_mut().rev() {
            carry += (*b as u32) * 58;
            *b = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut r = vec![0u8; zeros];
    r.extend(out);
    Some(r)
}

fn last_peer(a: &Multiaddr) -> Option<PeerId> {
    a.iter().filter_map(|p| if let Protocol::P2p(id) = p { Some(id) } else { None }).last()
}

fn num(cmd: &Value, k: &str, def: u64) -> u64 {
    cmd.get(k).and_then(|v| v.as_u64()).unwrap_or(def)
}

fn text(cmd: &Value, k: &str) -> String {
    cmd.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

impl Peer {
    fn topic_peers(&self, topic: &str) -> Vec<String> {
        let h = IdentTopic::new(topic).hash();
        let mut v: Vec<String> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, ts)| ts.iter().any(|t| **t == h))
            .map(|(p, _)| p.to_string())
            .collect();
        v.sort();
        v
    }

    fn run(&mut self, cmd: Value) {
        if let Err(e) = self.try_run(&cmd) {
            emit(err_event(&cmd, e));
        }
    }

    /// Dial `addr` unless already connected to its peer; `then` runs once the connection is up.
    fn dial_then(&mut self, cmd: &Value, addr: &str, then: Option<Value>) -> Result<(), String> {
        let ma: Multiaddr = addr.parse().map_err(|e| format!("bad multiaddr {addr}: {e}"))?;
        if let Some(p) = last_peer(&ma) {
            if let Some((id, c)) = self.conns.iter().find(|(_, c)| c.peer == p) {
                match then {
                    Some(t) => self.run(t),
                    None => emit(with_id(cmd, with_event("dialed", conn_json(*id, c)))),
                }
                return Ok(());
            }
        }
        let opts = DialOpts::unknown_peer_id().address(ma).build();
        let id = opts.connection_id();
        self.swarm.dial(opts).map_err(|e| e.to_string())?;
        self.dials.insert(id, PendingDial { cmd: cmd.clone(), deadline: Instant::now() + DIAL_TIMEOUT, then });
        Ok(())
    }

    fn target(&mut self, cmd: &Value) -> Result<Option<PeerId>, String> {
        // With "addr": dial first, then re-run the command against the peer it names.
        if let Some(addr) = cmd.get("addr").and_then(|a| a.as_str()) {
            let ma: Multiaddr = addr.parse().map_err(|e| format!("bad multiaddr {addr}: {e}"))?;
            let p = last_peer(&ma).ok_or("address needs /p2p/ID")?;
            let mut again = cmd.clone();
            again.as_object_mut().unwrap().remove("addr");
            again["peer"] = json!(p.to_string());
            self.dial_then(cmd, addr, Some(again))?;
            return Ok(None);
        }
        let p = cmd.get("peer").and_then(|p| p.as_str()).ok_or("command needs \"addr\" or \"peer\"")?;
        Ok(Some(PeerId::from_str(p).map_err(|e| e.to_string())?))
    }

    fn try_run(&mut self, cmd: &Value) -> Result<(), String> {
        let name = text(cmd, "cmd");
        match name.as_str() {
            "dial" => {
                let addr = text(cmd, "addr");
                self.dial_then(cmd, &addr, None)?;
            }
            "ping" => {
                let Some(peer) = self.target(cmd)? else { return Ok(()) };
                let count = num(cmd, "count", 1).max(1) as usize;
                self.pings.push(PendingPing {
                    cmd: cmd.clone(),
                    peer,
                    left: count,
                    deadline: Instant::now() + DIAL_TIMEOUT + PING_INTERVAL * count as u32,
                });
            }
            "publish" => {
                let (data, txt) = match cmd.get("dataHex").and_then(|h| h.as_str()) {
                    Some(h) => (hex::decode(h).map_err(|e| e.to_string())?, json!(h)),
                    None => (text(cmd, "data").into_bytes(), json!(text(cmd, "data"))),
                };
                let wait_ms = num(cmd, "wait_ms", self.publish_wait_ms);
                self.publishes.push_back(PendingPublish {
                    topic: text(cmd, "topic"),
                    data,
                    text: txt,
                    deadline: Instant::now() + Duration::from_millis(wait_ms),
                    wait_ms,
                });
                self.pump_publishes();
            }
            "subscribe" => {
                self.swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(text(cmd, "topic"))).map_err(|e| format!("{e:?}"))?;
                emit(json!({"event": "subscribed", "topic": text(cmd, "topic")}));
            }
            "unsubscribe" => {
                self.swarm.behaviour_mut().gossipsub.unsubscribe(&IdentTopic::new(text(cmd, "topic")));
                emit(json!({"event": "unsubscribed", "topic": text(cmd, "topic")}));
            }
            "topic-peers" => {
                let t = text(cmd, "topic");
                let h = IdentTopic::new(t.clone()).hash();
                let mut mesh: Vec<String> = self.swarm.behaviour().gossipsub.mesh_peers(&h).map(|p| p.to_string()).collect();
                mesh.sort();
                emit(json!({"event": "topic-peers", "topic": t, "peers": self.topic_peers(&t), "mesh": mesh}));
            }
            "stats" => return Err("rust-libp2p's gossipsub keeps no wire counters".into()),
            "publish-many" => {
                let n = (num(cmd, "count", 1) as usize).min(BENCH_MAX_COUNT);
                let size = (num(cmd, "size", 100) as usize).max(BENCH_HEADER);
                let interval = Duration::from_millis(num(cmd, "interval_ms", 0));
                let topic = text(cmd, "topic");
                let tx = self.tx.clone();
                let done = json!({"event": "published-many", "topic": topic.clone(), "count": n});
                self.failed_bench = 0;
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    for i in 0..n {
                        if !interval.is_zero() {
                            let at = t0 + interval * i as u32;
                            tokio::time::sleep_until(at.into()).await;
                        }
                        let mut data = vec![0x5au8; size];
                        data[..4].copy_from_slice(BENCH_MAGIC);
                        data[4..8].copy_from_slice(&(i as u32).to_be_bytes());
                        data[8..16].copy_from_slice(&wall_us().to_be_bytes());
                        let last = if i + 1 == n { Some((done.clone(), t0, n)) } else { None };
                        if tx.send(Msg::BenchPublish { topic: topic.clone(), data, last }).await.is_err() {
                            return;
                        }
                    }
                    if n == 0 {
                        let _ = tx.send(Msg::BenchPublish { topic, data: vec![], last: Some((done, t0, 0)) }).await;
                    }
                });
            }
            "bench-recv" => {
                let want = (num(cmd, "count", 1) as usize).min(BENCH_MAX_COUNT);
                let wait = num(cmd, "timeout_ms", 60_000).min(BENCH_MAX_WAIT_MS);
                self.bench_gen += 1;
                let gen = self.bench_gen;
                if let Some(old) = self.bench.take() {
                    emit(bench_result(&old));
                }
                self.bench = Some(Bench { gen, topic: text(cmd, "topic"), want, got: 0, lat: vec![], first_sent: None, last_recv: 0 });
                emit(json!({"event": "bench-armed", "topic": text(cmd, "topic"), "count": want}));
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    let _ = tx.send(Msg::BenchTimeout(gen)).await;
                });
            }
            "peers" => {
                let list: Vec<Value> = self.conns.iter().map(|(id, c)| conn_json(*id, c)).collect();
                emit(json!({"event": "peers", "peers": list}));
            }
            "hangup" => {
                let Some(peer) = self.target(cmd)? else { return Ok(()) };
                let _ = self.swarm.disconnect_peer_id(peer);
                emit(json!({"event": "hangup", "peer": peer.to_string()}));
            }
            "echo" => {
                let Some(peer) = self.target(cmd)? else { return Ok(()) };
                let streams = (num(cmd, "streams", 1) as usize).clamp(1, ECHO_MAX_STREAMS);
                let size = num(cmd, "size", 1024) as usize;
                let control = self.swarm.behaviour().stream.new_control();
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let runs = (0..streams).map(|_| echo_once(control.clone(), peer, size));
                    let res = futures::future::join_all(runs).await;
                    let ms = t0.elapsed().as_millis() as u64;
                    match res.into_iter().collect::<Result<Vec<usize>, String>>() {
                        Ok(v) => emit(json!({"event": "echo", "ok": true, "peer": peer.to_string(), "streams": streams,
                            "bytes": v.iter().sum::<usize>(), "ms": ms})),
                        Err(e) => emit(json!({"event": "echo", "ok": false, "peer": peer.to_string(), "streams": streams,
                            "error": e, "ms": ms})),
                    }
                });
            }
            "find_peer" | "get_closest_peers" | "provide" | "find_providers" => return self.dht(cmd, &name),
            "reserve" => {
                let addr = text(cmd, "addr");
                self.reserve(&addr)?;
            }
            "stop" => shutdown(),
            _ => {
                emit(json!({"event": "error", "where": "stdin", "cmd": name, "message": "unknown command"}));
            }
        }
        Ok(())
    }

    fn dht(&mut self, cmd: &Value, name: &str) -> Result<(), String> {
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else {
            return Err("no DHT: start with --dht client|server".into());
        };
        // The table fills from identify, asynchronously: a query right after a dial would find no
        // peer. Wait (bounded) for a first entry, as js does (allowQueryWithZeroPeers off).
        let known: usize = kad.kbuckets().map(|b| b.num_entries()).sum();
        let waited = cmd.get("_waited").is_some();
        if known == 0 && !waited {
            self.dht_waiting.push((cmd.clone(), Instant::now() + DHT_TABLE_WAIT));
            return Ok(());
        }
        let key = text(cmd, if name == "find_peer" { "peer" } else { "key" });
        match name {
            "find_peer" => {
                let p = PeerId::from_str(&key).map_err(|e| e.to_string())?;
                let q = kad.get_closest_peers(p);
                self.queries.insert(q, DhtQuery::FindPeer(cmd.clone(), p));
            }
            "get_closest_peers" => {
                let k = parse_key(&key)?;
                let q = kad.get_closest_peers(k);
                self.queries.insert(q, DhtQuery::Closest(cmd.clone(), key));
            }
            "provide" => {
                let k = cid_multihash(&key).ok_or("key is not a CID")?;
                let q = kad.start_providing(kad::RecordKey::new(&k)).map_err(|e| e.to_string())?;
                self.queries.insert(q, DhtQuery::Provide(cmd.clone(), key));
            }
            _ => {
                let k = cid_multihash(&key).ok_or("key is not a CID")?;
                let q = kad.get_providers(kad::RecordKey::new(&k));
                self.queries.insert(q, DhtQuery::Providers(cmd.clone(), key, vec![], HashSet::new()));
            }
        }
        Ok(())
    }

    fn reserve(&mut self, addr: &str) -> Result<(), String> {
        let base = addr.trim_end_matches('/').trim_end_matches("/p2p-circuit");
        let ma: Multiaddr = base.parse().map_err(|e| format!("bad relay address {addr}: {e}"))?;
        last_peer(&ma).ok_or("relay address needs /p2p/RELAY_ID")?;
        self.swarm.listen_on(ma.clone().with(Protocol::P2pCircuit)).map_err(|e| e.to_string())?;
        self.reservations.push(ma);
        Ok(())
    }

    /// Publish queued messages in order, each once some peer is subscribed (bounded wait).
    fn pump_publishes(&mut self) {
        while let Some(p) = self.publishes.front() {
            let recipients = self.topic_peers(&p.topic);
            let topic = IdentTopic::new(p.topic.clone());
            if !recipients.is_empty() {
                let p = self.publishes.pop_front().unwrap();
                match self.swarm.behaviour_mut().gossipsub.publish(topic, p.data) {
                    Ok(_) => emit(json!({"event": "published", "topic": p.topic, "data": p.text, "recipients": recipients})),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        emit(json!({"event": "error", "where": "publish", "topic": p.topic, "message": "NoPeersSubscribedToTopic"}))
                    }
                    Err(e) => emit(json!({"event": "error", "where": "publish", "topic": p.topic, "message": format!("{e:?}")})),
                }
                continue;
            }
            if Instant::now() >= p.deadline {
                let p = self.publishes.pop_front().unwrap();
                emit(json!({"event": "error", "where": "publish", "topic": p.topic,
                    "message": format!("no peer subscribed to {} within {} ms", p.topic, p.wait_ms)}));
                continue;
            }
            break;
        }
    }

    fn tick(&mut self) {
        self.pump_publishes();
        if !self.dht_waiting.is_empty() {
            let known: usize = self.swarm.behaviour_mut().kad.as_mut().map(|k| k.kbuckets().map(|b| b.num_entries()).sum()).unwrap_or(0);
            let now = Instant::now();
            let (ready, wait): (Vec<_>, Vec<_>) = self.dht_waiting.drain(..).partition(|(_, d)| known > 0 || *d <= now);
            self.dht_waiting = wait;
            for (mut cmd, _) in ready {
                cmd["_waited"] = json!(true);
                let name = text(&cmd, "cmd");
                if let Err(e) = self.dht(&cmd, &name) {
                    emit(err_event(&cmd, e));
                }
            }
        }
        let now = Instant::now();
        let expired: Vec<ConnectionId> = self.dials.iter().filter(|(_, d)| d.deadline <= now).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some(d) = self.dials.remove(&id) {
                emit(err_event(&d.cmd, "dial timed out"));
            }
        }
        let (late, keep): (Vec<PendingPing>, Vec<PendingPing>) = self.pings.drain(..).partition(|p| p.deadline <= now);
        self.pings = keep;
        for p in late {
            emit(err_event(&p.cmd, "ping timed out"));
        }
    }

    fn on_message(&mut self, m: gossipsub::Message) {
        let topic = m.topic.to_string();
        if let Some(b) = self.bench.as_mut() {
            if b.topic == topic && m.data.len() >= BENCH_HEADER && &m.data[..4] == BENCH_MAGIC {
                // Counted silently: a JSON line per message would be what the bench measures.
                let now = wall_us();
                let sent = u64::from_be_bytes(m.data[8..16].try_into().unwrap());
                if b.first_sent.map_or(true, |f| sent < f) {
                    b.first_sent = Some(sent);
                }
                b.last_recv = now;
                if b.lat.len() < BENCH_MAX_COUNT {
                    b.lat.push(now.saturating_sub(sent));
                }
                b.got += 1;
                if b.got >= b.want {
                    let b = self.bench.take().unwrap();
                    emit(bench_result(&b));
                }
                return;
            }
        }
        let sig = match (m.source, m.sequence_number) {
            (Some(src), Some(seq)) => self.sigs.sigs.lock().unwrap().remove(&(src.to_bytes(), seq)),
            _ => None,
        };
        emit(json!({
            "event": "gossip:message",
            "topic": topic,
            "from": m.source.map(|p| p.to_string()),
            "data": String::from_utf8_lossy(&m.data),
            "dataHex": hex::encode(&m.data),
            "seqno": m.sequence_number.map(|s| hex::encode(s.to_be_bytes())),
            // The author's signature as rust received (and verified) it, so a test can re-check it.
            "signature": sig.map(hex::encode),
        }));
    }

    fn on_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, .. } => {
                let circuit = |a: &Multiaddr| a.iter().any(|p| matches!(p, Protocol::P2pCircuit));
                let (addr, outbound, relayed) = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => (address.clone(), true, circuit(address)),
                    // Relayed inbound: the local address is the circuit one; the remote is just /p2p/ID.
                    ConnectedPoint::Listener { send_back_addr, local_addr } => (send_back_addr.clone(), false, circuit(local_addr)),
                };
                let info = ConnInfo { peer: peer_id, addr, outbound, relayed };
                emit(with_event("connection:open", conn_json(connection_id, &info)));
                self.conns.insert(connection_id, info);
                if let Some(d) = self.dials.remove(&connection_id) {
                    match d.then {
                        Some(t) => self.run(t),
                        None => emit(with_id(&d.cmd, with_event("dialed", conn_json(connection_id, &self.conns[&connection_id])))),
                    }
                }
            }
            SwarmEvent::ConnectionClosed { connection_id, .. } => {
                if let Some(info) = self.conns.remove(&connection_id) {
                    emit(with_event("connection:close", conn_json(connection_id, &info)));
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                if let Some(d) = self.dials.remove(&connection_id) {
                    emit(err_event(&d.cmd, error));
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                if address.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
                    // A reservation was accepted (reported by relay:reservation below).
                } else if self.swarm.behaviour().relay.is_enabled() || self.swarm.behaviour().kad.is_enabled() {
                    // Loopback has no confirmed external address: rust's relay puts only external
                    // addresses into reservations, and a kad server advertises them; use the bound ones.
                    self.swarm.add_external_address(address);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
                if protocols.iter().any(|p| *p == self.kad_protocol.as_ref()) {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        for a in &info.listen_addrs {
                            kad.add_address(&peer_id, a.clone());
                        }
                    }
                }
                let mut addrs = info.listen_addrs.clone();
                addrs.sort();
                addrs.dedup();
                self.listen_addrs.insert(peer_id, addrs);
                emit(json!({
                    "event": "identify",
                    "peer": peer_id.to_string(),
                    "protocols": protocols,
                    "agentVersion": info.agent_version,
                    "protocolVersion": info.protocol_version,
                    "listenAddrs": info.listen_addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                    "observedAddr": info.observed_addr.to_string(),
                }));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result, .. })) => {
                if let Some(i) = self.pings.iter().position(|p| p.peer == peer) {
                    match result {
                        Ok(rtt) => {
                            let p = &mut self.pings[i];
                            emit(with_id(&p.cmd, json!({"event": "ping", "peer": peer.to_string(), "rtt": rtt.as_secs_f64() * 1000.0})));
                            p.left -= 1;
                            if p.left == 0 {
                                self.pings.remove(i);
                            }
                        }
                        Err(e) => {
                            let p = self.pings.remove(i);
                            emit(err_event(&p.cmd, e));
                        }
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => match ev {
                gossipsub::Event::Message { message, .. } => self.on_message(message),
                gossipsub::Event::Subscribed { peer_id, topic } => {
                    emit(json!({"event": "subscription-change", "peer": peer_id.to_string(), "topic": topic.to_string(), "subscribe": true}));
                    self.pump_publishes();
                }
                gossipsub::Event::Unsubscribed { peer_id, topic } => {
                    emit(json!({"event": "subscription-change", "peer": peer_id.to_string(), "topic": topic.to_string(), "subscribe": false}));
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted { relay_peer_id, limit, .. })) => {
                let me = *self.swarm.local_peer_id();
                let addrs: Vec<String> = self
                    .reservations
                    .iter()
                    .filter(|a| last_peer(a) == Some(relay_peer_id))
                    .map(|a| a.clone().with(Protocol::P2pCircuit).with(Protocol::P2p(me)).to_string())
                    .collect();
                // rust-libp2p does not tell the application the reservation's expiry.
                emit(json!({"event": "relay:reservation", "relay": relay_peer_id.to_string(), "addrs": addrs, "expire": null,
                    "limitDurationS": limit.as_ref().and_then(|l| l.duration()).map(|d| d.as_secs()),
                    "limitData": limit.as_ref().and_then(|l| l.data_in_bytes())}));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(ev)) => self.on_kad(ev),
            SwarmEvent::NewExternalAddrOfPeer { peer_id, address } => {
                if self.discovered.len() >= DISCOVERED_MAX {
                    self.discovered.clear();
                }
                let v = self.discovered.entry(peer_id).or_default();
                if !v.contains(&address) && v.len() < DISCOVERED_ADDRS_MAX {
                    v.push(address);
                }
            }
            SwarmEvent::ListenerClosed { addresses, reason, .. } => {
                if let Err(e) = reason {
                    emit(json!({"event": "error", "where": "listen", "message": format!("{e}"), "addrs": addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>()}));
                }
            }
            _ => {}
        }
    }

    fn on_kad(&mut self, ev: kad::Event) {
        let kad::Event::OutboundQueryProgressed { id, result, step, .. } = ev else { return };
        match result {
            QueryResult::GetClosestPeers(r) => {
                let Some(q) = self.queries.remove(&id) else { return };
                let peers = match r {
                    Ok(GetClosestPeersOk { peers, .. }) => peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                match q {
                    DhtQuery::FindPeer(cmd, target) => {
                        let hit = peers.iter().find(|p| p.peer_id == target);
                        let mut addrs: Vec<String> = hit.map(|p| p.addrs.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
                        if addrs.is_empty() {
                            addrs = self.discovered.get(&target).map(|v| v.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
                        }
                        if addrs.is_empty() && hit.is_some() {
                            addrs = self.listen_addrs.get(&target).map(|v| v.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
                        }
                        let found = hit.is_some() || !addrs.is_empty();
                        emit(with_id(&cmd, json!({"event": "dht:find_peer", "peer": target.to_string(), "found": found, "addrs": addrs})));
                    }
                    DhtQuery::Closest(cmd, key) => {
                        let ids: Vec<String> = peers.iter().map(|p| p.peer_id.to_string()).collect();
                        emit(with_id(&cmd, json!({"event": "dht:closest_peers", "key": key, "peers": ids})));
                    }
                    DhtQuery::ProvideCount(cmd, key) => {
                        emit(with_id(&cmd, json!({"event": "dht:provided", "key": key, "peers": peers.len()})));
                    }
                    other => {
                        self.queries.insert(id, other);
                    }
                }
            }
            QueryResult::StartProviding(r) => {
                if let Some(DhtQuery::Provide(cmd, key)) = self.queries.remove(&id) {
                    match r {
                        // rust reports success, not how many peers took the record: it wrote
                        // ADD_PROVIDER to the closest peers of its lookup, so count that set.
                        Ok(ok) => {
                            if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                                let q = kad.get_closest_peers(ok.key.to_vec());
                                self.queries.insert(q, DhtQuery::ProvideCount(cmd, key));
                            }
                        }
                        Err(e) => emit(with_id(&cmd, json!({"event": "dht:provided", "key": key, "peers": 0, "error": e.to_string()}))),
                    }
                }
            }
            QueryResult::GetProviders(r) => {
                if let Some(DhtQuery::Providers(_, _, list, seen)) = self.queries.get_mut(&id) {
                    if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = r {
                        for p in providers {
                            if seen.insert(p) {
                                let addrs: Vec<String> = self.listen_addrs.get(&p).map(|v| v.iter().map(|a| a.to_string()).collect()).unwrap_or_default();
                                list.push(json!({"id": p.to_string(), "addrs": addrs}));
                            }
                        }
                    }
                }
                if step.last {
                    if let Some(DhtQuery::Providers(cmd, key, list, _)) = self.queries.remove(&id) {
                        emit(with_id(&cmd, json!({"event": "dht:providers", "key": key, "providers": list})));
                    }
                }
            }
            _ => {}
        }
    }

    fn on_msg(&mut self, m: Msg) {
        match m {
            Msg::Line(line) => match serde_json::from_str::<Value>(&line) {
                Ok(cmd) if cmd.is_object() => self.run(cmd),
                Ok(_) => emit(json!({"event": "error", "where": "stdin", "message": "not a JSON object"})),
                Err(e) => emit(json!({"event": "error", "where": "stdin", "message": format!("bad JSON: {e}")})),
            },
            Msg::Eof => shutdown(),
            Msg::BenchPublish { topic, data, last } => {
                if !data.is_empty() && self.swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(topic.clone()), data).is_err() {
                    self.failed_bench += 1;
                }
                if let Some((mut done, t0, _)) = last {
                    done["failed"] = json!(self.failed_bench);
                    done["ms"] = json!(t0.elapsed().as_millis() as u64);
                    done["recipients"] = json!(self.topic_peers(&topic).len());
                    emit(done);
                }
            }
            Msg::BenchTimeout(gen) => {
                if self.bench.as_ref().is_some_and(|b| b.gen == gen) {
                    let b = self.bench.take().unwrap();
                    emit(bench_result(&b));
                }
            }
        }
    }
}

fn bench_result(b: &Bench) -> Value {
    let mut lat = b.lat.clone();
    lat.sort_unstable();
    let pct = |q: f64| -> Value {
        if lat.is_empty() {
            Value::Null
        } else {
            json!(lat[(q * (lat.len() - 1) as f64).round() as usize] as f64 / 1000.0)
        }
    };
    let span = b.first_sent.map(|f| b.last_recv.saturating_sub(f));
    json!({"event": "bench-result", "topic": b.topic, "want": b.want, "received": b.got,
        "spanUs": if b.got > 0 { json!(span) } else { Value::Null },
        "rate": match span { Some(s) if s > 0 && b.got > 0 => json!(b.got as f64 * 1e6 / s as f64), _ => Value::Null },
        "p50Ms": pct(0.5), "p99Ms": pct(0.99),
        "maxMs": lat.last().map(|x| json!(*x as f64 / 1000.0)).unwrap_or(Value::Null)})
}

async fn echo_once(mut control: libp2p_stream::Control, peer: PeerId, size: usize) -> Result<usize, String> {
    let run = async move {
        let s = control.open_stream(peer, ECHO_PROTOCOL).await.map_err(|e| e.to_string())?;
        let (mut rd, mut wr) = s.split();
        let mut payload = vec![0u8; size];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut payload);
        let want = Sha256::digest(&payload);
        let writer = async move {
            for chunk in payload.chunks(ECHO_CHUNK) {
                wr.write_all(chunk).await?;
            }
            wr.close().await
        };
        let reader = async move {
            let mut h = Sha256::new();
            let mut n = 0usize;
            let mut buf = vec![0u8; ECHO_READ_BUF];
            loop {
                let k = rd.read(&mut buf).await?;
                if k == 0 {
                    break;
                }
                h.update(&buf[..k]);
                n += k;
            }
            Ok::<_, std::io::Error>((n, h.finalize()))
        };
        let (w, r) = futures::join!(writer, reader);
        w.map_err(|e| e.to_string())?;
        let (n, got) = r.map_err(|e| e.to_string())?;
        if n != size || got != want {
            return Err(format!("echo mismatch: sent {size} bytes, got {n}"));
        }
        Ok(n)
    };
    tokio::time::timeout(ECHO_TIMEOUT, run).await.map_err(|_| "echo timed out".to_string())?
}

async fn echo_serve(s: libp2p::Stream) {
    let work = async move {
        let (mut rd, mut wr) = s.split();
        let mut buf = vec![0u8; ECHO_READ_BUF];
        loop {
            let k = rd.read(&mut buf).await?;
            if k == 0 {
                break;
            }
            wr.write_all(&buf[..k]).await?;
        }
        wr.close().await
    };
    let _ = tokio::time::timeout(ECHO_TIMEOUT, work).await;
}

fn shutdown() -> ! {
    emit(json!({"event": "stopped"}));
    std::process::exit(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(|a| a.as_str()) == Some("bench") {
        bench::main(&argv[1..]).await;
        return;
    }
    let opts = parse_args();
    let key = keypair_for(&opts.seed);
    if opts.print_id {
        if opts.seed.is_none() {
            usage("--print-id needs --seed");
        }
        println!("{}", key.public().to_peer_id());
        return;
    }
    let me = key.public().to_peer_id();
    let sigs = SigTransform::default();
    let kad_protocol = StreamProtocol::try_from_owned(opts.dht_protocol.clone().unwrap_or_else(|| IPFS_KAD.into()))
        .unwrap_or_else(|e| usage(&format!("bad --dht-protocol: {e}")));

    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| usage(&format!("tcp: {e}")))
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| usage(&format!("relay client: {e}")))
        .with_behaviour(|key, relay_client| {
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_secs(1))
                .validation_mode(gossipsub::ValidationMode::Strict)
                .max_transmit_size(GOSSIP_MAX_TRANSMIT)
                // rust drops messages beyond a per-connection queue of 5000 by default; keep
                // bench bursts measuring the wire, as for the go peer.
                .connection_handler_queue_len(INTERNAL_QUEUE * 4)
                .build()
                .expect("gossipsub config");
            let gossipsub = gossipsub::Behaviour::new_with_transform(MessageAuthenticity::Signed(key.clone()), gossip_config, sigs.clone())
                .expect("gossipsub");
            let kad = opts.dht.as_ref().map(|mode| {
                let mut cfg = kad::Config::new(kad_protocol.clone());
                cfg.set_query_timeout(DHT_QUERY_TIMEOUT);
                if let Some(n) = opts.kad_max_packet {
                    // rust caps Kademlia messages at 16 KiB by default (go and js: 4 MiB).
                    cfg.set_max_packet_size(n);
                }
                let mut k = kad::Behaviour::with_config(me, MemoryStore::new(me), cfg);
                // rust stays a client until it has a confirmed external address (never on loopback).
                k.set_mode(Some(if mode == "server" { Mode::Server } else { Mode::Client }));
                k
            });
            let relay = opts.relay_hop.then(|| {
                let mut cfg = relay::Config::default();
                // Every test peer dials from 127.0.0.1: rust's per-IP/per-peer rate limiters would
                // refuse a test fleet's reservations and circuits.
                cfg.reservation_rate_limiters.clear();
                cfg.circuit_src_rate_limiters.clear();
                relay::Behaviour::new(me, cfg)
            });
            Behaviour {
                identify: identify::Behaviour::new(
                    identify::Config::new("ipfs/0.1.0".into(), key.public())
                        .with_agent_version(format!("rust-libp2p/{} (microp2p interop peer)", "0.56.0")),
                ),
                ping: ping::Behaviour::new(ping::Config::new().with_interval(PING_INTERVAL)),
                gossipsub,
                kad: kad.into(),
                relay: relay.into(),
                relay_client,
                stream: libp2p_stream::Behaviour::new(),
                echo: echo_server::Behaviour,
            }
        })
        .unwrap_or_else(|e| usage(&format!("behaviour: {e}")))
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();

    // Signal handlers before "started": a test may send SIGTERM as soon as it sees that line.
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).expect("SIGINT handler");
    let (tx, mut rx) = mpsc::channel::<Msg>(INTERNAL_QUEUE);
    let mut peer = Peer {
        swarm,
        tx: tx.clone(),
        sigs,
        conns: HashMap::new(),
        dials: HashMap::new(),
        pings: vec![],
        publishes: VecDeque::new(),
        bench: None,
        bench_gen: 0,
        failed_bench: 0,
        queries: HashMap::new(),
        kad_protocol,
        listen_addrs: HashMap::new(),
        reservations: vec![],
        publish_wait_ms: opts.pub_wait_ms,
        dht_waiting: vec![],
        discovered: HashMap::new(),
    };

    // Listen (TCP now; circuits once the swarm runs), and wait for every TCP listener's address.
    let mut circuits = vec![];
    let mut listeners = 0;
    let listen = if opts.listen.is_empty() { vec!["/ip4/127.0.0.1/tcp/0".to_string()] } else { opts.listen.clone() };
    for a in &listen {
        if a.contains("/p2p-circuit") {
            circuits.push(a.clone());
            continue;
        }
        let ma: Multiaddr = a.parse().unwrap_or_else(|e| usage(&format!("bad --listen {a}: {e}")));
        peer.swarm.listen_on(ma).unwrap_or_else(|e| usage(&format!("listen {a}: {e}")));
        listeners += 1;
    }
    let mut bound: Vec<String> = vec![];
    let start_deadline = tokio::time::Instant::now() + DIAL_TIMEOUT;
    while bound.len() < listeners {
        let ev = tokio::time::timeout_at(start_deadline, peer.swarm.select_next_some()).await;
        let Ok(ev) = ev else { usage("listen: no address within the bound") };
        if let SwarmEvent::NewListenAddr { address, .. } = &ev {
            bound.push(address.clone().with(Protocol::P2p(me)).to_string());
        }
        peer.on_event(ev);
    }
    for t in &opts.sub {
        peer.swarm.behaviour_mut().gossipsub.subscribe(&IdentTopic::new(t.clone())).expect("subscribe");
    }
    emit(json!({"event": "started", "peerId": me.to_string(), "addrs": bound}));

    // stdin reader
    let stdin_tx = tx.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = line.trim().to_string();
            if !line.is_empty() && stdin_tx.send(Msg::Line(line)).await.is_err() {
                return;
            }
        }
        let _ = stdin_tx.send(Msg::Eof).await;
    });

    for c in circuits {
        if let Err(e) = peer.reserve(&c) {
            emit(json!({"event": "error", "where": "relay", "message": e}));
        }
    }
    for a in &opts.dial {
        peer.run(json!({"cmd": "dial", "addr": a}));
    }
    for (t, m) in &opts.publish {
        peer.run(json!({"cmd": "publish", "topic": t, "data": m}));
    }

    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            ev = peer.swarm.select_next_some() => peer.on_event(ev),
            Some(m) = rx.recv() => peer.on_msg(m),
            _ = tick.tick() => peer.tick(),
            _ = sigterm.recv() => shutdown(),
            _ = sigint.recv() => shutdown(),
        }
    }
}
