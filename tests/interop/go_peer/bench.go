package main

// Bench mode (`microp2p-go-peer bench ...`): the same arguments and JSON output as
// bench/peers/mp_bench.py, js_bench.mjs and py_bench.py, for bench/handshakes.py and bench/yamux.py.
//
//	bench serve [LISTEN_MA]    listen (echo + sink served), print {"event":"listening",...},
//	                           run until stdin EOF or SIGTERM
//	bench conns ADDR N [WARMUP] N sequential connections: dial (mss + Noise + yamux), wait for
//	                           our identify of the server, close; one JSON line
//	bench push ADDR MIB        one /microp2p/bench/sink/1.0.0 stream: write MIB MiB, close, wait
//	                           for the byte count; prints MB/s
//
// The host is minimal (tcp, noise, yamux, identify): no pubsub, ping or DHT, so the figures are
// go's connection path alone.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	benchSink           = protocol.ID("/microp2p/bench/sink/1.0.0")
	benchChunk          = 65536
	benchIdentifyWait   = 10 * time.Second
	benchStreamDeadline = 60 * time.Second // a stalled pair fails within a minute
)

func benchOut(o obj) {
	b, _ := json.Marshal(o)
	os.Stdout.Write(append(b, '\n'))
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func benchHost(listen string) host.Host {
	opts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.UserAgent(agentVersion()),
		libp2p.ProtocolVersion("ipfs/0.1.0"),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.DisableRelay(),
	}
	if listen != "" {
		opts = append(opts, libp2p.ListenAddrStrings(listen))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		usage("bench: " + err.Error())
	}
	return h
}

func sinkServe(s network.Stream) {
	s.SetDeadline(time.Now().Add(benchStreamDeadline))
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return
	}
	s.Write([]byte(strconv.FormatInt(n, 10)))
	s.CloseWrite()
	s.Close()
}

func percentile(sorted []float64, p float64) any {
	if len(sorted) == 0 {
		return nil
	}
	return sorted[int(float64(len(sorted)-1)*p/100+0.5)]
}

func benchMain(args []string) {
	if len(args) == 0 {
		usage("bench serve [MA] | conns ADDR N [WARMUP] | push ADDR MIB")
	}
	switch args[0] {
	case "serve":
		listen := "/ip4/127.0.0.1/tcp/0"
		if len(args) > 1 {
			listen = args[1]
		}
		h := benchHost(listen)
		h.SetStreamHandler(benchSink, sinkServe)
		h.SetStreamHandler(echoProtocol, echoServe)
		benchOut(obj{"event": "listening", "addr": h.Addrs()[0].String() + "/p2p/" + h.ID().String(), "peer": h.ID().String()})
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
		go func() { io.Copy(io.Discard, os.Stdin); sigs <- syscall.SIGTERM }()
		<-sigs
		h.Close()
	case "conns":
		if len(args) < 3 {
			usage("bench conns ADDR N [WARMUP]")
		}
		count, _ := strconv.Atoi(args[2])
		warmup := 0
		if len(args) > 3 {
			warmup, _ = strconv.Atoi(args[3])
		}
		benchConns(args[1], count, warmup)
	case "push":
		if len(args) < 3 {
			usage("bench push ADDR MIB")
		}
		mib, _ := strconv.Atoi(args[2])
		benchPush(args[1], mib)
	default:
		usage("unknown bench mode " + args[0])
	}
}

func addrInfo(addr string) peer.AddrInfo {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		usage(err.Error())
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		usage(err.Error())
	}
	return *ai
}

func benchConns(addr string, count, warmup int) {
	h := benchHost("")
	ai := addrInfo(addr)
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		usage(err.Error())
	}
	lat, dialLat := []float64{}, []float64{}
	errs := []string{}
	one := func(record bool) {
		ctx, cancel := context.WithTimeout(context.Background(), benchIdentifyWait)
		defer cancel()
		t := time.Now()
		err := h.Connect(ctx, ai)
		tDial := time.Since(t)
		if err == nil {
		wait:
			for {
				select {
				case e := <-sub.Out():
					if e.(event.EvtPeerIdentificationCompleted).Peer == ai.ID {
						break wait
					}
				case <-ctx.Done():
					err = fmt.Errorf("identify timed out")
					break wait
				}
			}
		}
		if record {
			if err == nil {
				lat = append(lat, float64(time.Since(t).Microseconds())/1000)
				dialLat = append(dialLat, float64(tDial.Microseconds())/1000)
			} else if len(errs) < 3 {
				errs = append(errs, err.Error())
			}
		}
		h.Network().ClosePeer(ai.ID)
		// The next dial must be a new connection, not go's cached one: wait until it is gone.
		for i := 0; i < 1000 && h.Network().Connectedness(ai.ID) == network.Connected; i++ {
			time.Sleep(100 * time.Microsecond)
		}
		h.Peerstore().RemovePeer(ai.ID)
	}
	for i := 0; i < warmup; i++ {
		one(false)
	}
	cpu0 := cpuSeconds()
	t0 := time.Now()
	for i := 0; i < count; i++ {
		one(true)
	}
	total := time.Since(t0).Seconds()
	cpu := cpuSeconds() - cpu0
	sorted := append([]float64(nil), lat...)
	sort.Float64s(sorted)
	sort.Float64s(dialLat)
	var mean any
	if len(lat) > 0 {
		s := 0.0
		for _, x := range lat {
			s += x
		}
		mean = s / float64(len(lat))
	}
	benchOut(obj{"impl": "go", "n": count, "ok": len(lat), "fail": count - len(lat), "errors": errs,
		"total_s": total, "cpu_s": cpu, "conns_per_s": float64(len(lat)) / total,
		"p50_ms": percentile(sorted, 50), "p99_ms": percentile(sorted, 99), "mean_ms": mean,
		"dial_p50_ms": percentile(dialLat, 50)})
	h.Close()
}

func benchPush(addr string, mib int) {
	h := benchHost("")
	ai := addrInfo(addr)
	ctx, cancel := context.WithTimeout(context.Background(), benchStreamDeadline)
	defer cancel()
	if err := h.Connect(ctx, ai); err != nil {
		benchOut(obj{"impl": "go", "error": err.Error()})
		return
	}
	size := mib * 1024 * 1024
	buf := make([]byte, benchChunk)
	t0 := time.Now()
	cpu0 := cpuSeconds()
	s, err := h.NewStream(ctx, ai.ID, benchSink)
	if err != nil {
		benchOut(obj{"impl": "go", "error": err.Error()})
		return
	}
	// Stream writes block on the peer's window and honour only the stream's deadline, not ctx.
	s.SetDeadline(time.Now().Add(benchStreamDeadline))
	for sent := 0; sent < size; sent += benchChunk {
		if _, err := s.Write(buf[:min(benchChunk, size-sent)]); err != nil {
			benchOut(obj{"impl": "go", "error": err.Error()})
			return
		}
	}
	s.CloseWrite()
	reply, err := io.ReadAll(s)
	el := time.Since(t0).Seconds()
	acked, _ := strconv.Atoi(strings.TrimSpace(string(reply)))
	o := obj{"impl": "go", "bytes": size, "acked": acked, "ok": err == nil && acked == size, "s": el,
		"cpu_s": cpuSeconds() - cpu0, "MBps": float64(size) / el / 1e6}
	if err != nil {
		o["error"] = err.Error()
	}
	benchOut(o)
	s.Close()
	h.Close()
}
