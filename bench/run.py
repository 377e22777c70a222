#!/usr/bin/env python3
"""run.py - the jobd benchmark driver (`make bench`).

Runs seven figures in one go, each beside an anchor measured in the same
run on the same machine, prints a Markdown table and writes results.json.
Figures a to c and e to g are measured --repeat times (3; 1 with --quick),
anchor and jobd alternating, and the medians reported:

  a. submit rate     jobd vs a bare libmicrohttpd server (bare_server)
  b. end to end      jobd submit + long-poll vs ThreadPoolExecutor(2)
  c. round trip      one job's submit + long-poll on an idle jobd
  d. memory          RSS growth per queued job, 1,000,000 jobs queued
  e. process e2e     b on the process executor vs ProcessPoolExecutor(2)
  f. exec /bin/true  exec jobs end to end vs posix_spawn + waitpid (C)
  g. process rtt     c on the process executor vs c on the thread executor

Standard library only. Every process it starts is stopped on the way out,
errors included; each child also gets PR_SET_PDEATHSIG so that it dies with
the driver even if the driver is killed outright. See bench/README.md.

Exit status: 0 when every figure was measured (with --strict: and every
target met), 1 otherwise, 2 on bad usage.
"""

import argparse
import concurrent.futures
import ctypes
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

JOBD_LISTEN_RE = re.compile(r"listening on http://[^:]+:(\d+)")
BARE_LISTEN_RE = re.compile(r"listening on (\d+)")
ECHO_BODY = '{"task":"echo","params":{"value":1}}'
PROC_ECHO_BODY = '{"task":"echo","executor":"process","params":{"value":1}}'
EXEC_BODY = '{"task":"exec","params":{"argv":["/bin/true"]}}'
EXEC_PATH = "/bin/true"
SLEEP_BODY = '{"task":"sleep","params":{"seconds":3600}}'
READY_TIMEOUT = 15.0   # seconds for a server to say it listens
STOP_GRACE = 30.0      # seconds between SIGTERM and SIGKILL
REQUEST_TIMEOUT = 30   # loadgen aborts on a request unanswered this long

# Targets: the figure's id, the comparison, the bound.
TARGET_SUBMIT_RATIO = 0.60
TARGET_E2E_JOBS_S = 25000.0
TARGET_RTT_P50_US = 150.0
TARGET_BYTES_PER_JOB = 1024.0
TARGET_PROC_E2E_RATIO = 2.0     # jobd / ProcessPoolExecutor(2)
TARGET_EXEC_RATIO = 0.70        # jobd exec jobs/s / raw spawns/s
TARGET_PROC_RTT_P50_US = 250.0
PROC_WORKERS = 2                # --processes for figures e to g; the anchors'
                                # pool size and spawn threads match it
RUN_BUDGET_S = 360              # the whole run; 150 with --quick
QUICK_BUDGET_S = 150


def _noop():
    """The ProcessPoolExecutor anchor's task: module level, so that it can
    be pickled by reference."""
    return None


def _pool_worker_init():
    """ProcessPoolExecutor initializer: die with the driver, leave Ctrl-C
    to it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class BenchError(Exception):
    pass


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg),
          file=sys.stderr, flush=True)


# ---- children --------------------------------------------------------------

_libc = None


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the driver dies."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _load_libc():
    global _libc
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl  # noqa: B018 - check the symbol exists
    except (OSError, AttributeError):
        _libc = None


class Budget:
    """The whole run's wall-clock bound."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds

    def left(self):
        return self.deadline - time.monotonic()

    def timeout(self, want):
        left = self.left()
        if left <= 1:
            raise BenchError("the run's time budget (%d s) is spent" %
                             self.seconds)
        return min(want, left)


class Server:
    """A server process whose output goes to a file in the temp dir."""

    def __init__(self, name, argv, logpath, regex, stream):
        self.name = name
        self.argv = argv
        self.logpath = logpath
        self.port = None
        self.logf = open(logpath, "wb")
        kw = {"stdout": self.logf, "stderr": subprocess.STDOUT}
        if stream == "stderr":
            kw = {"stdout": subprocess.DEVNULL, "stderr": self.logf}
        try:
            # Its own process group, so that a SIGKILL reaches whatever
            # it started too.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent, **kw)
        except OSError as e:
            self.logf.close()
            raise BenchError("cannot start %s (%s): %s" % (name, argv[0], e))
        self.regex = regex

    @property
    def pid(self):
        return self.proc.pid

    def log_tail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + x for x in lines[-n:])

    def wait_ready(self, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with open(self.logpath, "rb") as f:
                m = self.regex.search(f.read().decode("utf-8", "replace"))
            if m:
                self.port = int(m.group(1))
                return self.port
            if self.proc.poll() is not None:
                raise BenchError("%s exited (status %s) before listening:\n%s"
                                 % (self.name, self.proc.returncode,
                                    self.log_tail()))
            time.sleep(0.01)
        raise BenchError("%s did not say it listens within %.0f s:\n%s"
                         % (self.name, timeout, self.log_tail()))

    def kill(self):
        """SIGKILL the process group and reap the leader."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(5)

    def stop(self, grace=STOP_GRACE):
        """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit
        status and whether it had to be killed."""
        killed = False
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) still running %.0f s after SIGTERM; "
                    "SIGKILL" % (self.name, self.pid, grace))
                killed = True
        self.kill()  # the leader, if SIGTERM was not enough; any leftovers
        self.logf.close()
        return self.proc.returncode, killed


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.budget = Budget(QUICK_BUDGET_S if args.quick else RUN_BUDGET_S)
        self.tmp = tempfile.mkdtemp(prefix="jobd-bench-")
        self.servers = []
        self.raw = {}
        self.figures = []
        self.errors = []
        self.nstarted = 0
        self.repeat = args.repeat

    # -- processes --

    def start_bare(self):
        self.nstarted += 1
        s = Server("bare_server", [self.args.bare, "0"],
                   os.path.join(self.tmp, "bare%d.log" % self.nstarted),
                   BARE_LISTEN_RE, "stdout")
        self.servers.append(s)
        s.wait_ready(min(READY_TIMEOUT, self.budget.timeout(READY_TIMEOUT)))
        return s

    def start_jobd(self, threads, processes=1):
        """jobd with `threads` in the thread executor and `processes` worker
        processes (figures that only use the thread executor keep one, so
        that idle workers cost nothing and the daemon starts as fast)."""
        self.nstarted += 1
        state = os.path.join(self.tmp, "state%d" % self.nstarted)
        os.mkdir(state)
        argv = [self.args.jobd, "--listen", "127.0.0.1:0",
                "--state-dir", state, "--log-level", "warning",
                "--threads", str(threads), "--processes", str(processes),
                "--max-queued", "10000000"]
        argv += self.args.jobd_arg
        s = Server("jobd", argv,
                   os.path.join(self.tmp, "jobd%d.log" % self.nstarted),
                   JOBD_LISTEN_RE, "stderr")
        self.servers.append(s)
        s.wait_ready(self.budget.timeout(READY_TIMEOUT))
        return s

    def stop(self, s):
        grace = max(1.0, min(STOP_GRACE, self.budget.left() - 5))
        rc, killed = s.stop(grace)
        if s in self.servers:
            self.servers.remove(s)
        return rc, killed

    def stop_all(self):
        for s in list(self.servers):
            try:
                s.kill()
                s.logf.close()
            except Exception as e:  # keep going: kill the rest
                log("could not stop %s (pid %d): %s" % (s.name, s.pid, e))
        self.servers = []

    # -- loadgen --

    def loadgen(self, key, server, mode, want_seconds, *opts):
        argv = [self.args.loadgen, mode, "--host", "127.0.0.1",
                "--port", str(server.port),
                "--timeout", str(REQUEST_TIMEOUT)] + [str(o) for o in opts]
        timeout = self.budget.timeout(want_seconds)
        log("  %s" % " ".join(argv[1:]))
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=timeout, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise BenchError("loadgen %s ran past %.0f s; %s log:\n%s"
                             % (mode, timeout, server.name,
                                server.log_tail()))
        except OSError as e:
            raise BenchError("cannot run loadgen (%s): %s"
                             % (self.args.loadgen, e))
        lines = [x for x in p.stdout.splitlines() if x.strip()]
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise BenchError("loadgen %s (status %d) printed no result: %s"
                             % (mode, p.returncode, p.stderr.strip()[-500:]))
        self.raw.setdefault(key, []).append(res)
        if p.returncode != 0 or "error" in res:
            alive = server.proc.poll() is None
            raise BenchError("loadgen %s against %s: %s%s\n%s"
                             % (mode, server.name,
                                res.get("error", "status %d" % p.returncode),
                                "" if alive else " (%s has exited, status %s)"
                                % (server.name, server.proc.returncode),
                                server.log_tail()))
        return res

    # -- figures --

    def figure(self, fid, name, unit, value, anchor, anchor_name, ratio,
               target, met, note=None):
        self.figures.append({
            "id": fid, "name": name, "unit": unit, "value": value,
            "anchor": anchor, "anchor_name": anchor_name, "ratio": ratio,
            "target": target, "met": met, "note": note, "error": None,
        })

    def figure_error(self, fid, name, unit, target, err):
        self.errors.append("%s: %s" % (name, err))
        self.figures.append({
            "id": fid, "name": name, "unit": unit, "value": None,
            "anchor": None, "anchor_name": None, "ratio": None,
            "target": target, "met": False, "note": None, "error": str(err),
        })

    def run_submit(self):
        """a. Submit rate, jobd against bare MHD, in alternating rounds."""
        warm, dur = (0.5, 2) if self.quick else (1, 5)
        want = warm + dur + REQUEST_TIMEOUT + 10
        bares, jobds = [], []
        for i in range(self.repeat):
            log("a. submit rate, round %d/%d: bare_server"
                % (i + 1, self.repeat))
            bare = self.start_bare()
            try:
                bares.append(self.loadgen(
                    "bare_submit", bare, "submit", want, "--conns", 64,
                    "--warmup", warm, "--duration", dur, "--body",
                    ECHO_BODY))
            finally:
                self.stop(bare)
            log("a. submit rate, round %d/%d: jobd" % (i + 1, self.repeat))
            jobd = self.start_jobd(2)
            self.jobd_version(jobd)
            try:
                jobds.append(self.loadgen(
                    "jobd_submit", jobd, "submit", want, "--conns", 64,
                    "--warmup", warm, "--duration", dur, "--body",
                    ECHO_BODY))
            finally:
                self.stop(jobd)
        b = median([x["rps"] for x in bares])
        j = median([x["rps"] for x in jobds])
        ratio = j / b if b > 0 else None
        note = None
        met = ratio is not None and ratio >= TARGET_SUBMIT_RATIO
        bad = [x["status"] for x in bares + jobds if x["errors"]]
        if bad:
            met = False
            note = "non-2xx answers: %s" % bad
        self.figure("submit_rate", "submit rate", "req/s", j, b,
                    "bare MHD, 1 thread", ratio,
                    "ratio >= %.2f" % TARGET_SUBMIT_RATIO, met, note)

    def run_e2e(self):
        """b. End to end: submit + long-poll every job vs an in-process
        ThreadPoolExecutor(2) running no-op tasks."""
        n = 5000 if self.quick else 20000
        runs = []
        for i in range(self.repeat):
            log("b. end to end, round %d/%d: jobd, %d jobs"
                % (i + 1, self.repeat, n))
            jobd = self.start_jobd(2)
            try:
                runs.append(self.loadgen(
                    "jobd_e2e", jobd, "e2e", 120, "--conns", 64,
                    "--requests", n, "--body", ECHO_BODY))
            finally:
                self.stop(jobd)
        log("b. end to end: ThreadPoolExecutor(2), %d no-op tasks" % n)
        py = self.python_pool(n)
        self.raw["python_pool"] = py
        j = median([x["jobs_per_s"] for x in runs])
        ratio = j / py["jobs_per_s"]
        met = j >= TARGET_E2E_JOBS_S
        note = None
        bad = [x["states"] for x in runs
               if x["failed"] or x["succeeded"] != n]
        if bad:
            met = False
            note = "not every job succeeded: %s" % bad
        self.figure("e2e", "end to end", "jobs/s", j, py["jobs_per_s"],
                    "ThreadPoolExecutor(2), in-process", ratio,
                    ">= {:,.0f} jobs/s".format(TARGET_E2E_JOBS_S), met,
                    note)

    @staticmethod
    def python_pool(n):
        """Best of three: submit n no-op tasks, then collect every result."""
        def noop():
            return None

        times = []
        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(2) as ex:
                ex.submit(noop).result()  # start the threads
                t = time.perf_counter()
                fs = [ex.submit(noop) for _ in range(n)]
                for f in fs:
                    f.result()
                times.append(time.perf_counter() - t)
        best = min(times)
        return {"tasks": n, "seconds": best, "runs": times,
                "jobs_per_s": n / best}

    def run_rtt(self):
        """c. Round trip on a fresh, idle jobd, beside two round trips to
        bare MHD on one connection."""
        n = 300 if self.quick else 1000
        bares, runs = [], []
        for i in range(self.repeat):
            log("c. round trip, round %d/%d: bare_server, 1 connection"
                % (i + 1, self.repeat))
            bare = self.start_bare()
            try:
                bares.append(self.loadgen(
                    "bare_rtt", bare, "submit", 1 + REQUEST_TIMEOUT + 10,
                    "--conns", 1, "--duration", 1, "--body", ECHO_BODY))
            finally:
                self.stop(bare)
            log("c. round trip, round %d/%d: jobd, %d jobs"
                % (i + 1, self.repeat, n))
            jobd = self.start_jobd(2)
            try:
                runs.append(self.loadgen(
                    "jobd_rtt", jobd, "rtt", 60 + REQUEST_TIMEOUT,
                    "--requests", n, "--body", ECHO_BODY))
            finally:
                self.stop(jobd)
        # A job's round trip is two HTTP round trips.
        a50 = 2 * median([x["lat_us"]["p50"] for x in bares])
        a99 = 2 * median([x["lat_us"]["p99"] for x in bares])
        p50 = median([x["p50_us"] for x in runs])
        p99 = median([x["p99_us"] for x in runs])
        note = None
        met = p50 <= TARGET_RTT_P50_US
        bad = [x["states"] for x in runs if x["failed"]]
        if bad:
            met = False
            note = "not every job succeeded: %s" % bad
        aname = "2 requests to bare MHD"
        self.figure("rtt_p50", "round trip p50", "us", p50, a50, aname,
                    p50 / a50 if a50 else None,
                    "<= %d us" % TARGET_RTT_P50_US, met, note)
        self.figure("rtt_p99", "round trip p99", "us", p99, a99, aname,
                    p99 / a99 if a99 else None, None, None)

    def run_memory(self):
        """d. RSS growth per queued job, with the only thread kept busy."""
        n = 100000 if self.quick else 1000000
        log("d. memory: jobd --threads 1 --processes 1, %d queued jobs" % n)
        # One worker process, idle all along: the RSS read is the daemon's
        # own process only, never its workers.
        jobd = self.start_jobd(1, 1)
        try:
            code, job = http_json(jobd.port, "POST", "/v1/jobs", SLEEP_BODY)
            if code != 202 or not isinstance(job, dict) or "id" not in job:
                raise BenchError("submitting the sleep job: HTTP %s %s"
                                 % (code, str(job)[:200]))
            self.wait_running(jobd, job["id"])
            rss0 = vmrss(jobd.pid)
            f = self.loadgen("jobd_fill", jobd, "fill", 150, "--conns", 8,
                             "--requests", n, "--body", ECHO_BODY)
            rss1 = vmrss(jobd.pid)
            queued = None
            try:
                code, ex = http_json(jobd.port, "GET", "/v1/executors")
                if code == 200:
                    queued = sum(int(e.get("queued", 0))
                                 for e in ex.get("executors", []))
            except (OSError, ValueError, AttributeError, TypeError):
                pass
            self.raw["memory"] = {"rss_before": rss0, "rss_after": rss1,
                                  "jobs": f["ok"], "queued": queued,
                                  "sleep_job": job["id"]}
        finally:
            log("d. memory: SIGTERM jobd (up to %.0f s)" % STOP_GRACE)
            t = time.monotonic()
            rc, killed = self.stop(jobd)
            self.raw["memory_stop"] = {"status": rc, "killed": killed,
                                       "seconds": time.monotonic() - t}
        per = (rss1 - rss0) / f["ok"] if f["ok"] else None
        note = "%d jobs queued, daemon RSS %.1f -> %.1f MiB" % (
            f["ok"], rss0 / 2**20, rss1 / 2**20)
        met = per is not None and per <= TARGET_BYTES_PER_JOB
        if f["errors"]:
            met = False
            note += "; non-2xx answers: %s" % f["status"]
        if queued is not None and queued < f["ok"]:
            note += "; only %d reported queued" % queued
        self.figure("bytes_per_job", "memory per queued job", "B", per,
                    None, None, None,
                    "<= %d B" % TARGET_BYTES_PER_JOB, met, note)

    def run_process_e2e(self):
        """e. End to end on the process executor: no-op echo jobs in jobd's
        worker processes vs ProcessPoolExecutor(2) in the driver."""
        n = 5000 if self.quick else 20000
        runs, pools, execs = [], [], []
        for i in range(self.repeat):
            log("e. process e2e, round %d/%d: ProcessPoolExecutor(%d), "
                "%d no-op tasks" % (i + 1, self.repeat, PROC_WORKERS, n))
            pools.append(self.process_pool(n))
            self.raw["process_pool"] = pools
            log("e. process e2e, round %d/%d: jobd --processes %d, %d jobs"
                % (i + 1, self.repeat, PROC_WORKERS, n))
            jobd = self.start_jobd(2, PROC_WORKERS)
            try:
                runs.append(self.loadgen(
                    "jobd_process_e2e", jobd, "e2e", 120, "--conns", 64,
                    "--requests", n, "--body", PROC_ECHO_BODY))
                execs.append(self.process_executor(jobd))
                self.raw["process_e2e_executor"] = execs
            finally:
                self.stop(jobd)
        j = median([x["jobs_per_s"] for x in runs])
        py = median([x["jobs_per_s"] for x in pools])
        ratio = j / py if py > 0 else None
        met = ratio is not None and ratio >= TARGET_PROC_E2E_RATIO
        notes = []
        bad = [x["states"] for x in runs
               if x["failed"] or x["succeeded"] != n]
        if bad:
            met = False
            notes.append("not every job succeeded: %s" % bad)
        notes += self.executor_notes(execs)
        self.figure("process_e2e", "process e2e", "jobs/s", j, py,
                    "ProcessPoolExecutor(%d), in-process" % PROC_WORKERS,
                    ratio, "ratio >= %.1f" % TARGET_PROC_E2E_RATIO, met,
                    "; ".join(notes) or None)

    @staticmethod
    def process_pool(n):
        """One ProcessPoolExecutor(2) measurement: the pool is started and
        warmed up first, then n no-op tasks are submitted and every result
        collected, and only that is timed."""
        with concurrent.futures.ProcessPoolExecutor(
                PROC_WORKERS, initializer=_pool_worker_init) as ex:
            for f in [ex.submit(_noop) for _ in range(4 * PROC_WORKERS)]:
                f.result()  # every worker started and importing done
            t = time.perf_counter()
            fs = [ex.submit(_noop) for _ in range(n)]
            for f in fs:
                f.result()
            secs = time.perf_counter() - t
        return {"tasks": n, "workers": PROC_WORKERS, "seconds": secs,
                "jobs_per_s": n / secs}

    def run_exec(self):
        """f. exec jobs running /bin/true, end to end, vs the raw rate of
        posix_spawn + waitpid on as many threads as jobd has workers."""
        n = 500 if self.quick else 2000
        runs, spawns, execs = [], [], []
        for i in range(self.repeat):
            log("f. exec, round %d/%d: spawn_anchor, %d threads, %d spawns"
                % (i + 1, self.repeat, PROC_WORKERS, n))
            spawns.append(self.spawn_anchor(n))
            log("f. exec, round %d/%d: jobd --processes %d, %d exec jobs"
                % (i + 1, self.repeat, PROC_WORKERS, n))
            jobd = self.start_jobd(2, PROC_WORKERS)
            try:
                runs.append(self.loadgen(
                    "jobd_exec", jobd, "e2e", 120, "--conns", 64,
                    "--requests", n, "--body", EXEC_BODY))
                execs.append(self.process_executor(jobd))
                self.raw["exec_executor"] = execs
            finally:
                self.stop(jobd)
        j = median([x["jobs_per_s"] for x in runs])
        a = median([x["spawns_per_s"] for x in spawns])
        ratio = j / a if a > 0 else None
        met = ratio is not None and ratio >= TARGET_EXEC_RATIO
        notes = []
        bad = [x["states"] for x in runs
               if x["failed"] or x["succeeded"] != n]
        if bad:
            met = False
            notes.append("not every job succeeded: %s" % bad)
        notes += self.executor_notes(execs)
        self.figure("exec_true", "exec /bin/true", "jobs/s", j, a,
                    "posix_spawn + waitpid, %d threads" % PROC_WORKERS,
                    ratio, "ratio >= %.2f" % TARGET_EXEC_RATIO, met,
                    "; ".join(notes) or None)

    def spawn_anchor(self, n):
        argv = [self.args.spawn_anchor, "--threads", str(PROC_WORKERS),
                "--count", str(n), EXEC_PATH]
        timeout = self.budget.timeout(60)
        log("  %s" % " ".join(argv[1:]))
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=timeout, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise BenchError("spawn_anchor ran past %.0f s" % timeout)
        except OSError as e:
            raise BenchError("cannot run spawn_anchor (%s): %s"
                             % (self.args.spawn_anchor, e))
        lines = [x for x in p.stdout.splitlines() if x.strip()]
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise BenchError("spawn_anchor (status %d) printed no result: %s"
                             % (p.returncode, p.stderr.strip()[-500:]))
        self.raw.setdefault("spawn_anchor", []).append(res)
        if p.returncode != 0 or "error" in res:
            raise BenchError("spawn_anchor: %s"
                             % res.get("error", "status %d" % p.returncode))
        return res

    def run_process_rtt(self):
        """g. Round trip on the process executor, beside the round trip on
        the thread executor of the same idle jobd."""
        n = 300 if self.quick else 1000
        threads, procs = [], []
        for i in range(self.repeat):
            log("g. process round trip, round %d/%d: jobd --processes %d, "
                "%d jobs on each executor"
                % (i + 1, self.repeat, PROC_WORKERS, n))
            jobd = self.start_jobd(2, PROC_WORKERS)
            try:
                # Alternate which goes first, so that neither always gets
                # the freshly started daemon.
                order = [("thread", ECHO_BODY, threads),
                         ("process", PROC_ECHO_BODY, procs)]
                if i % 2:
                    order.reverse()
                for name, body, out in order:
                    out.append(self.loadgen(
                        "jobd_%s_rtt" % name, jobd, "rtt",
                        60 + REQUEST_TIMEOUT, "--requests", n,
                        "--body", body))
            finally:
                self.stop(jobd)
        t50 = median([x["p50_us"] for x in threads])
        t99 = median([x["p99_us"] for x in threads])
        p50 = median([x["p50_us"] for x in procs])
        p99 = median([x["p99_us"] for x in procs])
        note = None
        met = p50 <= TARGET_PROC_RTT_P50_US
        bad = [x["states"] for x in threads + procs if x["failed"]]
        if bad:
            met = False
            note = "not every job succeeded: %s" % bad
        aname = "thread executor, same jobd"
        self.figure("process_rtt_p50", "process round trip p50", "us", p50,
                    t50, aname, p50 / t50 if t50 else None,
                    "<= %d us" % TARGET_PROC_RTT_P50_US, met, note)
        self.figure("process_rtt_p99", "process round trip p99", "us", p99,
                    t99, aname, p99 / t99 if t99 else None, None, None)

    def process_executor(self, jobd):
        """The process executor's entry in GET /v1/executors, or None."""
        try:
            code, ex = http_json(jobd.port, "GET", "/v1/executors")
            if code == 200:
                for e in ex.get("executors", []):
                    if e.get("name") == "process":
                        return e
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        return None

    @staticmethod
    def executor_notes(execs):
        """Worker crashes and replacements seen after the runs."""
        execs = [e for e in execs if isinstance(e, dict)]
        if not execs:
            return []
        notes = []
        crashes = sum(int(e.get("crashes", 0)) for e in execs)
        if crashes:
            notes.append("%d worker process crashes" % crashes)
        notes.append("worker processes replaced %s times per run "
                     "(max_jobs_per_worker %s)"
                     % ("/".join(str(e.get("restarts", "?")) for e in execs),
                        execs[0].get("max_jobs_per_worker", "?")))
        return notes

    def wait_running(self, jobd, jid):
        end = time.monotonic() + 10
        state = None
        while time.monotonic() < end:
            code, job = http_json(jobd.port, "GET", "/v1/jobs/" + jid)
            state = job.get("state") if isinstance(job, dict) else None
            if state == "running":
                return
            if state not in ("queued", None):
                raise BenchError("the sleep job ended early: %s" % state)
            time.sleep(0.01)
        raise BenchError("the sleep job is not running after 10 s (%s)"
                         % state)

    def jobd_version(self, jobd):
        try:
            code, h = http_json(jobd.port, "GET", "/v1/health")
            if code == 200 and isinstance(h, dict):
                self.raw["jobd_health"] = h
        except (OSError, ValueError):
            pass

    # -- the run --

    def run(self, only=()):
        steps = [
            ("submit", "submit_rate", "submit rate", "req/s",
             "ratio >= %.2f" % TARGET_SUBMIT_RATIO, self.run_submit),
            ("e2e", "e2e", "end to end", "jobs/s",
             ">= {:,.0f} jobs/s".format(TARGET_E2E_JOBS_S), self.run_e2e),
            ("rtt", "rtt_p50", "round trip p50", "us",
             "<= %d us" % TARGET_RTT_P50_US, self.run_rtt),
            ("memory", "bytes_per_job", "memory per queued job", "B",
             "<= %d B" % TARGET_BYTES_PER_JOB, self.run_memory),
            ("process-e2e", "process_e2e", "process e2e", "jobs/s",
             "ratio >= %.1f" % TARGET_PROC_E2E_RATIO, self.run_process_e2e),
            ("exec", "exec_true", "exec /bin/true", "jobs/s",
             "ratio >= %.2f" % TARGET_EXEC_RATIO, self.run_exec),
            ("process-rtt", "process_rtt_p50", "process round trip p50",
             "us", "<= %d us" % TARGET_PROC_RTT_P50_US,
             self.run_process_rtt),
        ]
        for step, fid, name, unit, target, fn in steps:
            if only and step not in only:
                continue
            try:
                fn()
            except BenchError as e:
                log("%s: ERROR: %s" % (name, e))
                self.figure_error(fid, name, unit, target, e)
            finally:
                self.stop_all()


def median(xs):
    xs = sorted(xs)
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def http_json(port, method, path, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body else {}
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data.decode("utf-8", "replace")
    finally:
        c.close()


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchError("no VmRSS for pid %d" % pid)


# ---- output ----------------------------------------------------------------

def fmt_num(v, unit):
    if v is None:
        return "—"
    if unit in ("req/s", "jobs/s"):
        return "{:,.0f} {}".format(v, unit)
    if unit == "us":
        return "{:,.1f} µs".format(v)
    if unit == "B":
        return "{:,.0f} B".format(v)
    return "{:,.2f} {}".format(v, unit)


def fmt_target(t):
    if not t:
        return "—"
    return t.replace(">=", "≥").replace("<=", "≤").replace(" us", " µs")


def table(figures):
    out = ["| figure | value | anchor | ratio | target | met |",
           "|---|---|---|---|---|---|"]
    for f in figures:
        if f["error"]:
            out.append("| %s | error | — | — | %s | no |"
                       % (f["name"], fmt_target(f["target"])))
            continue
        anchor = "—"
        if f["anchor"] is not None:
            anchor = "%s (%s)" % (fmt_num(f["anchor"], f["unit"]),
                                  f["anchor_name"])
        ratio = "—" if f["ratio"] is None else "%.2f" % f["ratio"]
        met = "—" if f["met"] is None else ("yes" if f["met"] else "no")
        out.append("| %s | %s | %s | %s | %s | %s |"
                   % (f["name"], fmt_num(f["value"], f["unit"]), anchor,
                      ratio, fmt_target(f["target"]), met))
    return "\n".join(out)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="jobd benchmark driver")
    ap.add_argument("--jobd", required=True, help="the jobd binary")
    ap.add_argument("--loadgen", required=True, help="the loadgen binary")
    ap.add_argument("--bare", required=True, help="the bare_server binary")
    ap.add_argument("--spawn-anchor", metavar="PATH",
                    help="the spawn_anchor binary (default: spawn_anchor "
                         "beside --loadgen)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller counts; the run takes at most 2.5 minutes")
    ap.add_argument("--out", default=os.path.join(here, "results.json"),
                    help="where to write the JSON results")
    ap.add_argument("--only", action="append", default=[],
                    choices=["submit", "e2e", "rtt", "memory",
                             "process-e2e", "exec", "process-rtt"],
                    help="run only this figure (repeatable)")
    ap.add_argument("--repeat", type=int, metavar="N",
                    help="measure every figure but d N times (1..5) and "
                         "report medians (default 3; 1 with --quick)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 when a target is missed")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir (server logs, state dirs)")
    ap.add_argument("--jobd-arg", action="append", default=[],
                    help="extra argument for every jobd started (repeatable)")
    args = ap.parse_args()
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if not 1 <= args.repeat <= 5:
        ap.error("--repeat must be 1..5")
    for name in ("jobd", "loadgen", "bare"):
        p = getattr(args, name)
        if not os.access(p, os.X_OK):
            ap.error("--%s %s: not an executable file" % (name, p))
    if args.spawn_anchor is None:
        # The CMake build puts it beside loadgen.
        args.spawn_anchor = os.path.join(
            os.path.dirname(os.path.abspath(args.loadgen)), "spawn_anchor")
    if (not args.only or "exec" in args.only) and \
            not os.access(args.spawn_anchor, os.X_OK):
        ap.error("--spawn-anchor %s: not an executable file (build "
                 "bench/spawn_anchor.c, or leave the exec figure out with "
                 "--only)" % args.spawn_anchor)

    _load_libc()
    # A signal ends the run through the same cleanup as an error.
    def on_signal(signum, frame):
        log("interrupted by signal %d; stopping everything" % signum)
        sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    bench = Bench(args)
    try:
        log("temp dir %s; budget %d s" % (bench.tmp, bench.budget.seconds))
        bench.run(set(args.only))
    finally:
        bench.stop_all()
        if args.keep:
            log("kept %s" % bench.tmp)
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)

    elapsed = time.monotonic() - t0
    result = {
        "version": 1,
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(elapsed, 3),
        "quick": args.quick,
        "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "machine": platform.machine(),
                    "python": platform.python_version()},
        "jobd": os.path.abspath(args.jobd),
        "figures": bench.figures,
        "errors": bench.errors,
        "raw": bench.raw,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)

    print("## jobd benchmark%s — %d CPUs, %.0f s, medians of %d\n"
          % (" (quick)" if args.quick else "", os.cpu_count() or 0, elapsed,
             args.repeat))
    print(table(bench.figures))
    notes = [f for f in bench.figures if f["note"] or f["error"]]
    if notes:
        print()
        for f in notes:
            print("- **%s**: %s" % (f["name"], f["error"] or f["note"]))
    print("\nresults: %s" % args.out)
    sys.stdout.flush()

    if bench.errors:
        return 1
    if args.strict and any(f["met"] is False for f in bench.figures):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
