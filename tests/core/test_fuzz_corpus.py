# Replays the fuzz corpus (tests/fuzz/corpus/<target>/: the seeds and every crash `make fuzz`
# found) through the portable fuzz targets, on CPython, the MicroPython unix port and the wasm
# port: each input must pass or end in a typed ProtocolError.
import os
import fuzz_targets


def _corpus_root():
    here = fuzz_targets.__file__
    i = here.rfind("/")
    core = here[:i] if i > 0 else "."
    return core + "/../fuzz/corpus"


def _inputs(name):
    d = _corpus_root() + "/" + name
    try:
        files = sorted(os.listdir(d))
    except OSError:
        return []
    out = []
    for f in files:
        if f.startswith("."):
            continue
        with open(d + "/" + f, "rb") as fh:
            out.append((f, fh.read()))
    return out


def _replay(name):
    items = _inputs(name)
    assert items, "no corpus for %s" % name
    bad = []
    for f, data in items:
        try:
            fuzz_targets.run(name, data)
        except Exception as e:  # anything but ProtocolError is a bug
            bad.append((f, repr(e)))
    assert not bad, (name, bad[:3])


def test_every_target_has_a_corpus():
    for name in fuzz_targets.TARGETS:
        assert _inputs(name), name


def test_varint():
    _replay("varint")


def test_protobuf():
    _replay("protobuf")


def test_multiaddr():
    _replay("multiaddr")


def test_cbor():
    _replay("cbor")


def test_mss():
    _replay("mss")


def test_noise():
    _replay("noise")


def test_yamux():
    _replay("yamux")


def test_identify():
    _replay("identify")


def test_gossipsub_rpc():
    _replay("gossipsub_rpc")


def test_serial_frame():
    _replay("serial_frame")


def test_serial_link():
    _replay("serial_link")


def test_kad():
    _replay("kad")
