// js-libp2p bench peer (the js-libp2p 3.3.11 install of peers/js/node_modules). Same arguments
// and JSON output as mp_bench.py and py_bench.py:
//
//   node js_bench.mjs serve [LISTEN_MA]     listen (echo + sink served), print {"event":"listening",...},
//                                           run until stdin EOF or SIGTERM
//   node js_bench.mjs conns ADDR N [WARMUP] N sequential connections: dial (mss + Noise + yamux),
//                                           wait for our identify of the server, close; one JSON line
//   node js_bench.mjs push ADDR MIB         one /microp2p/bench/sink/1.0.0 stream: write MIB MiB,
//                                           close, wait for the byte count; prints MB/s
//
// The node is minimal (tcp, noise, yamux, identify): no gossipsub, ping or DHT, so the figures are
// js's connection path alone. Loopback is allow-listed: js otherwise refuses more than 5 inbound
// connections per second per host, silently.
import '../../peers/js/polyfill.mjs'
// ESM resolves bare names from this file's folder upwards; the install lives in peers/js, whose
// loader imports each package's entry file by path (its own dependencies then resolve from there).
import { load } from '../../peers/js/load.mjs'

const { createLibp2p } = await load('libp2p')
const { noise } = await load('@chainsafe/libp2p-noise')
const { yamux } = await load('@chainsafe/libp2p-yamux')
const { tcp } = await load('@libp2p/tcp')
const { identify } = await load('@libp2p/identify')
const { multiaddr } = await load('@multiformats/multiaddr')

const SINK = '/microp2p/bench/sink/1.0.0'
const ECHO = '/microp2p/echo/1.0.0'
const CHUNK = 65536
const IDENTIFY_WAIT_MS = 10000
const STREAM_TIMEOUT_MS = 600000
const MAX_STREAMS = 64

function out (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function cpuSeconds () {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

async function makeNode (listen) {
  return createLibp2p({
    addresses: { listen: listen ? [listen] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'] },
    services: { identify: identify() }
  })
}

async function sinkServe (stream) {
  try {
    let n = 0
    for await (const chunk of stream) n += chunk.byteLength
    stream.send(new TextEncoder().encode(String(n)))
    await stream.close({ signal: AbortSignal.timeout(STREAM_TIMEOUT_MS) })
  } catch (e) {
    stream.abort(e)
  }
}

async function echoServe (stream) {
  try {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(STREAM_TIMEOUT_MS) })
    }
    await stream.close({ signal: AbortSignal.timeout(STREAM_TIMEOUT_MS) })
  } catch (e) {
    stream.abort(e)
  }
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.round((sorted.length - 1) * p / 100)]
}

function errText (e) {
  return (e && (e.name ? `${e.name}: ${e.message}` : e.message)) || String(e)
}

async function serve (listen) {
  const node = await makeNode(listen)
  const limits = { maxInboundStreams: MAX_STREAMS, maxOutboundStreams: MAX_STREAMS }
  await node.handle(SINK, sinkServe, limits)
  await node.handle(ECHO, echoServe, limits)
  await node.start()
  const addr = node.getMultiaddrs()[0].toString()
  out({ event: 'listening', addr, peer: node.peerId.toString() })
  const stop = async () => { try { await node.stop() } finally { process.exit(0) } }
  process.stdin.on('end', stop)
  process.stdin.resume()
  process.on('SIGTERM', stop)
}

async function conns (addr, count, warmup) {
  const node = await makeNode(null)
  await node.start()
  const ma = multiaddr(addr)
  let waiter = null
  node.addEventListener('peer:identify', () => { if (waiter) waiter() })
  const lat = []
  const dialLat = []
  const errors = []
  async function one (record) {
    const identified = new Promise((resolve, reject) => {
      waiter = resolve
      setTimeout(() => reject(new Error('identify timed out')), IDENTIFY_WAIT_MS).unref()
    })
    identified.catch(() => {})
    const t = performance.now()
    let conn = null
    try {
      conn = await node.dial(ma, { signal: AbortSignal.timeout(IDENTIFY_WAIT_MS) })
      const tDial = performance.now() - t
      await identified
      if (record) {
        lat.push(performance.now() - t)
        dialLat.push(tDial)
      }
    } catch (e) {
      if (record) errors.push(errText(e))
    }
    waiter = null
    if (conn != null) {
      try { await conn.close() } catch (e) { if (record) errors.push('close: ' + errText(e)) }
    }
  }
  for (let i = 0; i < warmup; i++) await one(false)
  const cpu0 = cpuSeconds()
  const t0 = performance.now()
  for (let i = 0; i < count; i++) await one(true)
  const totalS = (performance.now() - t0) / 1000
  const cpuS = cpuSeconds() - cpu0
  lat.sort((a, b) => a - b)
  dialLat.sort((a, b) => a - b)
  out({
    impl: 'js',
    n: count,
    ok: lat.length,
    fail: count - lat.length,
    errors: errors.slice(0, 3),
    total_s: totalS,
    cpu_s: cpuS,
    conns_per_s: lat.length / totalS,
    p50_ms: percentile(lat, 50),
    p99_ms: percentile(lat, 99),
    mean_ms: lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : null,
    dial_p50_ms: percentile(dialLat, 50)
  })
  await node.stop()
}

async function push (addr, mib) {
  const node = await makeNode(null)
  await node.start()
  const conn = await node.dial(multiaddr(addr))
  const size = mib * 1024 * 1024
  const buf = new Uint8Array(CHUNK)
  const signal = AbortSignal.timeout(STREAM_TIMEOUT_MS)
  const t0 = performance.now()
  const cpu0 = cpuSeconds()
  const stream = await conn.newStream(SINK, { signal })
  for (let sent = 0; sent < size; sent += CHUNK) {
    const n = Math.min(CHUNK, size - sent)
    if (!stream.send(n === CHUNK ? buf : buf.subarray(0, n))) await stream.onDrain({ signal })
  }
  await stream.close({ signal })
  let reply = ''
  for await (const chunk of stream) reply += new TextDecoder().decode(chunk.subarray())
  const s = (performance.now() - t0) / 1000
  const acked = Number(reply)
  out({ impl: 'js', bytes: size, acked, ok: acked === size, s, cpu_s: cpuSeconds() - cpu0, MBps: size / s / 1e6 })
  await conn.close()
  await node.stop()
}

const [mode, a1, a2, a3] = process.argv.slice(2)
if (mode === 'serve') await serve(a1 ?? '/ip4/127.0.0.1/tcp/0')
else if (mode === 'conns') { await conns(a1, Number(a2), Number(a3 ?? 0)); process.exit(0) } else if (mode === 'push') { await push(a1, Number(a2)); process.exit(0) } else {
  process.stderr.write('usage: js_bench.mjs serve [MA] | conns ADDR N | push ADDR MIB\n')
  process.exit(2)
}
