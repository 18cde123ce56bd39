// Seals a circuit relay v2 reservation voucher with go-libp2p's own code (core/record.Seal of
// p2p/protocol/circuitv2/proto.ReservationVoucher), or opens one with record.ConsumeEnvelope:
// the go vector microp2p's tests check (tests/core/test_relay_voucher.py).
//
//	go run . seal RELAY_SEED_HEX64 PEER_SEED_HEX64 EXPIRATION   -> voucher hex
//	go run . open VOUCHER_HEX                                   -> relay peer expiration
package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
)

func key(seedHex string) crypto.PrivKey {
	seed, err := hex.DecodeString(seedHex)
	if err != nil || len(seed) != 32 {
		fail("seed must be 64 hex digits")
	}
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(ed25519.NewKeyFromSeed(seed)[:32]))
	if err != nil {
		fail(err.Error())
	}
	return k
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "go_voucher:", msg)
	os.Exit(2)
}

func main() {
	if len(os.Args) == 5 && os.Args[1] == "seal" {
		rk := key(os.Args[2])
		pk := key(os.Args[3])
		rid, _ := peer.IDFromPrivateKey(rk)
		pid, _ := peer.IDFromPrivateKey(pk)
		exp, err := strconv.ParseInt(os.Args[4], 10, 64)
		if err != nil {
			fail(err.Error())
		}
		env, err := record.Seal(&proto.ReservationVoucher{Relay: rid, Peer: pid, Expiration: time.Unix(exp, 0)}, rk)
		if err != nil {
			fail(err.Error())
		}
		blob, err := env.Marshal()
		if err != nil {
			fail(err.Error())
		}
		fmt.Println(hex.EncodeToString(blob))
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "open" {
		blob, err := hex.DecodeString(os.Args[2])
		if err != nil {
			fail(err.Error())
		}
		_, rec, err := record.ConsumeEnvelope(blob, proto.RecordDomain)
		if err != nil {
			fail(err.Error())
		}
		v := rec.(*proto.ReservationVoucher)
		fmt.Println(v.Relay, v.Peer, v.Expiration.Unix())
		return
	}
	fail("usage: seal RELAY_SEED PEER_SEED EXPIRATION | open HEX")
}
