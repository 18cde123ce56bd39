"""Reservation vouchers across implementations, live: js-libp2p (@libp2p/circuit-relay-v2's
ReservationVoucherRecord + @libp2p/peer-record) and go-libp2p v0.51.0 (core/record +
circuitv2/proto) each seal one that microp2p opens and must reproduce byte for byte, and each
opens (signature, domain, payload type) a voucher microp2p sealed."""
import json
import os
import secrets
import subprocess
import sys
import time

from peers import ROOT, INTEROP_DIR, NODE

sys.path.insert(0, str(ROOT / "firmware"))
import microp2p_host  # noqa: E402,F401
from microp2p.proto.relay import voucher  # noqa: E402
from microp2p.identity.keys import Ed25519PrivateKey  # noqa: E402
from microp2p.identity.peerid import PeerId  # noqa: E402

GO_DIR = INTEROP_DIR / "go_voucher"
GO_TIMEOUT_S = 600   # first run downloads go-libp2p and compiles


def _case():
    rs, ps = secrets.token_hex(32), secrets.token_hex(32)
    exp = int(time.time()) + 3600
    rk = Ed25519PrivateKey.from_seed(bytes.fromhex(rs))
    pid = PeerId.from_public_key(Ed25519PrivateKey.from_seed(bytes.fromhex(ps)).public_key)
    return rs, ps, exp, rk, pid


def _check(theirs_hex, rk, pid, exp):
    blob = bytes.fromhex(theirs_hex)
    v = voucher.open_voucher(blob, PeerId.from_public_key(rk.public_key), pid, int(time.time()))
    assert v.expiration == exp
    assert voucher.seal(rk, pid, exp) == blob     # Ed25519 is deterministic: same bytes


def test_js_vouchers_both_ways():
    rs, ps, exp, rk, pid = _case()
    r = subprocess.run([NODE, str(INTEROP_DIR / "js_voucher.mjs"), "seal", rs, ps, str(exp)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    _check(json.loads(r.stdout)["voucher"], rk, pid, exp)
    ours = voucher.seal(rk, pid, exp + 1).hex()
    r = subprocess.run([NODE, str(INTEROP_DIR / "js_voucher.mjs"), "open", ours], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == {"relay": str(PeerId.from_public_key(rk.public_key)), "peer": str(pid),
                   "expiration": exp + 1, "payloadType": "0302"}, got


def test_go_vouchers_both_ways():
    rs, ps, exp, rk, pid = _case()
    env = dict(os.environ, GOFLAGS="-mod=mod")
    r = subprocess.run(["go", "run", ".", "seal", rs, ps, str(exp)], cwd=str(GO_DIR), capture_output=True,
                       text=True, timeout=GO_TIMEOUT_S, env=env)
    assert r.returncode == 0, r.stderr
    _check(r.stdout.strip(), rk, pid, exp)
    ours = voucher.seal(rk, pid, exp + 1).hex()
    r = subprocess.run(["go", "run", ".", "open", ours], cwd=str(GO_DIR), capture_output=True, text=True,
                       timeout=GO_TIMEOUT_S, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(PeerId.from_public_key(rk.public_key)), str(pid), str(exp + 1)], r.stdout
