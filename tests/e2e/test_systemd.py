"""jobd under the service manager's protocols, without systemd as PID 1:
socket activation (systemd-socket-activate) and sd_notify messages read
from a datagram socket we own."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from jobdtest import JOBD

ACTIVATE = shutil.which("systemd-socket-activate")


class NotifyListener:
    """A NOTIFY_SOCKET: collects every datagram jobd sends."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self.cond:
                self.messages.append((time.monotonic(), data.decode()))
                self.cond.notify_all()

    def wait_for(self, text, after=0, timeout=30):
        """Block until a message holding `text` arrives (after index `after`);
        returns its index."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.messages)):
                    if text in self.messages[i][1]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} in {self.messages}")
                self.cond.wait(left)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is not installed")
class SocketActivation(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="jobd-sd-")
        self.notify = NotifyListener(os.path.join(self.tmp, "notify"))
        self.port = free_port()
        self.conf = os.path.join(self.tmp, "jobd.conf")
        with open(self.conf, "w") as f:
            f.write("[thread]\nthreads = 2\n")
        self.log = open(os.path.join(self.tmp, "log"), "w+")
        self.proc = subprocess.Popen(
            [ACTIVATE, "-l", f"127.0.0.1:{self.port}",
             "-E", f"NOTIFY_SOCKET={self.tmp}/notify", "-E", "WATCHDOG_USEC=400000",
             JOBD, "-c", self.conf, "--state-dir", os.path.join(self.tmp, "state"),
             "--processes", "1", "--listen", "127.0.0.1:1"],  # the passed socket wins
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Wait for the listener (an event: its first line), then keep the log.
        first = self.proc.stderr.readline()
        self.assertIn("Listening on", first)
        self.log.write(first)

        def keep():
            for line in self.proc.stderr:
                self.log.write(line)
                self.log.flush()
        self.keeper = threading.Thread(target=keep, daemon=True)
        self.keeper.start()

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path, body):
        req = urllib.request.Request(self.url(path), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def get(self, path):
        with urllib.request.urlopen(self.url(path), timeout=60) as r:
            return json.loads(r.read())

    def test_notify_protocol_and_inherited_socket(self):
        # systemd-socket-activate starts jobd on the first connection, as
        # a .socket unit does; that request is served on the inherited
        # socket (the --listen address is not used).
        self.assertEqual(self.get("/v1/health")["status"], "ok")
        ready = self.notify.wait_for("READY=1")
        self.assertIn("STATUS=", self.notify.messages[ready][1])
        # The watchdog is fed from the loop at about half the interval.
        first = self.notify.wait_for("WATCHDOG=1", ready)
        second = self.notify.wait_for("WATCHDOG=1", first + 1)
        gap = self.notify.messages[second][0] - self.notify.messages[first][0]
        self.assertLess(gap, 0.4)
        # STATUS is refreshed with queue figures.
        self.notify.wait_for("queued", ready + 1, timeout=15)

        # An exec job inherits nothing of this: no notify socket, no listen
        # variables, no fds beyond 0-2.
        job = self.post("/v1/jobs", {"task": "exec", "params": {
            "command": "env; echo FDS; ls /proc/self/fd"}})
        job = self.get(f"/v1/jobs/{job['id']}?wait=30")
        out = job["result"]["stdout"]
        for leak in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "WATCHDOG_USEC"):
            self.assertNotIn(leak, out)
        fds = [l for l in out.split("FDS\n")[1].split() if l.isdigit()]
        self.assertLessEqual(len(fds), 4, out)  # 0, 1, 2 and ls's own directory

        # Reload: RELOADING=1 with a MONOTONIC_USEC, then READY=1.
        mark = len(self.notify.messages)
        self.proc.send_signal(signal.SIGHUP)
        rel = self.notify.wait_for("RELOADING=1", mark)
        self.assertIn("MONOTONIC_USEC=", self.notify.messages[rel][1])
        self.notify.wait_for("READY=1", rel)

        # A bad config keeps the old one running and says so in STATUS.
        with open(self.conf, "w") as f:
            f.write("[thread]\nthreads = lots\n")
        mark = len(self.notify.messages)
        self.proc.send_signal(signal.SIGHUP)
        bad = self.notify.wait_for("reload failed", mark)
        self.assertIn("READY=1", self.notify.messages[bad][1])
        self.assertEqual(self.get("/v1/health")["status"], "ok")

        # Stop: STOPPING=1 with more time asked for, and exit 0.
        mark = len(self.notify.messages)
        self.proc.send_signal(signal.SIGTERM)
        stop = self.notify.wait_for("STOPPING=1", mark)
        self.assertIn("EXTEND_TIMEOUT_USEC=", self.notify.messages[stop][1])
        self.assertEqual(self.proc.wait(30), 0)
        self.keeper.join(10)
        self.log.seek(0)
        log = self.log.read()
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error", log)


if __name__ == "__main__":
    unittest.main()
