# A private Mosquitto broker for tests, benches and `microp2p emulate --mqtt`: its own generated
# config on a free 127.0.0.1 port (never 1883, which a system service may hold), no system
# service involved. The Debian package `mosquitto` provides the binary (`make setup` installs
# it when run as root).
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto",
          "/usr/local/opt/mosquitto/sbin/mosquitto")
RESERVED_PORTS = (1883, 8883)
INSTALL_HINT = ("mosquitto not found: install the MQTT broker (Debian/Ubuntu: `apt-get install mosquitto`, "
                "which `make setup` does when run as root; macOS: `brew install mosquitto`)")


class MosquittoMissing(RuntimeError):
    pass


def find_binary():
    env = os.environ.get("MICROP2P_MOSQUITTO")
    if env:
        return env
    p = shutil.which("mosquitto")
    if p:
        return p
    for c in SEARCH:
        if os.access(c, os.X_OK):
            return c
    raise MosquittoMissing(INSTALL_HINT)


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in RESERVED_PORTS:
            return port


class Mosquitto:
    """mosquitto -c <generated config>. persistence=True keeps retained messages and persistent
    sessions across restart() (saved on a clean stop), in the work dir."""

    def __init__(self, workdir=None, port=None, persistence=False, log_path=None, listener_lines=()):
        """listener_lines: extra config lines for the listener (TLS files, password_file...)."""
        self.binary = find_binary()
        self._own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="microp2p-mosquitto-")
        self.port = port or free_port()
        self.persistence = persistence
        self.listener_lines = list(listener_lines)
        self.log_path = log_path or os.path.join(self.dir, "mosquitto.log")
        self.proc = None
        self.conf = os.path.join(self.dir, "mosquitto.conf")

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def _write_config(self):
        lines = ["per_listener_settings false", "listener %d 127.0.0.1" % self.port] + self.listener_lines
        if not any(x.startswith("allow_anonymous") for x in self.listener_lines):
            lines.append("allow_anonymous true")
        lines += ["log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice",
                 "max_queued_messages 100000"]
        if self.persistence:
            lines += ["persistence true", "persistence_location %s/" % self.dir, "autosave_interval 0"]
        else:
            lines += ["persistence false"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def _hand_dir_to_broker_user(self):
        # Started as root, mosquitto drops to the `mosquitto` user before it writes persistence
        # (and, for some files, before it reads them): the work dir must be that user's.
        if os.geteuid() != 0:
            return
        try:
            import pwd
            pw = pwd.getpwnam("mosquitto")
        except (ImportError, KeyError):
            return
        for d, dirs, files in os.walk(self.dir):
            for name in [d] + [os.path.join(d, f) for f in files]:
                try:
                    os.chown(name, pw.pw_uid, pw.pw_gid)
                except OSError:
                    pass

    def start(self, timeout=START_TIMEOUT_S):
        self._write_config()
        self._hand_dir_to_broker_user()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited (%s) at start; see %s" % (self.proc.returncode, self.log_path))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.02)   # no readiness event to wait for: the port opening is the event
        self.stop()
        raise RuntimeError("mosquitto did not listen on %d within %.0f s" % (self.port, timeout))

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def restart(self, down_s=0.0):
        self.stop()
        if down_s:
            time.sleep(down_s)
        self.start()

    def close(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
