"""jobdtest - start the real jobd for a test and talk to it over HTTP.

Standard library only. Each Daemon runs the binary named by $JOBD_BIN on an
ephemeral port (--listen 127.0.0.1:0) with a fresh state directory, and
learns the port from the line jobd logs when it is listening: a wait on an
event, not a sleep. A test may give another --listen (unix:/PATH) or TLS
flags; the logged address then says unix:/PATH or https://HOST:PORT, and
request() talks to it over the Unix socket, or over TLS with the Daemon's
ssl_context.
"""
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

JOBD = os.environ.get("JOBD_BIN", "jobd")
JOBCTL = os.environ.get("JOBCTL_BIN", "jobctl")
SOURCE_DIR = os.environ.get("JOBD_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled"}
LISTENING = re.compile(r"listening on ((?:https?://|unix:)\S+)")


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.unix_path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Daemon:
    """A running jobd. Use as a context manager, or call stop().

    nofile: a limit on open files (RLIMIT_NOFILE) for jobd. ssl_context:
    what request() verifies an https:// jobd with."""

    def __init__(self, *args, config=None, env=None, start_timeout=30, nofile=None,
                 ssl_context=None):
        self.tmp = tempfile.mkdtemp(prefix="jobd-test-")
        self.state_dir = os.path.join(self.tmp, "state")
        conf = os.path.join(self.tmp, "jobd.conf")
        with open(conf, "w") as f:
            f.write(config or "")
        self.log_path = os.path.join(self.tmp, "jobd.log")
        cmd = [JOBD, "-c", conf, "--listen", "127.0.0.1:0",
               "--state-dir", self.state_dir, *args]
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.ssl_context = ssl_context
        preexec = None
        if nofile:
            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=full_env,
                                     preexec_fn=preexec)
        self.lines = []
        self._lines_cond = threading.Condition()
        self._url_ready = threading.Event()
        self.url = None
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        if not self._url_ready.wait(start_timeout) or not self.url:
            self.stop(kill=True)
            raise RuntimeError("jobd did not start:\n" + self.log())
        self.unix_path = self.host = self.port = None
        if self.url.startswith("unix:"):
            self.unix_path = self.url[5:]
        else:
            m = re.match(r"https?://([^:/]+|\[[^\]]+\]):(\d+)", self.url)
            self.host, self.port = m.group(1), int(m.group(2))

    def _read_log(self):
        with open(self.log_path, "w") as log:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                with self._lines_cond:
                    self.lines.append(line)
                    self._lines_cond.notify_all()
                m = LISTENING.search(line)
                if m and not self.url:
                    self.url = m.group(1)
                    self._url_ready.set()
        self._url_ready.set()
        with self._lines_cond:
            self._lines_cond.notify_all()

    def log(self):
        return "".join(self.lines)

    def connection(self, timeout=60):
        """A new http.client connection to jobd, whatever it listens on."""
        if self.unix_path:
            return UnixHTTPConnection(self.unix_path, timeout=timeout)
        if self.url.startswith("https:"):
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def wait_log(self, pattern, timeout=30, start=0):
        """Wait until a log line from index `start` on matches `pattern`;
        returns the match (fails the test on timeout)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with self._lines_cond:
            while True:
                for line in self.lines[seen:]:
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    break
                self._lines_cond.wait(left)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.log()[-3000:]}")

    def request(self, method, path, body=None, headers=None, timeout=60, raw=None):
        """One request on a new connection. Returns (status, headers, parsed body)."""
        conn = self.connection(timeout=timeout)
        try:
            hdrs = dict(headers or {})
            data = raw
            if body is not None:
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            ctype = resp.getheader("Content-Type", "")
            parsed = payload
            if "json" in ctype and payload:
                parsed = json.loads(payload)
            return resp.status, resp, parsed
        finally:
            conn.close()

    def submit(self, job, expect=202):
        status, _, body = self.request("POST", "/v1/jobs", job)
        if status != expect:
            raise AssertionError(f"submit {job}: {status} {body}")
        return body

    def get(self, job_id, wait=None):
        path = f"/v1/jobs/{job_id}" + (f"?wait={wait}" if wait is not None else "")
        status, _, body = self.request("GET", path)
        if status != 200:
            raise AssertionError(f"get {job_id}: {status} {body}")
        return body

    def wait(self, job_id, timeout=60):
        """Long-poll until the job is terminal; fails the test on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"job {job_id} not done after {timeout} s")
            job = self.get(job_id, wait=round(min(left, 30), 3))
            if job["state"] in TERMINAL:
                return job

    def wait_running(self, job_id, timeout=30):
        """Long-poll (?until=running) until the job has started."""
        status, _, job = self.request(
            "GET", f"/v1/jobs/{job_id}?wait={timeout}&until=running")
        if status != 200 or job["state"] == "queued":
            raise AssertionError(f"job {job_id} did not start: {status} {job}")
        return job

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, kill=False, timeout=30):
        """Stop jobd; returns its exit code. Fails on sanitizer reports."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(10)
        return code

    def cleanup(self):
        self.stop(kill=True)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def sanitizer_report(self):
        text = self.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:", "ERROR: ThreadSanitizer"):
            if marker in text:
                return text
        return None


class DaemonTest(unittest.TestCase):
    """Starts one jobd per test class (ARGS, CONFIG), checks it exits
    cleanly and without sanitizer reports at the end."""

    ARGS = ()
    CONFIG = ""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(*cls.ARGS, config=cls.CONFIG)

    @classmethod
    def tearDownClass(cls):
        stop_and_check(cls.d)


def stop_and_check(d):
    """Stop `d` and remove its files; fail on a sanitizer report or an exit
    status other than 0."""
    code = d.stop()
    report = d.sanitizer_report()
    log = d.log()
    d.cleanup()
    if report:
        raise AssertionError("sanitizer report:\n" + report)
    if code != 0:
        raise AssertionError(f"jobd exited {code}:\n{log[-4000:]}")


def _proc_stat(pid):
    """(state, ppid, pgid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def zombies_of(pid):
    """Zombie children of `pid` (children it has not reaped)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _proc_stat(d)
            if st and st[0] == "Z" and st[1] == pid:
                out.append(int(d))
    return out


def pids_with_marker(marker):
    """Processes whose command line holds `marker` (a test's own tag)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def jobctl(*args, env=None, timeout=60, url=None):
    """Run jobctl; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    if url:
        e["JOBD_URL"] = url
    e.update(env or {})
    return subprocess.run([JOBCTL, *args], capture_output=True, text=True,
                          env=e, timeout=timeout)


def fill_disk(directory):
    """Fill the file system of `directory` with one file; returns its path."""
    filler = os.path.join(directory, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 65536) > 0:
            pass
    except OSError:
        pass  # full: that was the point
    finally:
        os.close(fd)
    return filler


def can_mount():
    """Whether this process may mount a tmpfs (root, with mount(8))."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    tmp = tempfile.mkdtemp(prefix="jobd-mnt-")
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tmp],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", tmp])
        return ok
    finally:
        os.rmdir(tmp)


def complete(line, url=None):
    """What jobctl's bash completion offers for `line` (the word being
    completed is the text after the last space), as a set. `url` becomes
    $JOBD_URL for completions that ask jobd."""
    script = f"""
        . {os.path.join(SOURCE_DIR, "completion", "jobctl.bash")!r}
        COMP_LINE={line!r}; COMP_POINT=${{#COMP_LINE}}
        read -ra COMP_WORDS <<<"$COMP_LINE"
        [[ $COMP_LINE == *' ' ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
        _jobctl
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    env = dict(os.environ)
    env.pop("JOBD_URL", None)
    if url:
        env["JOBD_URL"] = url
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script],
                       capture_output=True, text=True, timeout=60, env=env)
    if r.returncode != 0:
        raise AssertionError(f"completion of {line!r} failed: {r.stderr}")
    return set(r.stdout.split())
