// A real go-libp2p peer for microp2p's interop tests. It speaks the same JSON-lines control contract
// as js_peer.mjs and py_peer.py (docs/architecture.md, "Command line"), so a test runs one scenario
// against any peer kind:
//
//	go_peer --listen MA [--seed HEX64] [--dial MA]... [--sub TOPIC]... [--pub TOPIC:MSG]...
//	        [--dht client|server] [--dht-server] [--dht-protocol ID] [--dht-prefix P]
//	        [--relay-hop|--relay-server] [--relay-client] [--listen <relay>/p2p/R/p2p-circuit]
//	        [--pub-wait-ms N] [--gossip-protocols P1,P2]
//	go_peer --print-id --seed HEX64
//
// stdout carries JSON lines only (events); stdin takes JSON lines (commands); logs go to stderr.
// Exits on {"cmd":"stop"}, stdin EOF, SIGTERM or SIGINT.
//
// Transports: TCP only, Noise only, yamux only (what microp2p speaks).
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	rclient "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	echoProtocol = protocol.ID("/microp2p/echo/1.0.0")
	// Bounds: every wait in this peer ends by itself so a test can never hang on it.
	pubWaitMsDefault = 10000
	pubRetry         = 100 * time.Millisecond
	dialTimeout      = 10 * time.Second
	echoTimeout      = 60 * time.Second
	echoChunk        = 16384
	echoMaxStreams   = 256
	stopTimeout      = 3 * time.Second
	dhtQueryTimeout  = 30 * time.Second
	dhtTableWait     = 5 * time.Second
	// Pubsub queues (go's default is 32 each and drops beyond): js has no such bound, and the bench
	// and soak bursts would otherwise measure go's queue drops rather than the wire.
	pubsubQueueSize = 4096
	stdinLineMax    = 1 << 20
	// Bench payloads (same layout as microp2p's cli and js_peer.mjs):
	//   "BNCH" + index (4 bytes BE) + wall-clock send time in us (8 bytes BE) + padding.
	benchHeader   = 16
	benchMaxCount = 1000000
	benchMaxWait  = 600 * time.Second
	// Reservations are refreshed this long before they expire.
	relayRefreshMargin = 5 * time.Minute
)

var benchMagic = []byte("BNCH")

type options struct {
	listen, dial, sub []string
	pub               [][2]string
	seed              string
	printID           bool
	dhtMode           string
	dhtProtocol       string
	dhtPrefix         string
	relayHop          bool
	relayClient       bool
	pubWaitMs         int
	gossipProtocols   []string
}

func usage(msg string) {
	fmt.Fprintf(os.Stderr, "go_peer: %s\n", msg)
	os.Exit(2)
}

func parseArgs(argv []string) *options {
	o := &options{pubWaitMs: pubWaitMsDefault}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		val := func() string {
			if i+1 >= len(argv) {
				usage(a + " needs a value")
			}
			i++
			return argv[i]
		}
		switch a {
		case "--listen":
			o.listen = append(o.listen, val())
		case "--dial":
			o.dial = append(o.dial, val())
		case "--sub":
			o.sub = append(o.sub, val())
		case "--pub":
			v := val()
			k := strings.Index(v, ":")
			if k <= 0 {
				usage("--pub wants TOPIC:MSG")
			}
			o.pub = append(o.pub, [2]string{v[:k], v[k+1:]})
		case "--seed":
			o.seed = val()
		case "--print-id":
			o.printID = true
		case "--pub-wait-ms":
			var n int
			if _, err := fmt.Sscanf(val(), "%d", &n); err != nil || n < 0 {
				usage("--pub-wait-ms wants a number")
			}
			o.pubWaitMs = n
		case "--gossip-protocols":
			for _, p := range strings.Split(val(), ",") {
				if p != "" {
					o.gossipProtocols = append(o.gossipProtocols, p)
				}
			}
		case "--dht":
			o.dhtMode = val()
			if o.dhtMode != "client" && o.dhtMode != "server" {
				usage("--dht wants client or server")
			}
		case "--dht-server":
			o.dhtMode = "server"
		case "--dht-client":
			o.dhtMode = "client"
		case "--dht-protocol":
			o.dhtProtocol = val()
		case "--dht-prefix":
			o.dhtPrefix = val()
		case "--relay-hop", "--relay-server":
			o.relayHop = true
		case "--relay-client":
			o.relayClient = true
		default:
			usage("unknown argument " + a)
		}
	}
	if o.seed != "" {
		if b, err := hex.DecodeString(o.seed); err != nil || len(b) != 32 {
			usage("--seed wants 64 hex digits")
		}
	}
	if (o.dhtProtocol != "" || o.dhtPrefix != "") && o.dhtMode == "" {
		o.dhtMode = "server"
	}
	return o
}

// privateKeyFor derives the Ed25519 identity from a 32-byte seed, as microp2p, js and py do.
func privateKeyFor(seedHex string) crypto.PrivKey {
	seed := make([]byte, ed25519.SeedSize)
	if seedHex != "" {
		seed, _ = hex.DecodeString(seedHex)
	} else if _, err := rand.Read(seed); err != nil {
		usage("no randomness: " + err.Error())
	}
	k, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(seed))
	if err != nil {
		usage("bad key: " + err.Error())
	}
	return k
}

// --- output ------------------------------------------------------------------------------------

var outMu sync.Mutex
var out = bufio.NewWriterSize(os.Stdout, 1<<16)

type obj = map[string]any

func emit(o obj) {
	b, err := json.Marshal(o)
	if err != nil {
		b, _ = json.Marshal(obj{"event": "error", "where": "emit", "message": err.Error()})
	}
	outMu.Lock()
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
	outMu.Unlock()
}

func emitError(where string, cmd obj, err error) {
	e := obj{"event": "error", "where": where, "message": err.Error()}
	if cmd != nil {
		e["cmd"] = cmd["cmd"]
		if id, ok := cmd["id"]; ok {
			e["id"] = id
		}
	}
	emit(e)
}

func wallUs() int64 { return time.Now().UnixMicro() }

func agentVersion() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/libp2p/go-libp2p" {
				v = strings.TrimPrefix(d.Version, "v")
			}
		}
	}
	return "go-libp2p/" + v + " (microp2p interop peer)"
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

func connInfo(c network.Conn) obj {
	dir := "inbound"
	if c.Stat().Direction == network.DirOutbound {
		dir = "outbound"
	}
	addr := c.RemoteMultiaddr().String()
	if !strings.Contains(addr, "/p2p/") || isCircuit(c.RemoteMultiaddr()) {
		addr += "/p2p/" + c.RemotePeer().String()
	}
	o := obj{"peer": c.RemotePeer().String(), "addr": addr, "direction": dir, "id": c.ID()}
	if isCircuit(c.RemoteMultiaddr()) || c.Stat().Limited {
		o["relayed"] = true
	}
	return o
}

func withEvent(name string, o obj) obj {
	o["event"] = name
	return o
}

func addrStrings(as []ma.Multiaddr) []string {
	r := make([]string, 0, len(as))
	for _, a := range as {
		r = append(r, a.String())
	}
	return r
}

// --- gossipsub wire counters and mesh view (the router keeps its mesh private) -------------------

type peerWire struct {
	MsgsSent      int `json:"msgsSent"`
	IdontwantSent int `json:"idontwantSent"`
	IdontwantRecv int `json:"idontwantRecv"`
	Duplicates    int `json:"duplicates"`
}

type tracer struct {
	mu       sync.Mutex
	wire     peerWire
	peers    map[peer.ID]*peerWire
	mesh     map[string]map[peer.ID]bool
	outbound map[peer.ID]protocol.ID
}

func newTracer() *tracer {
	return &tracer{peers: map[peer.ID]*peerWire{}, mesh: map[string]map[peer.ID]bool{}, outbound: map[peer.ID]protocol.ID{}}
}

func (t *tracer) peer(p peer.ID) *peerWire {
	w := t.peers[p]
	if w == nil {
		w = &peerWire{}
		t.peers[p] = w
	}
	return w
}

func (t *tracer) OnNewOutboundStream(p peer.ID, proto protocol.ID) {
	t.mu.Lock()
	t.outbound[p] = proto
	t.mu.Unlock()
}
func (t *tracer) OnClosedOutboundStream(p peer.ID) {
	t.mu.Lock()
	delete(t.outbound, p)
	for _, m := range t.mesh {
		delete(m, p)
	}
	t.mu.Unlock()
}
func (t *tracer) Join(topic string)  {}
func (t *tracer) Leave(topic string) {}
func (t *tracer) Graft(p peer.ID, topic string) {
	t.mu.Lock()
	if t.mesh[topic] == nil {
		t.mesh[topic] = map[peer.ID]bool{}
	}
	t.mesh[topic][p] = true
	t.mu.Unlock()
	emit(obj{"event": "gossip:graft", "peer": p.String(), "topic": topic})
}
func (t *tracer) Prune(p peer.ID, topic string) {
	t.mu.Lock()
	delete(t.mesh[topic], p)
	t.mu.Unlock()
	emit(obj{"event": "gossip:prune", "peer": p.String(), "topic": topic})
}
func (t *tracer) ValidateMessage(msg *pubsub.Message)                  {}
func (t *tracer) DeliverMessage(msg *pubsub.Message)                   {}
func (t *tracer) RejectMessage(msg *pubsub.Message, reason string)     {}
func (t *tracer) ThrottlePeer(p peer.ID)                               {}
func (t *tracer) RecvRPC(rpc *pubsub.RPC)                              {}
func (t *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *tracer) DropRPC(rpc *pubsub.RPC, p peer.ID)                   {}
func (t *tracer) UndeliverableMessage(msg *pubsub.Message)             {}
func (t *tracer) DuplicateMessage(msg *pubsub.Message) {
	t.mu.Lock()
	t.wire.Duplicates++
	t.peer(msg.ReceivedFrom).Duplicates++
	t.mu.Unlock()
}
func (t *tracer) SendRPC(rpc *pubsub.RPC, p peer.ID) {
	n := len(rpc.GetPublish())
	d := 0
	for _, x := range rpc.GetControl().GetIdontwant() {
		d += len(x.GetMessageIDs())
	}
	t.mu.Lock()
	w := t.peer(p)
	w.MsgsSent += n
	t.wire.MsgsSent += n
	w.IdontwantSent += d
	t.wire.IdontwantSent += d
	t.mu.Unlock()
}

// inspect sees every RPC received, with its sender (the raw tracer's RecvRPC hides the sender).
func (t *tracer) inspect(from peer.ID, rpc *pubsub.RPC) error {
	d := 0
	for _, x := range rpc.GetControl().GetIdontwant() {
		d += len(x.GetMessageIDs())
	}
	if d > 0 {
		t.mu.Lock()
		t.peer(from).IdontwantRecv += d
		t.wire.IdontwantRecv += d
		t.mu.Unlock()
	}
	return nil
}

func (t *tracer) snapshot() obj {
	t.mu.Lock()
	defer t.mu.Unlock()
	peers := obj{}
	for p, w := range t.peers {
		peers[p.String()] = *w
	}
	return obj{"msgsSent": t.wire.MsgsSent, "idontwantSent": t.wire.IdontwantSent,
		"idontwantRecv": t.wire.IdontwantRecv, "duplicates": t.wire.Duplicates, "peers": peers}
}

func (t *tracer) meshPeers(topic string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := []string{}
	for p := range t.mesh[topic] {
		r = append(r, p.String())
	}
	sort.Strings(r)
	return r
}

func (t *tracer) hasOutbound(p peer.ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.outbound[p]
	return ok
}

// --- the peer ----------------------------------------------------------------------------------

type benchState struct {
	topic     string
	want, got int
	lat       []int64
	firstSent int64
	lastRecv  int64
	done      chan struct{}
	closed    bool
}

type peerNode struct {
	opts   *options
	ctx    context.Context
	cancel context.CancelFunc
	h      host.Host
	ps     *pubsub.PubSub
	tr     *tracer
	kad    *dht.IpfsDHT

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	subs   map[string]*pubsub.Subscription
	bench  *benchState

	pubMu sync.Mutex // publishes go out one after another, in the order asked for
}

func (n *peerNode) topic(name string) (*pubsub.Topic, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.topics[name]; t != nil {
		return t, nil
	}
	t, err := n.ps.Join(name)
	if err != nil {
		return nil, err
	}
	n.topics[name] = t
	return t, nil
}

func (n *peerNode) subscribe(name string) error {
	t, err := n.topic(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	if n.subs[name] != nil {
		n.mu.Unlock()
		return nil
	}
	sub, err := t.Subscribe(pubsub.WithBufferSize(pubsubQueueSize))
	if err != nil {
		n.mu.Unlock()
		return err
	}
	n.subs[name] = sub
	n.mu.Unlock()
	if evh, err := t.EventHandler(); err == nil {
		go func() {
			for {
				ev, err := evh.NextPeerEvent(n.ctx)
				if err != nil {
					return
				}
				emit(obj{"event": "subscription-change", "peer": ev.Peer.String(), "topic": name, "subscribe": ev.Type == pubsub.PeerJoin})
			}
		}()
	}
	go n.deliver(name, sub)
	return nil
}

func (n *peerNode) deliver(name string, sub *pubsub.Subscription) {
	self := n.h.ID()
	for {
		m, err := sub.Next(n.ctx)
		if err != nil {
			return
		}
		// The contract (and js) has emitSelf off; go hands our own messages to our subscription.
		if m.ReceivedFrom == self {
			continue
		}
		data := m.GetData()
		n.mu.Lock()
		b := n.bench
		if b != nil && b.topic == m.GetTopic() && len(data) >= benchHeader && string(data[:4]) == string(benchMagic) {
			// Counted silently: a JSON line per message would be what the bench measures.
			now := wallUs()
			sent := int64(binary.BigEndian.Uint64(data[8:16]))
			if b.firstSent == 0 || sent < b.firstSent {
				b.firstSent = sent
			}
			b.lastRecv = now
			if len(b.lat) < benchMaxCount {
				b.lat = append(b.lat, now-sent)
			}
			b.got++
			if b.got >= b.want && !b.closed {
				b.closed = true
				close(b.done)
			}
			n.mu.Unlock()
			continue
		}
		n.mu.Unlock()
		ev := obj{"event": "gossip:message", "topic": m.GetTopic(), "from": nil, "data": strings.ToValidUTF8(string(data), "\uFFFD"),
			"dataHex": hex.EncodeToString(data), "seqno": nil, "signature": nil}
		if len(m.GetFrom()) > 0 {
			ev["from"] = m.GetFrom().String()
		}
		if len(m.GetSeqno()) > 0 {
			ev["seqno"] = hex.EncodeToString(m.GetSeqno())
		}
		if len(m.GetSignature()) > 0 {
			// The author's signature as go received (and verified) it, so a test can re-check it.
			ev["signature"] = hex.EncodeToString(m.GetSignature())
		}
		emit(ev)
	}
}

// recipients: peers subscribed to the topic to which the router has an outbound stream (go knows
// a subscriber before its stream is up, and a publish then would reach nobody).
func (n *peerNode) recipients(name string) []string {
	r := []string{}
	for _, p := range n.ps.ListPeers(name) {
		if n.tr.hasOutbound(p) {
			r = append(r, p.String())
		}
	}
	sort.Strings(r)
	return r
}

func (n *peerNode) publishWhenSubscribed(name string, data []byte, text any, wait time.Duration) {
	n.pubMu.Lock()
	defer n.pubMu.Unlock()
	deadline := time.Now().Add(wait)
	t, err := n.topic(name)
	if err != nil {
		emit(obj{"event": "error", "where": "publish", "topic": name, "message": err.Error()})
		return
	}
	for {
		rec := n.recipients(name)
		if len(rec) > 0 {
			ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
			err := t.Publish(ctx, data)
			cancel()
			if err != nil {
				emit(obj{"event": "error", "where": "publish", "topic": name, "message": err.Error()})
				return
			}
			emit(obj{"event": "published", "topic": name, "data": text, "recipients": rec})
			return
		}
		if time.Now().After(deadline) {
			emit(obj{"event": "error", "where": "publish", "topic": name,
				"message": fmt.Sprintf("no peer subscribed to %s within %d ms", name, wait.Milliseconds())})
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(pubRetry):
		}
	}
}

func str(cmd obj, k string) string {
	s, _ := cmd[k].(string)
	return s
}

func num(cmd obj, k string, def int) int {
	if f, ok := cmd[k].(float64); ok {
		return int(f)
	}
	return def
}

func (n *peerNode) connect(ctx context.Context, addr string) (peer.ID, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return "", err
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := n.h.Connect(network.WithAllowLimitedConn(ctx, "interop"), *ai); err != nil {
		return "", err
	}
	return ai.ID, nil
}

func (n *peerNode) target(cmd obj) (peer.ID, error) {
	if a := str(cmd, "addr"); a != "" {
		return n.connect(n.ctx, a)
	}
	if p := str(cmd, "peer"); p != "" {
		return peer.Decode(p)
	}
	return "", errors.New(`command needs "addr" or "peer"`)
}

func (n *peerNode) echoOnce(p peer.ID, size int) (int, error) {
	ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(n.ctx, "interop"), echoTimeout)
	defer cancel()
	s, err := n.h.NewStream(ctx, p, echoProtocol)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(echoTimeout))
	payload := make([]byte, size)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	werr := make(chan error, 1)
	go func() {
		for off := 0; off < size; off += echoChunk {
			end := min(size, off+echoChunk)
			if _, err := s.Write(payload[off:end]); err != nil {
				werr <- err
				return
			}
		}
		werr <- s.CloseWrite()
	}()
	h := sha256.New()
	got, rerr := io.Copy(h, s)
	if err := <-werr; err != nil {
		s.Reset()
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if int(got) != size || string(h.Sum(nil)) != string(want[:]) {
		return 0, fmt.Errorf("echo mismatch: sent %d bytes, got %d", size, got)
	}
	return int(got), nil
}

func echoServe(s network.Stream) {
	s.SetDeadline(time.Now().Add(echoTimeout))
	if _, err := io.Copy(s, s); err != nil {
		s.Reset()
		return
	}
	s.CloseWrite()
	s.Close()
}

// parseKey: a DHT key given as a peer id or a CID (its multihash is the key).
func parseKey(k string) (string, error) {
	if p, err := peer.Decode(k); err == nil {
		return string(p), nil
	}
	c, err := cid.Decode(k)
	if err != nil {
		return "", fmt.Errorf("key %q is neither a peer id nor a CID", k)
	}
	return string(c.Hash()), nil
}

func parseCid(k string) (cid.Cid, error) {
	if c, err := cid.Decode(k); err == nil {
		return c, nil
	}
	if p, err := peer.Decode(k); err == nil {
		return peer.ToCid(p), nil
	}
	return cid.Undef, fmt.Errorf("key %q is not a CID", k)
}

func echoID(cmd obj, o obj) obj {
	if id, ok := cmd["id"]; ok {
		o["id"] = id
	}
	return o
}

// needDHT also waits (bounded) for a first routing-table entry: go adds a peer only after its
// identify completed, asynchronously, so a query right after a dial would otherwise find no peer
// (js waits the same way: allowQueryWithZeroPeers is off).
func (n *peerNode) needDHT() error {
	if n.kad == nil {
		return errors.New("no DHT: start with --dht client|server")
	}
	deadline := time.Now().Add(dhtTableWait)
	for n.kad.RoutingTable().Size() == 0 && time.Now().Before(deadline) {
		time.Sleep(pubRetry)
	}
	return nil
}

func (n *peerNode) run(cmd obj) error {
	name := str(cmd, "cmd")
	switch name {
	case "dial":
		p, err := n.connect(n.ctx, str(cmd, "addr"))
		if err != nil {
			return err
		}
		conns := n.h.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			return errors.New("connected, but no connection left")
		}
		emit(echoID(cmd, withEvent("dialed", connInfo(conns[0]))))
	case "ping":
		p, err := n.target(cmd)
		if err != nil {
			return err
		}
		count := num(cmd, "count", 1)
		ctx, cancel := context.WithTimeout(network.WithAllowLimitedConn(n.ctx, "interop"), dialTimeout*time.Duration(max(1, count)))
		defer cancel()
		ch := ping.Ping(ctx, n.h, p)
		for i := 0; i < count; i++ {
			r, ok := <-ch
			if !ok {
				return errors.New("ping: " + ctx.Err().Error())
			}
			if r.Error != nil {
				return r.Error
			}
			emit(echoID(cmd, obj{"event": "ping", "peer": p.String(), "rtt": float64(r.RTT.Microseconds()) / 1000}))
		}
	case "publish":
		var data []byte
		var text any
		if h := str(cmd, "dataHex"); h != "" {
			b, err := hex.DecodeString(h)
			if err != nil {
				return err
			}
			data, text = b, h
		} else {
			data, text = []byte(str(cmd, "data")), str(cmd, "data")
		}
		n.publishWhenSubscribed(str(cmd, "topic"), data, text, time.Duration(num(cmd, "wait_ms", n.opts.pubWaitMs))*time.Millisecond)
	case "subscribe":
		if err := n.subscribe(str(cmd, "topic")); err != nil {
			return err
		}
		emit(obj{"event": "subscribed", "topic": str(cmd, "topic")})
	case "unsubscribe":
		n.mu.Lock()
		if s := n.subs[str(cmd, "topic")]; s != nil {
			s.Cancel()
			delete(n.subs, str(cmd, "topic"))
		}
		n.mu.Unlock()
		emit(obj{"event": "unsubscribed", "topic": str(cmd, "topic")})
	case "topic-peers":
		t := str(cmd, "topic")
		peers := []string{}
		for _, p := range n.ps.ListPeers(t) {
			peers = append(peers, p.String())
		}
		sort.Strings(peers)
		emit(obj{"event": "topic-peers", "topic": t, "peers": peers, "mesh": n.tr.meshPeers(t)})
	case "stats":
		emit(obj{"event": "stats", "wire": n.tr.snapshot()})
	case "publish-many":
		t, err := n.topic(str(cmd, "topic"))
		if err != nil {
			return err
		}
		count := min(num(cmd, "count", 1), benchMaxCount)
		size := max(num(cmd, "size", 100), benchHeader)
		interval := time.Duration(num(cmd, "interval_ms", 0)) * time.Millisecond
		t0 := time.Now()
		failed := 0
		for i := 0; i < count; i++ {
			if interval > 0 {
				if w := time.Duration(i)*interval - time.Since(t0); w > 0 {
					time.Sleep(w)
				}
			}
			data := make([]byte, size)
			for j := range data {
				data[j] = 0x5a
			}
			copy(data, benchMagic)
			binary.BigEndian.PutUint32(data[4:8], uint32(i))
			binary.BigEndian.PutUint64(data[8:16], uint64(wallUs()))
			if err := t.Publish(n.ctx, data); err != nil {
				failed++
			}
		}
		emit(obj{"event": "published-many", "topic": str(cmd, "topic"), "count": count, "failed": failed,
			"ms": time.Since(t0).Milliseconds(), "recipients": len(n.ps.ListPeers(str(cmd, "topic")))})
	case "bench-recv":
		want := min(num(cmd, "count", 1), benchMaxCount)
		wait := min(time.Duration(num(cmd, "timeout_ms", 60000))*time.Millisecond, benchMaxWait)
		b := &benchState{topic: str(cmd, "topic"), want: want, done: make(chan struct{})}
		n.mu.Lock()
		n.bench = b
		n.mu.Unlock()
		emit(obj{"event": "bench-armed", "topic": b.topic, "count": want})
		select {
		case <-b.done:
		case <-time.After(wait):
		case <-n.ctx.Done():
		}
		n.mu.Lock()
		n.bench = nil
		res := benchSummary(b)
		n.mu.Unlock()
		emit(res)
	case "peers":
		list := []obj{}
		for _, c := range n.h.Network().Conns() {
			list = append(list, connInfo(c))
		}
		emit(obj{"event": "peers", "peers": list})
	case "hangup":
		p, err := n.target(cmd)
		if err != nil {
			return err
		}
		if err := n.h.Network().ClosePeer(p); err != nil {
			return err
		}
		emit(obj{"event": "hangup", "peer": p.String()})
	case "echo":
		p, err := n.target(cmd)
		if err != nil {
			return err
		}
		streams := max(1, min(echoMaxStreams, num(cmd, "streams", 1)))
		size := num(cmd, "size", 1024)
		t0 := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		total := 0
		var first error
		for i := 0; i < streams; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := n.echoOnce(p, size)
				mu.Lock()
				defer mu.Unlock()
				total += got
				if err != nil && first == nil {
					first = err
				}
			}()
		}
		wg.Wait()
		ev := obj{"event": "echo", "ok": first == nil, "peer": p.String(), "streams": streams, "ms": time.Since(t0).Milliseconds()}
		if first != nil {
			ev["error"] = first.Error()
		} else {
			ev["bytes"] = total
		}
		emit(ev)
	case "find_peer":
		if err := n.needDHT(); err != nil {
			return err
		}
		p, err := peer.Decode(str(cmd, "peer"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(n.ctx, dhtQueryTimeout)
		defer cancel()
		ai, err := n.kad.FindPeer(ctx, p)
		ev := obj{"event": "dht:find_peer", "peer": p.String(), "found": err == nil, "addrs": addrStrings(ai.Addrs)}
		if err != nil {
			ev["error"] = err.Error()
		}
		emit(echoID(cmd, ev))
	case "get_closest_peers":
		if err := n.needDHT(); err != nil {
			return err
		}
		key, err := parseKey(str(cmd, "key"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(n.ctx, dhtQueryTimeout)
		defer cancel()
		ps, err := n.kad.GetClosestPeers(ctx, key)
		ids := []string{}
		for _, p := range ps {
			ids = append(ids, p.String())
		}
		ev := obj{"event": "dht:closest_peers", "key": str(cmd, "key"), "peers": ids}
		if err != nil {
			ev["error"] = err.Error()
		}
		emit(echoID(cmd, ev))
	case "provide":
		if err := n.needDHT(); err != nil {
			return err
		}
		c, err := parseCid(str(cmd, "key"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(n.ctx, dhtQueryTimeout)
		defer cancel()
		// go's Provide does not say how many peers took the record: it writes ADD_PROVIDER to the
		// closest peers of its lookup, so report the size of that set (0 when the provide failed).
		closest, _ := n.kad.GetClosestPeers(ctx, string(c.Hash()))
		err = n.kad.Provide(ctx, c, true)
		cnt := len(closest)
		ev := obj{"event": "dht:provided", "key": str(cmd, "key")}
		if err != nil {
			cnt = 0
			ev["error"] = err.Error()
		}
		ev["peers"] = cnt
		emit(echoID(cmd, ev))
	case "find_providers":
		if err := n.needDHT(); err != nil {
			return err
		}
		c, err := parseCid(str(cmd, "key"))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(n.ctx, dhtQueryTimeout)
		defer cancel()
		provs := []obj{}
		for ai := range n.kad.FindProvidersAsync(ctx, c, num(cmd, "count", 20)) {
			provs = append(provs, obj{"id": ai.ID.String(), "addrs": addrStrings(ai.Addrs)})
		}
		emit(echoID(cmd, obj{"event": "dht:providers", "key": str(cmd, "key"), "providers": provs}))
	case "reserve":
		return n.reserve(str(cmd, "addr"))
	case "stop":
		n.shutdown()
	default:
		emit(obj{"event": "error", "where": "stdin", "cmd": name, "message": "unknown command"})
	}
	return nil
}

func benchSummary(b *benchState) obj {
	lat := append([]int64(nil), b.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(q float64) any {
		if len(lat) == 0 {
			return nil
		}
		return float64(lat[int(q*float64(len(lat)-1)+0.5)]) / 1000
	}
	o := obj{"event": "bench-result", "topic": b.topic, "want": b.want, "received": b.got, "spanUs": nil, "rate": nil,
		"p50Ms": pct(0.5), "p99Ms": pct(0.99), "maxMs": nil}
	if len(lat) > 0 {
		o["maxMs"] = float64(lat[len(lat)-1]) / 1000
	}
	if b.got > 0 {
		span := b.lastRecv - b.firstSent
		o["spanUs"] = span
		if span > 0 {
			o["rate"] = float64(b.got) * 1e6 / float64(span)
		}
	}
	return o
}

// reserve takes a slot on a circuit relay v2 (`--listen <relay>/p2p/R/p2p-circuit`) and keeps it
// refreshed; relayed connections then arrive through the relay.
func (n *peerNode) reserve(relayAddr string) error {
	a, err := ma.NewMultiaddr(strings.TrimSuffix(strings.TrimSuffix(relayAddr, "/"), "/p2p-circuit"))
	if err != nil {
		return err
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return err
	}
	once := func() (time.Time, error) {
		ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
		defer cancel()
		if err := n.h.Connect(ctx, *ai); err != nil {
			return time.Time{}, err
		}
		r, err := rclient.Reserve(ctx, n.h, *ai)
		if err != nil {
			return time.Time{}, err
		}
		base := ai.Addrs[0].String() + "/p2p/" + ai.ID.String() + "/p2p-circuit/p2p/" + n.h.ID().String()
		emit(obj{"event": "relay:reservation", "relay": ai.ID.String(), "addrs": []string{base},
			"expire": r.Expiration.Unix(), "limitDurationS": int(r.LimitDuration.Seconds()), "limitData": r.LimitData})
		return r.Expiration, nil
	}
	exp, err := once()
	if err != nil {
		return err
	}
	go func() {
		for {
			wait := time.Until(exp) - relayRefreshMargin
			if wait < time.Second {
				wait = time.Second
			}
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(wait):
			}
			if e, err := once(); err != nil {
				emitError("relay", nil, err)
			} else {
				exp = e
			}
		}
	}()
	return nil
}

var stopOnce sync.Once

func (n *peerNode) shutdown() {
	stopOnce.Do(func() {
		go func() {
			time.Sleep(stopTimeout)
			emit(obj{"event": "stopped", "forced": true})
			os.Exit(0)
		}()
		n.cancel()
		if n.kad != nil {
			n.kad.Close()
		}
		if err := n.h.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "go_peer: stop: %v\n", err)
		}
		emit(obj{"event": "stopped"})
		os.Exit(0)
	})
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bench" {
		benchMain(os.Args[2:])
		return
	}
	opts := parseArgs(os.Args[1:])
	if opts.printID {
		if opts.seed == "" {
			usage("--print-id needs --seed")
		}
		id, err := peer.IDFromPrivateKey(privateKeyFor(opts.seed))
		if err != nil {
			usage(err.Error())
		}
		fmt.Println(id.String())
		return
	}
	var listen, circuits []string
	for _, a := range opts.listen {
		if strings.Contains(a, "/p2p-circuit") {
			circuits = append(circuits, a)
		} else {
			listen = append(listen, a)
		}
	}
	if len(opts.listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	hostOpts := []libp2p.Option{
		libp2p.Identity(privateKeyFor(opts.seed)),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent(agentVersion()),
		// go-libp2p sends an empty protocolVersion unless told; js, py, rust and microp2p send this.
		libp2p.ProtocolVersion("ipfs/0.1.0"),
		// A test peer: no resource limits (50 streams x 1 MiB of echo would hit go's defaults, which
		// size themselves to the machine), no prometheus registry.
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
		libp2p.EnableRelay(),
	}
	if len(listen) > 0 {
		hostOpts = append(hostOpts, libp2p.ListenAddrStrings(listen...))
	} else {
		hostOpts = append(hostOpts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_peer: %v\n", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Signal handlers before "started": a test may send SIGTERM as soon as it sees that line.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	n := &peerNode{opts: opts, ctx: ctx, cancel: cancel, h: h, tr: newTracer(), topics: map[string]*pubsub.Topic{}, subs: map[string]*pubsub.Subscription{}}

	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    func(_ network.Network, c network.Conn) { emit(withEvent("connection:open", connInfo(c))) },
		DisconnectedF: func(_ network.Network, c network.Conn) { emit(withEvent("connection:close", connInfo(c))) },
	})
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_peer: %v\n", err)
		os.Exit(1)
	}
	go func() {
		for e := range sub.Out() {
			r := e.(event.EvtPeerIdentificationCompleted)
			protos := []string{}
			for _, p := range r.Protocols {
				protos = append(protos, string(p))
			}
			var observed any
			if r.ObservedAddr != nil {
				observed = r.ObservedAddr.String()
			}
			emit(obj{"event": "identify", "peer": r.Peer.String(), "protocols": protos, "agentVersion": r.AgentVersion,
				"protocolVersion": r.ProtocolVersion, "listenAddrs": addrStrings(r.ListenAddrs), "observedAddr": observed})
		}
	}()

	h.SetStreamHandler(echoProtocol, echoServe)

	params := pubsub.DefaultGossipSubParams()
	params.HeartbeatInterval = time.Second
	psOpts := []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithGossipSubParams(params),
		pubsub.WithRawTracer(n.tr),
		pubsub.WithAppSpecificRpcInspector(n.tr.inspect),
		pubsub.WithPeerOutboundQueueSize(pubsubQueueSize),
		pubsub.WithValidateQueueSize(pubsubQueueSize),
	}
	if len(opts.gossipProtocols) > 0 {
		protos := []protocol.ID{}
		for _, p := range opts.gossipProtocols {
			protos = append(protos, protocol.ID(p))
		}
		psOpts = append(psOpts, pubsub.WithGossipSubProtocols(protos, pubsub.GossipSubDefaultFeatures))
	}
	n.ps, err = pubsub.NewGossipSub(ctx, h, psOpts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go_peer: gossipsub: %v\n", err)
		os.Exit(1)
	}

	if opts.dhtMode != "" {
		mode := dht.ModeClient
		if opts.dhtMode == "server" {
			// go defaults to ModeAuto, which stays a client on loopback (no public address).
			mode = dht.ModeServer
		}
		dopts := []dht.Option{dht.Mode(mode)}
		if opts.dhtPrefix != "" {
			dopts = append(dopts, dht.ProtocolPrefix(protocol.ID(opts.dhtPrefix)))
		}
		if opts.dhtProtocol != "" {
			dopts = append(dopts, dht.V1ProtocolOverride(protocol.ID(opts.dhtProtocol)))
		}
		n.kad, err = dht.New(h, dopts...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "go_peer: dht: %v\n", err)
			os.Exit(1)
		}
	}
	if opts.relayHop {
		rc := relayv2.DefaultResources()
		// Every test peer dials from 127.0.0.1: go's 8 reservations per IP would limit a test fleet.
		rc.MaxReservationsPerIP = rc.MaxReservations
		rc.MaxReservationsPerASN = rc.MaxReservations
		_, err := relayv2.New(h, relayv2.WithResources(rc),
			// go vouches only for public addresses in reservations (manet.IsPublicAddr); loopback
			// tests need the 127.0.0.1 addresses in them.
			relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
		if err != nil {
			fmt.Fprintf(os.Stderr, "go_peer: relay: %v\n", err)
			os.Exit(1)
		}
	}

	for _, t := range opts.sub {
		if err := n.subscribe(t); err != nil {
			fmt.Fprintf(os.Stderr, "go_peer: subscribe %s: %v\n", t, err)
			os.Exit(1)
		}
	}
	addrs := []string{}
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String()+"/p2p/"+h.ID().String())
	}
	go func() {
		<-sigs
		n.shutdown()
	}()
	emit(obj{"event": "started", "peerId": h.ID().String(), "addrs": addrs})

	runCommand := func(line string) {
		var cmd obj
		if err := json.Unmarshal([]byte(line), &cmd); err != nil {
			emit(obj{"event": "error", "where": "stdin", "message": "bad JSON: " + err.Error()})
			return
		}
		if err := n.run(cmd); err != nil {
			emitError(str(cmd, "cmd"), cmd, err)
		}
	}
	for _, c := range circuits {
		if err := n.reserve(c); err != nil {
			emitError("relay", nil, err)
		}
	}
	for _, a := range opts.dial {
		b, _ := json.Marshal(obj{"cmd": "dial", "addr": a})
		runCommand(string(b))
	}
	go func() {
		// Publishes run in order, one after another, like the command line lists them.
		for _, p := range opts.pub {
			n.publishWhenSubscribed(p[0], []byte(p[1]), p[1], time.Duration(opts.pubWaitMs)*time.Millisecond)
		}
	}()

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64*1024), stdinLineMax)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		// Commands run concurrently, as in js (an echo does not hold up a ping).
		go runCommand(line)
	}
	n.shutdown()
}
