#!/usr/bin/env python3
# `make fuzz`: coverage-guided fuzzing of every parser and machine with atheris (libFuzzer), one
# process per target, FUZZ_SECONDS each (default 60). Seeds: tests/fuzz/corpus/<target>/seed-*.
# New interesting inputs go to .fuzz-work/<target>/ (not committed); a crash, a slow input or an
# out-of-memory input is written to tests/fuzz/corpus/<target>/crash-* (or timeout-*, oom-*) and
# replayed by tests/core/test_fuzz_corpus.py in `make test` (CPython, MicroPython, wasm) until
# fixed -- commit it with the fix. Prints executions and coverage per target. Targets: varint,
# protobuf, multiaddr, cbor, mss, noise, yamux, identify, gossipsub_rpc, serial_frame, serial_link, kad.
#
#   python tests/fuzz/run.py [TARGET ...]          FUZZ_SECONDS=600 python tests/fuzz/run.py yamux
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "core"), os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host")]
PER_INPUT_TIMEOUT_S = 10
RSS_LIMIT_MB = 2048
MAX_LEN = 4096


def one(name):
    import atheris
    import microp2p_host  # noqa: F401  (native crypto: Noise inputs run ~100x faster)
    with atheris.instrument_imports(include=["microp2p"]):
        import fuzz_targets
        # the machines import lazily: load them inside the instrumentation
        from microp2p.conn import mss, noise, yamux  # noqa: F401
        from microp2p.proto import identify  # noqa: F401
        from microp2p.pubsub import gossipsub, rpc, router, mcache  # noqa: F401
        from microp2p.serial import frame, link  # noqa: F401
        from microp2p.identity import keys, peerid, envelope  # noqa: F401
        from microp2p.proto.kad import codec as kad_codec  # noqa: F401
    fn = fuzz_targets.TARGETS[name]
    from microp2p.errors import ProtocolError

    def test_one(data):
        try:
            fn(data)
        except ProtocolError:
            pass

    seconds = os.environ.get("FUZZ_SECONDS", "60")
    work = os.path.join(ROOT, ".fuzz-work", name)
    corpus = os.path.join(HERE, "corpus", name)
    os.makedirs(work, exist_ok=True)
    os.makedirs(corpus, exist_ok=True)
    args = [sys.argv[0], work, corpus, "-max_total_time=%s" % seconds,
            "-timeout=%d" % PER_INPUT_TIMEOUT_S, "-rss_limit_mb=%d" % RSS_LIMIT_MB,
            "-max_len=%d" % MAX_LEN, "-artifact_prefix=%s/" % corpus, "-print_final_stats=1"]
    atheris.Setup(args, test_one)
    atheris.Fuzz()


def main(argv):
    import fuzz_targets
    names = argv or list(fuzz_targets.TARGETS)
    unknown = [n for n in names if n not in fuzz_targets.TARGETS]
    if unknown:
        print("unknown target(s): %s (known: %s)" % (", ".join(unknown), ", ".join(fuzz_targets.TARGETS)))
        return 2
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    rows = []
    failed = []
    for name in names:
        before = set(os.listdir(os.path.join(HERE, "corpus", name))) if os.path.isdir(os.path.join(HERE, "corpus", name)) else set()
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=seconds + 120)
        out = r.stdout
        execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", out)
        cov = re.findall(r"#\d+\s+\w+\s+cov: (\d+) ft: (\d+)", out)
        corp = re.findall(r"corp: (\d+)/", out)
        after = set(os.listdir(os.path.join(HERE, "corpus", name)))
        new_art = sorted(a for a in after - before if not a.startswith("seed-"))
        rows.append((name, int(execs[-1]) if execs else 0, cov[-1][0] if cov else "?",
                     cov[-1][1] if cov else "?", corp[-1] if corp else "?", r.returncode, new_art))
        if r.returncode or new_art:
            failed.append(name)
            tail = "\n".join(out.splitlines()[-40:])
            print("---- %s: exit %d, artifacts %s\n%s" % (name, r.returncode, new_art, tail))
    print("%-14s %10s %8s %8s %7s  %s" % ("target", "execs", "cov", "ft", "corpus", "result"))
    for name, ex, cv, ft, cp, rc, art in rows:
        print("%-14s %10d %8s %8s %7s  %s" % (name, ex, cv, ft, cp,
                                              "ok" if not rc and not art else "CRASH %s" % " ".join(art)))
    print("fuzz: %d targets, %d s each, %d with findings" % (len(rows), seconds, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        name = sys.argv[2]
        del sys.argv[1:3]
        one(name)
    else:
        sys.exit(main(sys.argv[1:]))
