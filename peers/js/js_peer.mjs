// A real js-libp2p peer for microp2p's interop tests and `microp2p emulate --js-subscriber` (its
// npm install is this folder's: `make setup` runs npm ci here). It follows the `microp2p node`
// command-line contract (docs/architecture.md, "Command line") so a test can run one scenario
// against any peer kind:
//
//   node js_peer.mjs --listen MA [--seed HEX64] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]...
//                    [--dht client|server] [--dht-protocol ID] [--dht-server]  (= --dht server)
//                    [--relay-server|--relay-hop] [--relay-no-limit] [--relay-client] [--pub-wait-ms N]
//                    (--listen <relay>/p2p/R/p2p-circuit reserves a slot on R)
//                    [--gossip-protocols P1,P2]   (e.g. /meshsub/1.1.0: a peer without IDONTWANT)
//   node js_peer.mjs --print-id --seed HEX64
//
// stdout carries JSON lines only (events); stdin takes JSON lines (commands); libp2p's own logs
// (DEBUG=libp2p:*) go to stderr. Exits on {"cmd":"stop"}, stdin EOF or SIGTERM.
import './polyfill.mjs'
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO_PROTOCOL = '/microp2p/echo/1.0.0'
// Bounds: every wait in this peer ends by itself so a test can never hang on it.
const PUB_WAIT_MS_DEFAULT = 10000
const PUB_RETRY_MS = 100
const DIAL_TIMEOUT_MS = 10000
const ECHO_TIMEOUT_MS = 60000
const ECHO_CHUNK = 16384
const ECHO_MAX_STREAMS = 256
const STOP_TIMEOUT_MS = 3000

function usage (msg) {
  process.stderr.write(`js_peer: ${msg}\n`)
  process.exit(2)
}

function parseArgs (argv) {
  const o = { listen: [], dial: [], sub: [], pub: [], seed: null, printId: false, dht: null, dhtProtocol: null, relayServer: false, relayNoLimit: false, relayClient: false, pubWaitMs: PUB_WAIT_MS_DEFAULT, gossipProtocols: null }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    switch (a) {
      case '--listen': o.listen.push(val()); break
      case '--dial': o.dial.push(val()); break
      case '--sub': o.sub.push(val()); break
      case '--pub': {
        const v = val()
        const k = v.indexOf(':')
        if (k <= 0) usage('--pub wants TOPIC:MSG')
        o.pub.push({ topic: v.slice(0, k), data: v.slice(k + 1) })
        break
      }
      case '--seed': o.seed = val(); break
      case '--pub-wait-ms': o.pubWaitMs = Number(val()); break
      case '--gossip-protocols': o.gossipProtocols = val().split(',').filter((x) => x !== ''); break
      case '--print-id': o.printId = true; break
      case '--dht-server': o.dht = 'server'; break
      case '--dht': o.dht = val(); if (o.dht !== 'client' && o.dht !== 'server') usage('--dht wants client or server'); break
      case '--dht-protocol': o.dhtProtocol = val(); break
      case '--relay-server': o.relayServer = true; break
      case '--relay-hop': o.relayServer = true; break
      case '--relay-no-limit': o.relayNoLimit = true; break
      case '--relay-client': o.relayClient = true; break
      default: usage(`unknown argument ${a}`)
    }
  }
  if (o.seed != null && !/^[0-9a-fA-F]{64}$/.test(o.seed)) usage('--seed wants 64 hex digits')
  return o
}

const opts = parseArgs(process.argv.slice(2))

async function privateKeyFor (seedHex) {
  const seed = seedHex != null ? Buffer.from(seedHex, 'hex') : randomBytes(32)
  return generateKeyPairFromSeed('Ed25519', new Uint8Array(seed))
}

if (opts.printId) {
  if (opts.seed == null) usage('--print-id needs --seed')
  process.stdout.write(peerIdFromPrivateKey(await privateKeyFor(opts.seed)).toString() + '\n')
  process.exit(0)
}
if (opts.listen.length === 0) opts.listen.push('/ip4/127.0.0.1/tcp/0')

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function errText (e) {
  return (e && (e.name ? `${e.name}: ${e.message}` : e.message)) || String(e)
}

function emitError (where, e) {
  emit({ event: 'error', where, message: errText(e) })
}

// libp2p aborts in-flight work on shutdown or resets; report, never crash the peer.
process.on('unhandledRejection', (e) => emitError('unhandledRejection', e))
process.on('uncaughtException', (e) => emitError('uncaughtException', e))

const utf8 = new TextDecoder('utf-8', { fatal: false })
const services = {
  identify: identify(),
  identifyPush: identifyPush(),
  ping: ping(),
  pubsub: gossipsub({
    emitSelf: false,
    allowPublishToZeroTopicPeers: false,
    heartbeatInterval: 1000,
    ...(opts.gossipProtocols != null ? { protocols: opts.gossipProtocols } : {})
  })
}
if (opts.dht != null) {
  const { kadDHT, passthroughMapper } = await import('@libp2p/kad-dht')
  // Loopback tests: keep 127.0.0.1 in peer records (the default mapper strips private addresses),
  // and say the mode (js picks client mode unless it sees a public address).
  services.dht = kadDHT({
    clientMode: opts.dht === 'client',
    peerInfoMapper: passthroughMapper,
    ...(opts.dhtProtocol != null ? { protocol: opts.dhtProtocol } : {})
  })
}
const transports = [tcp()]
const usesCircuit = opts.relayClient || opts.listen.concat(opts.dial).some((a) => a.includes('/p2p-circuit'))
if (usesCircuit || opts.relayServer) {
  const relay = await import('@libp2p/circuit-relay-v2')
  if (usesCircuit) transports.push(relay.circuitRelayTransport())
  if (opts.relayServer) {
    // --relay-no-limit: circuits carry no Limit (as a gateway does for its allow-listed devices);
    // js then treats them as full connections (gossipsub, any protocol).
    services.relay = relay.circuitRelayServer(opts.relayNoLimit ? { reservations: { applyDefaultLimit: false } } : {})
  }
}

const privateKey = await privateKeyFor(opts.seed)
const circuitListen = opts.listen.filter((a) => a.includes('/p2p-circuit'))
const node = await createLibp2p({
  privateKey,
  addresses: { listen: opts.listen.filter((a) => !a.includes('/p2p-circuit')) },
  transports,
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  // Loopback tests reconnect quickly; the default inbound rate limit would refuse them silently.
  connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128'] },
  services
})

function connInfo (conn) {
  const addr = conn.remoteAddr.toString()
  return { peer: conn.remotePeer.toString(), addr, direction: conn.direction, id: conn.id, relayed: addr.includes('/p2p-circuit'), limited: conn.limits != null }
}

node.addEventListener('connection:open', (e) => emit({ event: 'connection:open', ...connInfo(e.detail) }))
node.addEventListener('connection:close', (e) => emit({ event: 'connection:close', ...connInfo(e.detail) }))
node.addEventListener('peer:identify', (e) => {
  const r = e.detail
  emit({
    event: 'identify',
    peer: r.peerId.toString(),
    protocols: r.protocols,
    agentVersion: r.agentVersion ?? null,
    protocolVersion: r.protocolVersion ?? null,
    listenAddrs: r.listenAddrs.map((a) => a.toString()),
    observedAddr: r.observedAddr != null ? r.observedAddr.toString() : null
  })
})

const pubsub = node.services.pubsub
pubsub.addEventListener('message', (e) => {
  const m = e.detail
  if (bench != null && m.topic === bench.topic && isBench(m.data)) {
    // Counted silently: a JSON line per message would be what the bench measures.
    const now = wallUs()
    const dv = new DataView(m.data.buffer, m.data.byteOffset, m.data.byteLength)
    const sent = Number(dv.getBigUint64(8))
    if (bench.firstSent == null || sent < bench.firstSent) bench.firstSent = sent
    bench.lastRecv = now
    if (bench.lat.length < BENCH_MAX_COUNT) bench.lat.push(now - sent)
    bench.got++
    if (bench.got >= bench.want) bench.done()
    return
  }
  emit({
    event: 'gossip:message',
    topic: m.topic,
    from: m.type === 'signed' ? m.from.toString() : null,
    data: utf8.decode(m.data),
    dataHex: Buffer.from(m.data).toString('hex'),
    seqno: m.type === 'signed' ? m.sequenceNumber.toString(16).padStart(16, '0') : null,
    // The author's signature as js received (and verified) it, so a test can re-check it.
    signature: m.type === 'signed' && m.signature != null ? Buffer.from(m.signature).toString('hex') : null
  })
})
// Mesh changes, as js decided (outbound) or was told (inbound): lets a test check who pruned whom.
for (const kind of ['graft', 'prune']) {
  pubsub.addEventListener(`gossipsub:${kind}`, (e) => {
    emit({ event: `gossip:${kind}`, peer: e.detail.peerId.toString(), topic: e.detail.topic, direction: e.detail.direction })
  })
}

// Wire counters for tests/benches (the `stats` command): js keeps none without a metrics
// registry, so count at the router's own send/receive entry points.
const wire = { msgsSent: 0, idontwantSent: 0, idontwantRecv: 0, duplicates: 0, peers: {} }
function peerWire (id) {
  const k = id.toString()
  let w = wire.peers[k]
  if (w == null) {
    w = { msgsSent: 0, idontwantSent: 0, idontwantRecv: 0, duplicates: 0 }
    wire.peers[k] = w
  }
  return w
}
if (typeof pubsub.sendRpc === 'function') {
  const sendRpc = pubsub.sendRpc.bind(pubsub)
  pubsub.sendRpc = (id, rpc) => {
    const ok = sendRpc(id, rpc)
    if (ok) countSent(id, rpc)
    return ok
  }
}
function countSent (id, rpc) {
  const w = peerWire(id)
  const n = rpc.messages?.length ?? 0
  let d = 0
  for (const x of rpc.control?.idontwant ?? []) d += x.messageIDs?.length ?? 0
  w.msgsSent += n; wire.msgsSent += n
  w.idontwantSent += d; wire.idontwantSent += d
}
if (typeof pubsub.sendRpcInBatch === 'function') {
  // IDONTWANT (and forwarded messages) go out here, encoded once for many peers.
  const sendRpcInBatch = pubsub.sendRpcInBatch.bind(pubsub)
  pubsub.sendRpcInBatch = (tosend, rpc) => {
    const r = sendRpcInBatch(tosend, rpc)
    for (const id of tosend) countSent(id, rpc) // peers it could not reach were removed
    return r
  }
}
if (typeof pubsub.handleIdontwant === 'function') {
  const handleIdontwant = pubsub.handleIdontwant.bind(pubsub)
  pubsub.handleIdontwant = (id, idontwant) => {
    let d = 0
    for (const x of idontwant) d += x.messageIDs?.length ?? 0
    peerWire(id).idontwantRecv += d; wire.idontwantRecv += d
    return handleIdontwant(id, idontwant)
  }
}
if (typeof pubsub.validateReceivedMessage === 'function') {
  const validate = pubsub.validateReceivedMessage.bind(pubsub)
  pubsub.validateReceivedMessage = async (from, rpcMsg) => {
    const r = await validate(from, rpcMsg)
    if (r?.code === 'duplicate') { peerWire(from).duplicates++; wire.duplicates++ }
    return r
  }
}

// Bench payloads (same layout as microp2p's cli_node.py and py_peer.py):
//   "BNCH" + index (4 bytes BE) + wall-clock send time in us (8 bytes BE) + padding.
const BENCH_MAGIC = [0x42, 0x4e, 0x43, 0x48]
const BENCH_HEADER = 16
const BENCH_MAX_COUNT = 1000000
const BENCH_MAX_WAIT_MS = 600000
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000)
let bench = null
function isBench (data) {
  return data.length >= BENCH_HEADER && data[0] === BENCH_MAGIC[0] && data[1] === BENCH_MAGIC[1] && data[2] === BENCH_MAGIC[2] && data[3] === BENCH_MAGIC[3]
}
function benchSummary (b) {
  const lat = b.lat.slice().sort((x, y) => x - y)
  const pct = (q) => lat.length ? lat[Math.round(q * (lat.length - 1))] / 1000 : null
  const span = b.got > 0 ? b.lastRecv - b.firstSent : null
  return { topic: b.topic, want: b.want, received: b.got, spanUs: span, rate: span > 0 ? b.got * 1e6 / span : null, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: lat.length ? lat[lat.length - 1] / 1000 : null }
}

pubsub.addEventListener('subscription-change', (e) => {
  for (const s of e.detail.subscriptions) {
    emit({ event: 'subscription-change', peer: e.detail.peerId.toString(), topic: s.topic, subscribe: s.subscribe })
  }
})

async function echoServe (stream) {
  try {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(ECHO_TIMEOUT_MS) })
    }
    await stream.close({ signal: AbortSignal.timeout(ECHO_TIMEOUT_MS) })
  } catch (e) {
    stream.abort(e)
  }
}
await node.handle(ECHO_PROTOCOL, echoServe, { maxInboundStreams: ECHO_MAX_STREAMS, maxOutboundStreams: ECHO_MAX_STREAMS, runOnLimitedConnection: true })

function targetOf (cmd) {
  if (cmd.addr != null) return multiaddr(cmd.addr)
  if (cmd.peer != null) return peerIdFromString(cmd.peer)
  throw new Error('command needs "addr" or "peer"')
}

async function connectTo (cmd) {
  return node.dial(targetOf(cmd), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
}

async function echoOnce (peer, size) {
  const signal = AbortSignal.timeout(ECHO_TIMEOUT_MS)
  const stream = await node.dialProtocol(peer, ECHO_PROTOCOL, { signal, runOnLimitedConnection: true })
  const payload = randomBytes(size)
  const want = createHash('sha256').update(payload).digest('hex')
  const reading = (async () => {
    const h = createHash('sha256')
    let n = 0
    for await (const chunk of stream) {
      const b = chunk.subarray()
      h.update(b)
      n += b.length
    }
    return { n, digest: h.digest('hex') }
  })()
  for (let off = 0; off < size; off += ECHO_CHUNK) {
    if (!stream.send(payload.subarray(off, Math.min(size, off + ECHO_CHUNK)))) await stream.onDrain({ signal })
  }
  await stream.close({ signal })
  const got = await Promise.race([reading, new Promise((resolve, reject) => {
    signal.addEventListener('abort', () => reject(new Error('echo timed out')), { once: true })
  })])
  if (got.n !== size || got.digest !== want) throw new Error(`echo mismatch: sent ${size} bytes, got ${got.n}`)
  return got.n
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// Publish once some peer is subscribed, within waitMs. js may know a subscriber before its
// outbound stream exists and then publishes to nobody; such a publish sent nothing, so retry it.
async function publishWhenSubscribed (topic, data, waitMs) {
  const deadline = Date.now() + waitMs
  // data: text, or raw bytes (binary payloads such as CBOR come as {"dataHex": ...})
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  let last = null
  while (true) {
    if (pubsub.getSubscribers(topic).length > 0) {
      try {
        const r = await pubsub.publish(topic, bytes)
        if (r.recipients.length > 0) {
          emit({ event: 'published', topic, data: typeof data === 'string' ? data : Buffer.from(data).toString('hex'), recipients: r.recipients.map((p) => p.toString()) })
          return
        }
        last = new Error('published to no recipients')
      } catch (e) {
        last = e
      }
    }
    if (Date.now() >= deadline) throw last ?? new Error(`no peer subscribed to ${topic} within ${waitMs} ms`)
    await sleep(PUB_RETRY_MS)
  }
}

// Publishes run in order, one after another, like the command line lists them.
let publishChain = Promise.resolve()
function queuePublish (topic, data, waitMs) {
  publishChain = publishChain.then(() => publishWhenSubscribed(topic, data, waitMs))
    .catch((e) => emit({ event: 'error', where: 'publish', topic, message: errText(e) }))
  return publishChain
}

const commands = {
  async dial (cmd) {
    const conn = await connectTo(cmd)
    emit({ event: 'dialed', ...connInfo(conn) })
  },
  async ping (cmd) {
    const conn = await connectTo(cmd)
    const count = cmd.count ?? 1
    for (let i = 0; i < count; i++) {
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      emit({ event: 'ping', peer: conn.remotePeer.toString(), rtt })
    }
  },
  async publish (cmd) {
    const data = cmd.dataHex != null ? new Uint8Array(Buffer.from(cmd.dataHex, 'hex')) : (cmd.data ?? '')
    await queuePublish(cmd.topic, data, cmd.wait_ms ?? opts.pubWaitMs)
  },
  async subscribe (cmd) {
    pubsub.subscribe(cmd.topic)
    emit({ event: 'subscribed', topic: cmd.topic })
  },
  async unsubscribe (cmd) {
    pubsub.unsubscribe(cmd.topic)
    emit({ event: 'unsubscribed', topic: cmd.topic })
  },
  async 'topic-peers' (cmd) {
    emit({
      event: 'topic-peers',
      topic: cmd.topic,
      peers: pubsub.getSubscribers(cmd.topic).map((p) => p.toString()),
      mesh: typeof pubsub.getMeshPeers === 'function' ? pubsub.getMeshPeers(cmd.topic) : null
    })
  },
  async stats () {
    emit({ event: 'stats', wire })
  },
  // Publish `count` bench payloads of `size` bytes every `interval_ms` (0: a burst, each publish
  // awaited in turn, as an application would).
  async 'publish-many' (cmd) {
    const n = Math.min(cmd.count ?? 1, BENCH_MAX_COUNT)
    const size = Math.max(cmd.size ?? 100, BENCH_HEADER)
    const interval = cmd.interval_ms ?? 0
    const t0 = performance.now()
    let failed = 0
    for (let i = 0; i < n; i++) {
      if (interval > 0) {
        const wait = i * interval - (performance.now() - t0)
        if (wait > 0) await sleep(wait)
      }
      const data = new Uint8Array(size).fill(0x5a)
      data.set(BENCH_MAGIC, 0)
      const dv = new DataView(data.buffer)
      dv.setUint32(4, i)
      dv.setBigUint64(8, BigInt(wallUs()))
      try {
        await pubsub.publish(cmd.topic, data)
      } catch (e) {
        failed++
      }
    }
    emit({ event: 'published-many', topic: cmd.topic, count: n, failed, ms: Math.round(performance.now() - t0), recipients: pubsub.getSubscribers(cmd.topic).length })
  },
  async 'bench-recv' (cmd) {
    const want = Math.min(cmd.count ?? 1, BENCH_MAX_COUNT)
    const waitMs = Math.min(cmd.timeout_ms ?? 60000, BENCH_MAX_WAIT_MS)
    const b = { topic: cmd.topic, want, got: 0, lat: [], firstSent: null, lastRecv: null }
    const finished = new Promise((resolve) => {
      b.done = resolve
      setTimeout(resolve, waitMs)
    })
    bench = b
    emit({ event: 'bench-armed', topic: b.topic, count: want })
    await finished
    bench = null
    emit({ event: 'bench-result', ...benchSummary(b) })
  },
  async 'relay-reservations' () {
    const r = node.services.relay
    emit({ event: 'relay-reservations', peers: r == null ? [] : [...r.reservations.keys()].map((p) => p.toString()) })
  },
  async peers () {
    emit({ event: 'peers', peers: node.getConnections().map(connInfo) })
  },
  async hangup (cmd) {
    await node.hangUp(targetOf(cmd), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    emit({ event: 'hangup', peer: cmd.peer ?? cmd.addr })
  },
  async echo (cmd) {
    const conn = await connectTo(cmd)
    const streams = Math.max(1, Math.min(ECHO_MAX_STREAMS, cmd.streams ?? 1))
    const size = cmd.size ?? 1024
    const t0 = performance.now()
    try {
      const done = await Promise.all(Array.from({ length: streams }, () => echoOnce(conn.remotePeer, size)))
      emit({ event: 'echo', ok: true, peer: conn.remotePeer.toString(), streams, bytes: done.reduce((a, b) => a + b, 0), ms: Math.round(performance.now() - t0) })
    } catch (e) {
      emit({ event: 'echo', ok: false, peer: conn.remotePeer.toString(), streams, error: errText(e), ms: Math.round(performance.now() - t0) })
    }
  },
  async stop () {
    await shutdown(0)
  },
  // Kademlia ("Reach" in docs/architecture.md): the same commands and answers as
  // `microp2p node --dht`.
  async find_peer (cmd) {
    const dht = needDht()
    let addrs = null
    try {
      for await (const ev of dht.findPeer(peerIdFromString(cmd.peer), { signal: AbortSignal.timeout(DHT_QUERY_TIMEOUT_MS) })) {
        if (ev.name === 'FINAL_PEER' && ev.peer.id.equals(peerIdFromString(cmd.peer))) addrs = ev.peer.multiaddrs.map((a) => a.toString())
      }
    } catch (e) {
      process.stderr.write(`js_peer: find_peer: ${errText(e)}\n`)
    }
    emit({ event: 'dht:find_peer', ...idOf(cmd), peer: cmd.peer, found: addrs != null, addrs: addrs ?? [] })
  },
  async get_closest_peers (cmd) {
    const dht = needDht()
    const peers = []
    try {
      for await (const ev of dht.getClosestPeers(await dhtKey(cmd.key), { signal: AbortSignal.timeout(DHT_QUERY_TIMEOUT_MS) })) {
        if (ev.name === 'FINAL_PEER') peers.push(ev.peer.id.toString())
      }
    } catch (e) {
      process.stderr.write(`js_peer: get_closest_peers: ${errText(e)}\n`)
    }
    emit({ event: 'dht:closest_peers', ...idOf(cmd), key: cmd.key, peers })
  },
  async provide (cmd) {
    const dht = needDht()
    const to = new Set()
    try {
      for await (const ev of dht.provide(await cidOf(cmd.key), { signal: AbortSignal.timeout(DHT_QUERY_TIMEOUT_MS) })) {
        if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'ADD_PROVIDER') to.add(ev.from.toString())
      }
    } catch (e) {
      process.stderr.write(`js_peer: provide: ${errText(e)}\n`)
    }
    emit({ event: 'dht:provided', ...idOf(cmd), key: cmd.key, peers: to.size })
  },
  async find_providers (cmd) {
    const dht = needDht()
    const found = new Map()
    try {
      for await (const ev of dht.findProviders(await cidOf(cmd.key), { signal: AbortSignal.timeout(DHT_QUERY_TIMEOUT_MS) })) {
        if (ev.name === 'PROVIDER') {
          for (const p of ev.providers) found.set(p.id.toString(), p.multiaddrs.map((a) => a.toString()))
          if (found.size >= (cmd.count ?? 1)) break
        }
      }
    } catch (e) {
      process.stderr.write(`js_peer: find_providers: ${errText(e)}\n`)
    }
    emit({ event: 'dht:providers', ...idOf(cmd), key: cmd.key, providers: [...found].map(([id, addrs]) => ({ id, addrs })) })
  }
}

const DHT_QUERY_TIMEOUT_MS = 30000
function needDht () {
  if (node.services.dht == null) throw new Error('no DHT: start with --dht client|server')
  return node.services.dht
}
function idOf (cmd) {
  return cmd.id != null ? { id: cmd.id } : {}
}
// CID text (CIDv1 any codec, or CIDv0) -> CID; a peer id text -> its libp2p-key CID.
async function cidOf (text) {
  const { CID } = await import('multiformats/cid')
  try {
    return CID.parse(text)
  } catch (e) {
    return peerIdFromString(text).toCID()
  }
}
// the DHT key of a command's key: a peer id's bytes, or a CID's multihash
async function dhtKey (text) {
  try {
    return peerIdFromString(text).toMultihash().bytes
  } catch (e) {
    return (await cidOf(text)).multihash.bytes
  }
}

let stopping = false
async function shutdown (code) {
  if (stopping) return
  stopping = true
  const forced = setTimeout(() => process.exit(code), STOP_TIMEOUT_MS)
  forced.unref()
  try {
    await node.stop()
  } catch (e) {
    process.stderr.write(`js_peer: stop: ${errText(e)}\n`)
  }
  emit({ event: 'stopped' })
  // Let stdout drain (it is asynchronous on pipes) before leaving.
  process.stdout.write('', () => process.exit(code))
}

process.on('SIGTERM', () => { shutdown(0) })
process.on('SIGINT', () => { shutdown(0) })

async function runCommand (line) {
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    emit({ event: 'error', where: 'stdin', message: `bad JSON: ${errText(e)}` })
    return
  }
  const fn = commands[cmd.cmd]
  if (fn == null) {
    emit({ event: 'error', where: 'stdin', cmd: cmd.cmd, message: 'unknown command' })
    return
  }
  try {
    await fn(cmd)
  } catch (e) {
    emit({ event: 'error', where: cmd.cmd, cmd: cmd.cmd, message: errText(e) })
  }
}

await node.start()
for (const t of opts.sub) pubsub.subscribe(t)
emit({ event: 'started', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map((a) => a.toString()).filter((a) => !a.includes('/p2p-circuit')) })

// Reservations (microp2p's contract: relay:reservation with the circuit addrs): js reserves when
// it listens on <relay>/p2p-circuit and then lists the circuit address among its own.
let circuitSeen = ''
node.addEventListener('self:peer:update', () => {
  const addrs = node.getMultiaddrs().map((a) => a.toString()).filter((a) => a.includes('/p2p-circuit'))
  const key = addrs.join(' ')
  if (key === circuitSeen) return
  circuitSeen = key
  for (const a of addrs) {
    const relay = a.split('/p2p-circuit')[0].split('/p2p/').pop()
    emit({ event: 'relay:reservation', relay, addrs: addrs.filter((x) => x.includes(`/p2p/${relay}/p2p-circuit`)), expire: null })
  }
})
if (circuitListen.length > 0) {
  try {
    await node.components?.transportManager?.listen?.(circuitListen.map((a) => multiaddr(a)))
  } catch (e) {
    emitError('relay-listen', e)
  }
}

const rl = createInterface({ input: process.stdin })
rl.on('line', (line) => { if (line.trim() !== '') runCommand(line) })
rl.on('close', () => { shutdown(0) })

for (const addr of opts.dial) await runCommand(JSON.stringify({ cmd: 'dial', addr }))
for (const p of opts.pub) queuePublish(p.topic, p.data, opts.pubWaitMs)
