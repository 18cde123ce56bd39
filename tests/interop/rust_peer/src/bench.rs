//! Bench mode (`microp2p-rust-peer bench ...`): the same arguments and JSON output as
//! bench/peers/mp_bench.py, js_bench.mjs and py_bench.py, for bench/handshakes.py and bench/yamux.py.
//!
//!   bench serve [LISTEN_MA]     listen (echo + sink served), print {"event":"listening",...},
//!                               run until stdin EOF or SIGTERM
//!   bench conns ADDR N [WARMUP] N sequential connections: dial (mss + Noise + yamux), wait for
//!                               our identify of the server, close; one JSON line
//!   bench push ADDR MIB         one /microp2p/bench/sink/1.0.0 stream: write MIB MiB, close, wait
//!                               for the byte count; prints MB/s
//!
//! The swarm is minimal (tcp, noise, yamux, identify, the echo and sink handlers): no gossipsub,
//! ping or DHT, so the figures are rust's connection path alone.

use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, StreamProtocol, Swarm};
use serde_json::json;

use crate::{echo_server, emit, last_peer, usage};

const SINK: StreamProtocol = StreamProtocol::new("/microp2p/bench/sink/1.0.0");
const CHUNK: usize = 65536;
const IDENTIFY_WAIT: Duration = Duration::from_secs(10);
const STREAM_DEADLINE: Duration = Duration::from_secs(60); // a stalled pair fails within a minute
const CLOSE_WAIT: Duration = Duration::from_secs(5);
const CLK_TCK: f64 = 100.0; // Linux USER_HZ

#[derive(NetworkBehaviour)]
struct Bench {
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
    echo: echo_server::Behaviour,
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process from /proc (fields 14 and 15, after the command name).
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / CLK_TCK
}

fn swarm() -> Swarm<Bench> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .unwrap_or_else(|e| usage(&format!("tcp: {e}")))
        .with_behaviour(|key| Bench {
            identify: identify::Behaviour::new(
                identify::Config::new("ipfs/0.1.0".into(), key.public())
                    .with_agent_version("rust-libp2p/0.56.0 (microp2p interop peer)".into()),
            ),
            stream: libp2p_stream::Behaviour::new(),
            echo: echo_server::Behaviour,
        })
        .unwrap_or_else(|e| usage(&format!("behaviour: {e}")))
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn percentile(sorted: &[f64], p: f64) -> serde_json::Value {
    if sorted.is_empty() {
        return serde_json::Value::Null;
    }
    json!(sorted[((sorted.len() - 1) as f64 * p / 100.0).round() as usize])
}

pub async fn main(args: &[String]) {
    match args.first().map(|s| s.as_str()) {
        Some("serve") => serve(args.get(1).map(|s| s.as_str()).unwrap_or("/ip4/127.0.0.1/tcp/0")).await,
        Some("conns") if args.len() >= 3 => {
            let n = args[2].parse().unwrap_or_else(|_| usage("N"));
            let w = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
            conns(&args[1], n, w).await
        }
        Some("push") if args.len() >= 3 => push(&args[1], args[2].parse().unwrap_or_else(|_| usage("MIB"))).await,
        _ => usage("bench serve [MA] | conns ADDR N [WARMUP] | push ADDR MIB"),
    }
}

async fn serve(listen: &str) {
    let mut sw = swarm();
    let mut incoming = sw.behaviour().stream.new_control().accept(SINK).expect("sink protocol");
    tokio::spawn(async move {
        while let Some((_, s)) = incoming.next().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = s.split();
                let mut buf = vec![0u8; CHUNK];
                let mut n = 0usize;
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(_) => return,
                    }
                }
                let _ = wr.write_all(n.to_string().as_bytes()).await;
                let _ = wr.close().await;
            });
        }
    });
    sw.listen_on(listen.parse().unwrap_or_else(|_| usage("bad listen address"))).unwrap_or_else(|e| usage(&e.to_string()));
    let me = *sw.local_peer_id();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM");
    let (eof_tx, mut eof_rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let mut sink = tokio::io::sink();
        let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
        let _ = eof_tx.send(()).await;
    });
    loop {
        tokio::select! {
            ev = sw.select_next_some() => {
                if let SwarmEvent::NewListenAddr { address, .. } = ev {
                    emit(json!({"event": "listening", "addr": format!("{address}/p2p/{me}"), "peer": me.to_string()}));
                }
            }
            _ = sigterm.recv() => return,
            _ = eof_rx.recv() => return,
        }
    }
}

async fn conns(addr: &str, count: usize, warmup: usize) {
    let mut sw = swarm();
    let ma: Multiaddr = addr.parse().unwrap_or_else(|_| usage("bad address"));
    let (mut lat, mut dial_lat, mut errors) = (vec![], vec![], vec![]);
    let mut cpu0 = cpu_seconds();
    let mut t0 = Instant::now();
    for i in 0..warmup + count {
        if i == warmup {
            cpu0 = cpu_seconds();
            t0 = Instant::now();
        }
        let record = i >= warmup;
        let opts = DialOpts::unknown_peer_id().address(ma.clone()).build();
        let cid = opts.connection_id();
        let t = Instant::now();
        if let Err(e) = sw.dial(opts) {
            if record {
                errors.push(e.to_string());
            }
            continue;
        }
        let deadline = tokio::time::Instant::now() + IDENTIFY_WAIT;
        let mut t_dial = None;
        let res: Result<(), String> = loop {
            match tokio::time::timeout_at(deadline, sw.select_next_some()).await {
                Err(_) => break Err("identify timed out".into()),
                Ok(SwarmEvent::ConnectionEstablished { connection_id, .. }) if connection_id == cid => t_dial = Some(t.elapsed()),
                Ok(SwarmEvent::OutgoingConnectionError { connection_id, error, .. }) if connection_id == cid => break Err(error.to_string()),
                Ok(SwarmEvent::Behaviour(BenchEvent::Identify(identify::Event::Received { connection_id, .. }))) if connection_id == cid => break Ok(()),
                _ => {}
            }
        };
        if record {
            match res {
                Ok(()) => {
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    dial_lat.push(t_dial.unwrap_or_default().as_secs_f64() * 1000.0);
                }
                Err(e) if errors.len() < 3 => errors.push(e),
                Err(_) => {}
            }
        }
        if sw.close_connection(cid) {
            let deadline = tokio::time::Instant::now() + CLOSE_WAIT;
            while let Ok(ev) = tokio::time::timeout_at(deadline, sw.select_next_some()).await {
                if matches!(ev, SwarmEvent::ConnectionClosed { connection_id, .. } if connection_id == cid) {
                    break;
                }
            }
        }
    }
    let total = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let mean = if lat.is_empty() { None } else { Some(lat.iter().sum::<f64>() / lat.len() as f64) };
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    dial_lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    emit(json!({"impl": "rust", "n": count, "ok": lat.len(), "fail": count - lat.len(), "errors": errors,
        "total_s": total, "cpu_s": cpu, "conns_per_s": lat.len() as f64 / total,
        "p50_ms": percentile(&lat, 50.0), "p99_ms": percentile(&lat, 99.0), "mean_ms": mean,
        "dial_p50_ms": percentile(&dial_lat, 50.0)}));
}

async fn push(addr: &str, mib: usize) {
    let mut sw = swarm();
    let ma: Multiaddr = addr.parse().unwrap_or_else(|_| usage("bad address"));
    let peer = last_peer(&ma).unwrap_or_else(|| usage("address needs /p2p/ID"));
    let mut control = sw.behaviour().stream.new_control();
    sw.dial(ma).unwrap_or_else(|e| usage(&e.to_string()));
    tokio::spawn(async move {
        loop {
            sw.select_next_some().await;
        }
    });
    let size = mib * 1024 * 1024;
    let buf = vec![0u8; CHUNK];
    let t0 = Instant::now();
    let cpu0 = cpu_seconds();
    let run = async {
        let s = control.open_stream(peer, SINK).await.map_err(|e| e.to_string())?;
        let (mut rd, mut wr) = s.split();
        let mut sent = 0;
        while sent < size {
            let n = CHUNK.min(size - sent);
            wr.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
            sent += n;
        }
        wr.close().await.map_err(|e| e.to_string())?;
        let mut reply = String::new();
        rd.read_to_string(&mut reply).await.map_err(|e| e.to_string())?;
        Ok::<usize, String>(reply.trim().parse().unwrap_or(0))
    };
    match tokio::time::timeout(STREAM_DEADLINE, run).await {
        Ok(Ok(acked)) => {
            let s = t0.elapsed().as_secs_f64();
            emit(json!({"impl": "rust", "bytes": size, "acked": acked, "ok": acked == size, "s": s,
                "cpu_s": cpu_seconds() - cpu0, "MBps": size as f64 / s / 1e6}));
        }
        Ok(Err(e)) => emit(json!({"impl": "rust", "error": e})),
        Err(_) => emit(json!({"impl": "rust", "error": "push timed out"})),
    }
}
