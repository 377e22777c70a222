#!/usr/bin/env python3
"""run.py - the jobd benchmark driver (`make bench`).

Runs fifteen figures in one go, each beside an anchor measured in the same
run on the same machine, prints a Markdown table and writes results.json.
Figures a to c, e to k, l's restarts, n and o are measured --repeat times (3;
1 with --quick), anchor and jobd alternating, and the medians reported:

  a. submit rate     jobd vs a bare libmicrohttpd server (bare_server)
  b. end to end      jobd submit + long-poll vs ThreadPoolExecutor(2)
  c. round trip      one job's submit + long-poll on an idle jobd
  d. memory          RSS growth per queued job, 1,000,000 jobs queued
  e. process e2e     b on the process executor vs ProcessPoolExecutor(2)
  f. exec /bin/true  exec jobs end to end vs posix_spawn + waitpid (C)
  g. process rtt     c on the process executor vs c on the thread executor
  h. opencl square   a 10-int square kernel as jobs (one at a time, 64 at
                     once) vs a plain OpenCL host loop (ocl_anchor)
  i. sgemm           1024^3 float32, base64, end to end and kernel-only,
                     vs OpenBLAS cblas_sgemm (blas_anchor)
  j. program cache   time to the first result: new kernel, same kernel,
                     same kernel after a restart on the same state dir
  k. durability      submit rate with --durability memory, normal and full
                     vs bare MHD; normal/memory and full/memory
  l. recovery        restart time with 1,000,000 stored finished jobs:
                     start to "listening on", and jobd's "recovered" line
  m. database size   jobd.db bytes per stored finished job (l's database)
  n. batch e2e       POST /v1/jobs/batch (1,000 jobs a request) + POST
                     /v1/wait vs ThreadPoolExecutor(2).map
  o. SSE             GET /v1/events with one subscriber while 10,000 echo
                     jobs complete: events/s delivered vs events/s jobd
                     publishes with no subscriber; a job's end
                     (finished_at) to its event's arrival, p50 and p99

a to g, n and o run jobd with --durability memory (the HTTP and scheduler
path, as before the store); k to m are about the store.

h to j are skipped ("skipped: <reason>" rows, exit status unaffected) when
jobd's opencl executor is disabled or missing, or an anchor is not built.

Standard library only. Every process it starts is stopped on the way out,
errors included; each child also gets PR_SET_PDEATHSIG so that it dies with
the driver even if the driver is killed outright. See bench/README.md.

Exit status: 0 when every figure was measured (with --strict: and every
target met), 1 otherwise, 2 on bad usage.
"""

import argparse
import array
import base64
import concurrent.futures
import ctypes
import datetime
import http.client
import json
import os
import platform
import random
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
SQUARE_BODY = ('{"task":"square","executor":"opencl","params":'
               '{"values":[1,2,3,4,5,6,7,8,9,10],"dtype":"int32"}}')
# Figure j's kernel; %s is a nonce that makes every round's source new.
CACHE_KERNEL = ("/* jobd bench, program cache: %s */\n"
                "__kernel void bench_k(__global const int *a, "
                "__global int *b, uint n)\n"
                "{\n\tsize_t i = get_global_id(0);\n"
                "\tif (i < n)\n\t\tb[i] = a[i] * a[i] + 1;\n}\n")
SGEMM_N = 1024
OPENCL_READY_TIMEOUT = 60.0  # seconds for jobd's OpenCL device to be ready
PROGRAM_CACHE_PAUSE = 0.5    # figure j: idle time before the extra memory hit
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
TARGET_OCL_ADDED_US = 50.0      # jobd square p50 - ocl_anchor p50
TARGET_OCL_TPUT_RATIO = 0.50    # jobd square jobs/s / ocl_anchor iter/s
TARGET_SGEMM_RATIO = 0.30       # jobd's sgemm kernel / OpenBLAS
PROC_WORKERS = 2                # --processes for figures e to g; the anchors'
                                # pool size and spawn threads match it
RUN_BUDGET_S = 600              # the whole run; 240 with --quick
QUICK_BUDGET_S = 240
# Figures a to g measure the HTTP and scheduler path: no database behind
# the 202 (jobd's default is --durability full), as before the store.
MEMORY_STORE = ("--durability", "memory")
TARGET_NORMAL_RATIO = 0.80      # k: submit rate, normal / memory
TARGET_FULL_RATIO = 0.50        # k: submit rate, full / memory
TARGET_RECOVERY_S = 10.0        # l: start to listening, 1,000,000 jobs
RECOVERY_READY_TIMEOUT = 120.0  # l: seconds a restart may take to listen
BATCH_JOBS = 1000               # n: jobs per POST /v1/jobs/batch
WAIT_IDS = 10000                # n: IDs per POST /v1/wait (jobd's limit)
TARGET_BATCH_E2E_RATIO = 1.5    # n: jobd jobs/s / ThreadPoolExecutor(2).map
SSE_JOBS = 10000                # o: jobs per run
SSE_BATCH = 1000                # o: jobs per POST /v1/jobs/batch
TARGET_SSE_RATIO = 0.80         # o: events/s to a subscriber / published
TARGET_SSE_DELAY_P99_US = 10000.0  # o: a job's end to its event, p99
JOBD_RECOVERED_RE = re.compile(
    r"recovered (\d+) job\(s\) in ([0-9.]+) s(?:: (\d+) queued)?")


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


class Skip(Exception):
    """A figure that cannot be measured here, for a reason that is not a
    fault (no OpenCL, no OpenBLAS): a "skipped: <reason>" row."""


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
        self.skipped = []
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

    def start_jobd(self, threads, processes=1, extra=(), state=None):
        """jobd with `threads` in the thread executor and `processes` worker
        processes (figures that only use the thread executor keep one, so
        that idle workers cost nothing and the daemon starts as fast).
        `extra`: more flags, before --jobd-arg's; `state`: an existing
        state directory to start on (figure j's restart)."""
        self.nstarted += 1
        if state is None:
            state = os.path.join(self.tmp, "state%d" % self.nstarted)
            os.mkdir(state)
        argv = [self.args.jobd, "--listen", "127.0.0.1:0",
                "--state-dir", state, "--log-level", "warning",
                "--threads", str(threads), "--processes", str(processes),
                "--max-queued", "10000000"]
        argv += list(extra)
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
            "skipped": None,
        })

    def figure_skip(self, fid, name, unit, target, reason):
        """A figure that cannot be measured on this machine or build."""
        self.skipped.append("%s: %s" % (name, reason))
        self.figures.append({
            "id": fid, "name": name, "unit": unit, "value": None,
            "anchor": None, "anchor_name": None, "ratio": None,
            "target": target, "met": None, "note": None, "error": None,
            "skipped": str(reason),
        })

    def figure_error(self, fid, name, unit, target, err):
        self.errors.append("%s: %s" % (name, err))
        self.figures.append({
            "id": fid, "name": name, "unit": unit, "value": None,
            "anchor": None, "anchor_name": None, "ratio": None,
            "target": target, "met": False, "note": None, "error": str(err),
            "skipped": None,
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
            jobd = self.start_jobd(2, extra=MEMORY_STORE)
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
            jobd = self.start_jobd(2, extra=MEMORY_STORE)
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

    def run_batch_e2e(self):
        """n. End to end in batches: POST /v1/jobs/batch with 1,000 echo
        jobs a request, then POST /v1/wait (all_completed), from the
        driver over one keep-alive connection, vs
        ThreadPoolExecutor(2).map over as many no-op calls in-process."""
        n = 5000 if self.quick else 20000
        runs, pools = [], []
        for i in range(self.repeat):
            log("n. batch e2e, round %d/%d: ThreadPoolExecutor(2).map, %d "
                "no-op calls" % (i + 1, self.repeat, n))
            pools.append(self.python_pool_map(n))
            log("n. batch e2e, round %d/%d: jobd, %d jobs in batches of %d"
                % (i + 1, self.repeat, n, BATCH_JOBS))
            jobd = self.start_jobd(2, extra=MEMORY_STORE)
            try:
                runs.append(self.batch_e2e(jobd, n))
            finally:
                self.stop(jobd)
        self.raw["python_pool_map"] = pools
        self.raw["jobd_batch_e2e"] = runs
        j = median([x["jobs_per_s"] for x in runs])
        p = median([x["jobs_per_s"] for x in pools])
        ratio = j / p if p > 0 else None
        met = ratio is not None and ratio >= TARGET_BATCH_E2E_RATIO
        note = "submit %s of the time (median); per round jobd/pool: %s" % (
            "{:.0%}".format(median([x["submit_seconds"] / x["seconds"]
                                    for x in runs])),
            ", ".join("%.2f" % (r["jobs_per_s"] / q["jobs_per_s"])
                      for r, q in zip(runs, pools)))
        bad = [x for x in runs if x["not_done"] or x["unsuccessful"]]
        if bad:
            met = False
            note = "not every job succeeded: %s" % [
                {k: x[k] for k in ("not_done", "unsuccessful")} for x in bad]
        self.figure("batch_e2e", "batch end to end", "jobs/s", j, p,
                    "ThreadPoolExecutor(2).map, in-process", ratio,
                    "ratio >= %.2f" % TARGET_BATCH_E2E_RATIO, met, note)

    def batch_e2e(self, jobd, n):
        """Submit n echo jobs in batches of BATCH_JOBS, then wait for all of
        them with POST /v1/wait, on one keep-alive connection; timed from
        the first batch sent to the last wait answered. A batch of 10 jobs
        and its wait go first, untimed (connection, threads)."""
        def batch_body(k):
            return ('{"jobs":[%s]}' % ",".join([ECHO_BODY] * k)).encode()

        def wait_body(ids):
            # IDs are plain ASCII: no JSON escaping needed.
            return ('{"ids":["%s"],"return_when":"all_completed",'
                    '"timeout":%d}' % ('","'.join(ids), REQUEST_TIMEOUT)
                    ).encode()

        conn = http.client.HTTPConnection("127.0.0.1", jobd.port,
                                          timeout=REQUEST_TIMEOUT + 10)
        hdrs = {"Content-Type": "application/json"}

        def post(path, data, want):
            conn.request("POST", path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            if r.status != want:
                raise BenchError("POST %s answered %d: %s\n%s"
                                 % (path, r.status, payload[:300],
                                    jobd.log_tail()))
            return json.loads(payload)

        body = batch_body(BATCH_JOBS)
        try:
            warm = post("/v1/jobs/batch", batch_body(10), 202)["ids"]
            post("/v1/wait", wait_body(warm), 200)
            ids = []
            t0 = time.perf_counter()
            for k in range(0, n, BATCH_JOBS):
                ids += post("/v1/jobs/batch",
                            body if n - k >= BATCH_JOBS
                            else batch_body(n - k), 202)["ids"]
            t_sub = time.perf_counter()
            not_done = 0
            for k in range(0, len(ids), WAIT_IDS):
                not_done += len(post("/v1/wait", wait_body(ids[k:k + WAIT_IDS]),
                                     200)["not_done"])
            t1 = time.perf_counter()
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise BenchError("batch e2e against jobd: %s\n%s"
                             % (e, jobd.log_tail()))
        finally:
            conn.close()
        # Untimed: none of them may have ended other than succeeded.
        status, doc = http_json(jobd.port, "GET", "/v1/jobs?state=failed,"
                                "timed_out,cancelled&limit=10")
        if status != 200:
            raise BenchError("GET /v1/jobs?state=... answered %d: %s"
                             % (status, doc))
        return {"jobs": n, "batch": BATCH_JOBS, "seconds": t1 - t0,
                "submit_seconds": t_sub - t0, "jobs_per_s": n / (t1 - t0),
                "not_done": not_done, "unsuccessful": len(doc["jobs"])}

    @staticmethod
    def python_pool_map(n):
        """ThreadPoolExecutor(2).map over n no-op calls, collected into a
        list; the pool is made and both threads started before the clock."""
        def noop(_):
            return None

        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            list(ex.map(noop, range(16)))
            t = time.perf_counter()
            list(ex.map(noop, range(n)))
            dt = time.perf_counter() - t
        return {"calls": n, "seconds": dt, "jobs_per_s": n / dt}

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
            jobd = self.start_jobd(2, extra=MEMORY_STORE)
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
        jobd = self.start_jobd(1, 1, MEMORY_STORE)
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
            jobd = self.start_jobd(2, PROC_WORKERS, MEMORY_STORE)
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
            jobd = self.start_jobd(2, PROC_WORKERS, MEMORY_STORE)
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
            jobd = self.start_jobd(2, PROC_WORKERS, MEMORY_STORE)
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

    # -- durability: figures k to m --

    def run_durability_submit(self):
        """k. Submit rate with --durability memory, normal and full, in
        rotating order every round, beside bare MHD (figure a's runs when
        a was measured in this run)."""
        warm, dur = (0.5, 2) if self.quick else (1, 5)
        want = warm + dur + REQUEST_TIMEOUT + 10
        modes = ("memory", "normal", "full")
        runs = {m: [] for m in modes}
        dbs = {m: [] for m in modes}
        bares = [x for x in self.raw.get("bare_submit", [])
                 if isinstance(x, dict) and "rps" in x]
        reused = bool(bares)
        for i in range(self.repeat):
            if not reused:
                log("k. durability submit, round %d/%d: bare_server"
                    % (i + 1, self.repeat))
                bare = self.start_bare()
                try:
                    bares.append(self.loadgen(
                        "durability_bare_submit", bare, "submit", want,
                        "--conns", 64, "--warmup", warm, "--duration", dur,
                        "--body", ECHO_BODY))
                finally:
                    self.stop(bare)
            # Rotate, so that no durability always runs first.
            for m in modes[i % 3:] + modes[:i % 3]:
                log("k. durability submit, round %d/%d: jobd --durability "
                    "%s" % (i + 1, self.repeat, m))
                jobd = self.start_jobd(2, extra=("--durability", m))
                state = jobd.argv[jobd.argv.index("--state-dir") + 1]
                try:
                    runs[m].append(self.loadgen(
                        "jobd_submit_%s" % m, jobd, "submit", want,
                        "--conns", 64, "--warmup", warm, "--duration", dur,
                        "--body", ECHO_BODY))
                finally:
                    self.stop(jobd)
                dbs[m].append(db_files(state))
        self.raw["durability_db_after_submit"] = dbs
        b = median([x["rps"] for x in bares])
        rps = {m: median([x["rps"] for x in runs[m]]) for m in modes}
        mem = rps["memory"]
        bad = ["%s: %s" % (m, x["status"]) for m in modes for x in runs[m]
               if x["errors"]]
        lat = "; ".join(
            "%s p50 %.0f µs, p99 %.0f µs" % (
                m, median([x["lat_us"]["p50"] for x in runs[m]]),
                median([x["lat_us"]["p99"] for x in runs[m]]))
            for m in modes)
        fs = fs_type(self.tmp)
        common = ["%s, 64 connections, %s" % (
            "median of %d rounds" % self.repeat if self.repeat > 1
            else "1 round", lat),
            "the database is on %s (%s)" % (fs or "?", self.tmp)]
        if fs == "tmpfs":
            common.append("tmpfs: fsync costs nothing here, full is not "
                          "what it is on a disk")
        note = ["bare MHD %s: {:,.0f} req/s".format(b) % (
            "from figure a's rounds" if reused else "measured here")]
        note += common
        if bad:
            note.append("non-2xx answers: %s" % "; ".join(bad))
        self.figure("submit_durability_memory",
                    "submit rate, durability memory", "req/s", mem, b,
                    "bare MHD, 1 thread", mem / b if b > 0 else None,
                    None, False if bad else None, "; ".join(note))
        for m, target in (("normal", TARGET_NORMAL_RATIO),
                          ("full", TARGET_FULL_RATIO)):
            ratio = rps[m] / mem if mem > 0 else None
            per = [x["rps"] / y["rps"] for x, y in zip(runs[m],
                                                       runs["memory"])
                   if y["rps"] > 0]
            sizes = [d.get("total", 0) for d in dbs[m]]
            notes = ["per round %s / memory: %s" % (
                m, "/".join("%.2f" % r for r in per)),
                "bare MHD {:,.0f} req/s, ratio to it %.2f".format(b)
                % (rps[m] / b if b > 0 else 0),
                "jobd.db after the stop %s MB" % "/".join(
                    "%.1f" % (x / 1e6) for x in sizes)]
            met = ratio is not None and ratio >= target
            if bad:
                met = False
            self.figure("submit_durability_%s" % m,
                        "submit rate, durability %s" % m, "req/s", rps[m],
                        mem, "durability memory, same run", ratio,
                        "ratio >= %.2f" % target, met, "; ".join(notes))

    def fill_store(self, n):
        """A jobd with --durability normal and 2 threads, filled with n echo
        jobs over 64 connections; they run and finish while it fills. Once
        GET /v1/executors shows nothing queued or running, a clean stop
        (SIGTERM; SQLite checkpoints and removes the WAL). Returns what it
        did, also kept in raw["store_fill"]; the state directory stays."""
        log("l/m. fill a jobd --durability normal with %d echo jobs"
            % n)
        jobd = self.start_jobd(2, 1, ["--durability", "normal"])
        state = jobd.argv[jobd.argv.index("--state-dir") + 1]
        try:
            t = time.monotonic()
            f = self.loadgen("jobd_store_fill", jobd, "fill", 600,
                             "--conns", 64, "--requests", n, "--body",
                             ECHO_BODY)
            fill_s = time.monotonic() - t
            if f["errors"] or f["ok"] != n:
                raise BenchError("the fill got non-2xx answers: %s"
                                 % f["status"])
            t = time.monotonic()
            self.wait_idle(jobd, 300)
            drain_s = time.monotonic() - t
        finally:
            t = time.monotonic()
            rc, killed = self.stop(jobd)
            stop_s = time.monotonic() - t
        if killed or rc != 0:
            raise BenchError("jobd did not stop cleanly after the fill "
                             "(status %s%s):\n%s"
                             % (rc, ", SIGKILLed" if killed else "",
                                jobd.log_tail()))
        res = {"state": state, "jobs": f["ok"], "fill_s": fill_s,
               "submits_per_s": f.get("submits_per_s"), "drain_s": drain_s,
               "stop_s": stop_s, "db": db_files(state)}
        self.raw["store_fill"] = res
        return res

    def wait_idle(self, jobd, want):
        """Wait until no executor of jobd has a job queued or running.
        Returns the executors' last entries."""
        end = time.monotonic() + self.budget.timeout(want)
        last = None
        while True:
            try:
                code, ex = http_json(jobd.port, "GET", "/v1/executors")
                if code == 200 and isinstance(ex, dict):
                    last = ex.get("executors", [])
                    busy = sum(int(e.get("queued", 0)) +
                               int(e.get("running", 0)) for e in last)
                    if busy == 0:
                        return last
            except (OSError, ValueError, AttributeError, TypeError):
                pass
            if jobd.proc.poll() is not None:
                raise BenchError("jobd exited (status %s) while its jobs "
                                 "ran:\n%s" % (jobd.proc.returncode,
                                               jobd.log_tail()))
            if time.monotonic() > end:
                raise BenchError("jobs still queued or running %.0f s after "
                                 "the fill: %s" % (want, last))
            time.sleep(0.1)

    def start_recovering(self, state):
        """jobd --durability normal on an existing state directory, at log
        level notice for the "recovered" line, timed from just before the
        process is started to its "listening on" line."""
        self.nstarted += 1
        argv = [self.args.jobd, "--listen", "127.0.0.1:0",
                "--state-dir", state, "--log-level", "notice",
                "--threads", "2", "--processes", "1",
                "--max-queued", "10000000", "--durability", "normal"]
        argv += self.args.jobd_arg
        t = time.monotonic()
        s = Server("jobd", argv,
                   os.path.join(self.tmp, "jobd%d.log" % self.nstarted),
                   JOBD_LISTEN_RE, "stderr")
        self.servers.append(s)
        s.wait_ready(self.budget.timeout(RECOVERY_READY_TIMEOUT))
        return s, time.monotonic() - t

    def run_recovery(self):
        """l. Restart time with 1,000,000 stored finished jobs: start to
        "listening on", and jobd's own "recovered N job(s) in X s"."""
        n = 100000 if self.quick else 1000000
        fill = self.fill_store(n)
        state = fill["state"]
        starts, recs, rss = [], [], []
        counts = set()
        for i in range(self.repeat):
            log("l. recovery, restart %d/%d on the same state directory "
                "(%d jobs)" % (i + 1, self.repeat, n))
            jobd, secs = self.start_recovering(state)
            try:
                rss.append(vmrss(jobd.pid))
                with open(jobd.logpath, "rb") as f:
                    m = JOBD_RECOVERED_RE.search(
                        f.read().decode("utf-8", "replace"))
            finally:
                rc, killed = self.stop(jobd)
            if not m:
                raise BenchError('no "recovered N job(s) in X s" line in '
                                 "jobd's log:\n%s" % jobd.log_tail())
            if killed or rc != 0:
                raise BenchError("jobd did not stop cleanly after the "
                                 "restart (status %s%s):\n%s"
                                 % (rc, ", SIGKILLed" if killed else "",
                                    jobd.log_tail()))
            starts.append(secs)
            recs.append(float(m.group(2)))
            counts.add((int(m.group(1)), int(m.group(3) or 0)))
            self.raw.setdefault("recovery", []).append(
                {"start_to_listening_s": secs, "recovered": int(m.group(1)),
                 "queued": int(m.group(3) or 0), "recovered_s": recs[-1],
                 "rss": rss[-1]})
        v = median(starts)
        rec = median(recs)
        notes = ["%d echo jobs stored by a jobd --durability normal "
                 "--threads 2, all finished before the stop (fill "
                 "{:,.0f} submits/s, %.1f s; then %.1f s until nothing "
                 "was queued or running; clean stop %.1f s)".format(
                     fill["submits_per_s"] or 0)
                 % (fill["jobs"], fill["fill_s"], fill["drain_s"],
                    fill["stop_s"]),
                 "start to listening %s s; jobd's \"recovered\" line %s s"
                 % ("/".join("%.2f" % x for x in starts),
                    "/".join("%.3f" % x for x in recs)),
                 "the rest (%.2f s at the median) is before and after the "
                 "load: exec, opening and checking the database, starting "
                 "the executors (OpenCL device discovery included)"
                 % (v - rec),
                 "RSS once listening %s MiB"
                 % "/".join("%.0f" % (x / 2**20) for x in rss),
                 "database in the page cache (just written)"]
        met = v < TARGET_RECOVERY_S
        if counts != {(fill["jobs"], 0)}:
            met = False
            notes.append("recovered (jobs, queued) %s, not (%d, 0)"
                         % (sorted(counts), fill["jobs"]))
        self.figure("recovery_s", "restart, %s jobs stored"
                    % ("{:,}".format(n)), "s", v, None, None, None,
                    "< %d s" % TARGET_RECOVERY_S, met, "; ".join(notes))
        self.figure("recovery_load_s", "recovery in jobd's log, %s jobs"
                    % ("{:,}".format(n)), "s", rec, v, "start to listening",
                    rec / v if v > 0 else None, None, None, None)

    def run_db_size(self):
        """m. Database bytes per stored finished job, after a clean stop:
        figure l's database when l ran in this run, else a fill of its
        own."""
        fill = self.raw.get("store_fill")
        own = not fill or not os.path.isdir(fill.get("state", ""))
        if own:
            fill = self.fill_store(100000 if self.quick else 1000000)
        db = db_files(fill["state"])  # again: after l's restarts too
        before = fill["db"]
        per = before["total"] / fill["jobs"] if fill["jobs"] else None
        notes = ["%d finished echo jobs (%s); after the fill's clean stop "
                 "jobd.db %s B, -wal %s B, -shm %s B"
                 % (fill["jobs"], "a fill of its own" if own else
                    "figure l's database", "{:,}".format(before["db"]),
                    "{:,}".format(before["wal"]),
                    "{:,}".format(before["shm"]))]
        if before["wal"]:
            notes.append("a -wal file was left after a clean stop")
        if not own:
            notes.append("after l's restarts and stops: %s B in all (%s)"
                         % ("{:,}".format(db["total"]),
                            "{:+,} B".format(db["total"] - before["total"])))
        self.raw["db_size"] = {"after_fill": before, "now": db,
                               "jobs": fill["jobs"]}
        self.figure("db_bytes_per_job", "database per finished job", "B",
                    per, None, None, None, None, None, "; ".join(notes))

    # -- OpenCL: figures h to j --

    def run_tool(self, key, name, argv, want):
        """Run an anchor that prints one JSON line; its result, also kept
        in raw[key]."""
        argv = [str(a) for a in argv]
        timeout = self.budget.timeout(want)
        log("  %s %s" % (name, " ".join(argv[1:])))
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True,
                               timeout=timeout, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise BenchError("%s ran past %.0f s" % (name, timeout))
        except OSError as e:
            raise BenchError("cannot run %s (%s): %s" % (name, argv[0], e))
        lines = [x for x in p.stdout.splitlines() if x.strip()]
        try:
            res = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise BenchError("%s (status %d) printed no result: %s"
                             % (name, p.returncode, p.stderr.strip()[-500:]))
        self.raw.setdefault(key, []).append(res)
        if p.returncode != 0 or "error" in res:
            raise BenchError("%s: %s" % (name, res.get(
                "error", "status %d" % p.returncode)))
        return res

    @staticmethod
    def need_tool(path, name, lib):
        if not path or not os.access(path, os.X_OK):
            raise Skip("%s is not built (%s; CMake builds bench/%s.c only "
                       "when it finds %s)" % (name, path, name, lib))

    def start_ocl_jobd(self, state=None):
        """A jobd for figures h to j, its OpenCL executor limited to CPU
        devices (the anchors run on the first CPU device), once that
        device's host is ready. Returns (jobd, the device's entry in
        GET /v1/executors, seconds from the start to ready)."""
        t = time.monotonic()
        # --durability memory as a to g: the executor's path, not the
        # store's (figures k to m).
        jobd = self.start_jobd(2, 1, ("--devices", "cpu") + MEMORY_STORE,
                               state)
        dev = self.wait_opencl(jobd)
        ready = time.monotonic() - t
        self.raw.setdefault("opencl_ready_s", []).append(round(ready, 3))
        return jobd, dev, ready

    def wait_opencl(self, jobd):
        """The first CPU device of jobd's opencl executor, once "ready".
        Skip when the executor is missing or disabled."""
        want = OPENCL_READY_TIMEOUT
        end = time.monotonic() + self.budget.timeout(want)
        last = "no answer"
        while True:
            ex = None
            try:
                code, body = http_json(jobd.port, "GET", "/v1/executors")
                if code == 200 and isinstance(body, dict):
                    ex = [e for e in body.get("executors", [])
                          if isinstance(e, dict) and e.get("name") == "opencl"]
                    if not ex:
                        raise Skip("jobd has no opencl executor (built "
                                   "without OpenCL?)")
                    ex = ex[0]
                else:
                    last = "GET /v1/executors: HTTP %s" % code
            except (OSError, ValueError) as e:
                last = str(e)
            if ex is not None:
                if not ex.get("enabled"):
                    raise Skip("jobd's opencl executor is disabled: %s"
                               % ex.get("reason", "no reason given"))
                devs = [d for d in ex.get("devices", [])
                        if isinstance(d, dict) and d.get("type") == "cpu"]
                if not devs:
                    raise Skip("jobd's opencl executor has no CPU device")
                self.raw["opencl_devices"] = ex.get("devices")
                if devs[0].get("state") == "ready":
                    return devs[0]
                last = "device %s is %s" % (devs[0].get("id"),
                                            devs[0].get("state"))
            if jobd.proc.poll() is not None:
                raise BenchError("jobd exited (status %s) before its OpenCL "
                                 "device was ready:\n%s"
                                 % (jobd.proc.returncode, jobd.log_tail()))
            if time.monotonic() > end:
                raise BenchError("jobd's OpenCL device not ready after %.0f "
                                 "s (%s):\n%s" % (want, last,
                                                  jobd.log_tail()))
            time.sleep(0.02)

    def opencl_device(self, jobd, dev_id):
        """The device's current entry in GET /v1/executors, or None."""
        try:
            code, body = http_json(jobd.port, "GET", "/v1/executors")
            for e in body.get("executors", []):
                if e.get("name") == "opencl":
                    for d in e.get("devices", []):
                        if d.get("id") == dev_id:
                            return d
        except (OSError, ValueError, AttributeError, TypeError):
            pass
        return None

    def job_roundtrip(self, jobd, body, wait=120):
        """One job by hand: submit `body` (bytes), long-poll until the job
        is terminal, on one keep-alive connection. Returns (seconds from
        the submit to the last byte of the terminal answer, the terminal
        job as a dict, sizes). jobd's answers are compact JSON, so "id" and
        "state" are found by a plain search and the big answers are only
        parsed once the clock has stopped."""
        timeout = self.budget.timeout(REQUEST_TIMEOUT + wait)
        c = http.client.HTTPConnection("127.0.0.1", jobd.port,
                                       timeout=timeout)
        polls = 0
        try:
            t = time.perf_counter()
            c.request("POST", "/v1/jobs", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            sub = r.read()
            if r.status != 202:
                raise BenchError("submit: HTTP %d: %s"
                                 % (r.status, sub[:300].decode("utf-8",
                                                               "replace")))
            m = re.search(rb'"id"\s*:\s*"([0-9A-Za-z_-]+)"', sub)
            if not m:
                raise BenchError("submit answer has no id: %s" % sub[:200])
            jid = m.group(1).decode()
            while True:
                c.request("GET", "/v1/jobs/%s?wait=%d" % (jid, wait))
                r = c.getresponse()
                got = r.read()
                polls += 1
                if r.status != 200:
                    raise BenchError("poll: HTTP %d: %s"
                                     % (r.status, got[:300]))
                i = got.find(b'"state":"')
                state = got[i + 9:got.find(b'"', i + 9)] if i >= 0 else b""
                if state not in (b"queued", b"running"):
                    break
            secs = time.perf_counter() - t
        except (OSError, http.client.HTTPException) as e:
            raise BenchError("job over HTTP: %s%s\n%s"
                             % (type(e).__name__, ": %s" % e if str(e)
                                else "", jobd.log_tail()))
        finally:
            c.close()
        job = json.loads(got)
        if not isinstance(job, dict) or "state" not in job:
            raise BenchError("poll answer is not a job: %s" % got[:200])
        return secs, job, {"submit_bytes": len(body),
                           "submit_answer_bytes": len(sub),
                           "final_answer_bytes": len(got), "polls": polls}

    @staticmethod
    def job_failed(job):
        if job.get("state") == "succeeded":
            return None
        return "%s: %s" % (job.get("state"),
                           json.dumps(job.get("error"))[:300])

    def run_ocl_overhead(self):
        """h. A tiny kernel (square of 10 int32) as jobd jobs over HTTP,
        one at a time and 64 at once, against ocl_anchor's plain
        write + kernel + read loop on the same device."""
        self.need_tool(self.args.ocl_anchor, "ocl_anchor", "OpenCL")
        iters = 3000 if self.quick else 10000
        n_rtt = 300 if self.quick else 1000
        n_e2e = 2000
        anchors, rtts, echos, e2es, devs = [], [], [], [], []
        for i in range(self.repeat):
            log("h. opencl square, round %d/%d: ocl_anchor, %d iterations"
                % (i + 1, self.repeat, iters))
            anchors.append(self.run_tool(
                "ocl_anchor_square", "ocl_anchor",
                [self.args.ocl_anchor, "square", "--iterations", iters], 60))
            log("h. opencl square, round %d/%d: jobd, %d jobs one at a "
                "time, %d on 64 connections" % (i + 1, self.repeat, n_rtt,
                                                n_e2e))
            jobd, dev, _ = self.start_ocl_jobd()
            try:
                rtts.append(self.loadgen(
                    "jobd_opencl_rtt", jobd, "rtt", 60 + REQUEST_TIMEOUT,
                    "--requests", n_rtt, "--body", SQUARE_BODY))
                # The same daemon's round trip for a thread job: what
                # HTTP, the queue and the long-poll cost without a device.
                echos.append(self.loadgen(
                    "jobd_opencl_echo_rtt", jobd, "rtt",
                    60 + REQUEST_TIMEOUT, "--requests", n_rtt,
                    "--body", ECHO_BODY))
                e2es.append(self.loadgen(
                    "jobd_opencl_e2e", jobd, "e2e", 120, "--conns", 64,
                    "--requests", n_e2e, "--body", SQUARE_BODY))
                devs.append(self.opencl_device(jobd, dev.get("id")))
                self.raw["opencl_square_device"] = devs
            finally:
                self.stop(jobd)
        a50 = median([x["p50_us"] for x in anchors])
        aips = median([x["iterations_per_s"] for x in anchors])
        j50 = median([x["p50_us"] for x in rtts])
        j99 = median([x["p99_us"] for x in rtts])
        e50 = median([x["p50_us"] for x in echos])
        tput = median([x["jobs_per_s"] for x in e2es])
        added = j50 - a50
        notes = ["jobd round trip p50 %.1f µs (p99 %.1f), ocl_anchor p50 "
                 "%.1f µs (p99 %.1f); an echo job on the thread executor "
                 "of the same jobd: p50 %.1f µs, so the OpenCL executor "
                 "adds %.1f µs to what any job costs"
                 % (j50, j99, a50, median([x["p99_us"] for x in anchors]),
                    e50, j50 - e50)]
        met = added <= TARGET_OCL_ADDED_US
        bad = [x["states"] for x in rtts + echos if x["failed"]]
        if bad:
            met = False
            notes.append("not every job succeeded: %s" % bad)
        names = {x.get("device") for x in anchors}
        jnames = {d.get("name") for d in devs if isinstance(d, dict)}
        if jnames and names != jnames:
            notes.append("jobd ran on %s, ocl_anchor on %s"
                         % (sorted(jnames), sorted(names)))
        self.figure("opencl_added_us", "opencl square: added per job p50",
                    "us", added, a50, "ocl_anchor p50, write+kernel+read",
                    None, "<= %d us" % TARGET_OCL_ADDED_US, met,
                    "; ".join(notes))
        ratio = tput / aips if aips > 0 else None
        met = ratio is not None and ratio >= TARGET_OCL_TPUT_RATIO
        note = None
        bad = [x["states"] for x in e2es
               if x["failed"] or x["succeeded"] != n_e2e]
        if bad:
            met = False
            note = "not every job succeeded: %s" % bad
        self.figure("opencl_square_e2e", "opencl square: 64 connections",
                    "jobs/s", tput, aips, "ocl_anchor iterations/s",
                    ratio, "ratio >= %.2f" % TARGET_OCL_TPUT_RATIO, met, note)

    def builtin_sgemm(self):
        """jobd's built-in kernel source, read from opencl/kernels.c, and
        the launch shape jobd uses for jd_sgemm_rb: (source, work-group x,
        y) or (None, reason)."""
        path = self.args.kernels_source
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            return None, "cannot read jobd's kernels (%s): %s" % (path, e)
        m = re.search(r"static const char builtin_source\[\]\s*=\s*(.*?);\s*$",
                      text, re.S | re.M)
        if not m:
            return None, "no builtin_source in %s" % path
        lits = re.findall(r'"((?:[^"\\\n]|\\.)*)"', m.group(1))
        src = bytes("".join(lits), "ascii").decode("unicode_escape")
        if "jd_sgemm_rb" not in src:
            return None, "no jd_sgemm_rb kernel in %s" % path
        lx = re.search(r"#define\s+RB_LX\s+(\d+)", text)
        ly = re.search(r"#define\s+RB_LY\s+(\d+)", text)
        return (src, int(lx.group(1)) if lx else 8,
                int(ly.group(1)) if ly else 2), None

    def run_sgemm(self):
        """i. sgemm n=1024 float32, base64 in and out: jobd's built-in task
        end to end, its kernel's own time through the generic task, and
        OpenBLAS on the same data."""
        self.need_tool(self.args.blas_anchor, "blas_anchor", "OpenBLAS")
        n = SGEMM_N
        flop = 2.0 * n ** 3
        rnd = random.Random(1024)
        a = array.array("f", (rnd.random() - 0.5 for _ in range(n * n)))
        b = array.array("f", (rnd.random() - 0.5 for _ in range(n * n)))
        if sys.byteorder != "little":
            a.byteswap()
            b.byteswap()
        abin, bbin, cbin = (os.path.join(self.tmp, x)
                            for x in ("a.f32", "b.f32", "c.f32"))
        for path, arr in ((abin, a), (bbin, b)):
            with open(path, "wb") as f:
                arr.tofile(f)
        a64 = base64.b64encode(a.tobytes()).decode()
        b64 = base64.b64encode(b.tobytes()).decode()
        del a, b
        body = json.dumps({"task": "sgemm", "executor": "opencl", "params": {
            "m": n, "n": n, "k": n, "a": {"dtype": "float32", "b64": a64},
            "b": {"dtype": "float32", "b64": b64}}}, separators=(",", ":"))
        body_file = os.path.join(self.tmp, "sgemm.json")
        with open(body_file, "w") as f:
            f.write(body)
        body = body.encode()

        # The generic task with jobd's own sgemm kernel and launch shape.
        kern, why_not = self.builtin_sgemm()
        kbody = None
        vw = None
        if kern and self.args.ocl_anchor and \
                os.access(self.args.ocl_anchor, os.X_OK):
            # jobd sizes the block to CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT
            # (opencl/kernels.c, sgemm_block); ocl_anchor reports it.
            info = self.run_tool("ocl_anchor_info", "ocl_anchor",
                                 [self.args.ocl_anchor, "square",
                                  "--iterations", 1, "--warmup", 0], 30)
            vw = info.get("native_vector_width_float")
        if kern:
            src, lx, ly = kern
            if vw:
                vw = 16 if vw >= 16 else 8 if vw >= 8 else 4
                rm = {16: 8, 8: 6, 4: 4}[vw]
                opts = "-DJD_VW=%d -DJD_RM=%d" % (vw, rm)
            else:  # the source's defaults
                vw, rm, opts = 16, 8, ""
            cb = 2 * vw
            # As run_sgemm in opencl/kernels.c: one work-item per block
            # of rm rows x cb columns, rounded up to whole work-groups.
            gx = ceil_to(ceil_div(n, rm), lx)
            gy = ceil_to(ceil_div(n, cb), ly)
            kparams = {
                "source": src, "kernel": "jd_sgemm_rb", "global": [gx, gy],
                "local": [lx, ly],
                "args": [{"scalar": n, "dtype": "int32"},
                         {"scalar": n, "dtype": "int32"},
                         {"scalar": n, "dtype": "int32"},
                         {"buffer": {"dtype": "float32", "b64": a64},
                          "access": "read"},
                         {"buffer": {"dtype": "float32", "b64": b64},
                          "access": "read"},
                         {"size": n * n, "dtype": "float32",
                          "access": "write", "b64": True}]}
            if opts:
                kparams["build_options"] = opts
            kbody = json.dumps({"task": "opencl", "executor": "opencl",
                                "params": kparams},
                               separators=(",", ":")).encode()
            self.raw["sgemm_kernel_launch"] = {
                "global": [gx, gy], "local": [lx, ly], "options": opts}
        del a64, b64

        per_round = -(-3 // self.repeat)  # 3 timed jobs in all at least
        # Kernel jobs are cheap next to the transfer: 3 every round, as
        # OpenBLAS's 3 calls, so that a noisy moment weighs less.
        k_round = 3
        firsts, e2es, kerns, blas, sizes = [], [], [], [], None
        same_c = []
        for i in range(self.repeat):
            log("i. sgemm n=%d, round %d/%d: jobd, 1 untimed + %d timed "
                "built-in jobs%s" % (n, i + 1, self.repeat, per_round,
                                     ", %d generic-task jobs" % k_round
                                     if kbody else ""))
            jobd, dev, _ = self.start_ocl_jobd()
            try:
                # The first job, by hand: its result is checked against
                # OpenBLAS below.
                secs, job, sizes = self.job_roundtrip(jobd, body)
                err = self.job_failed(job)
                if err:
                    raise BenchError("the sgemm job %s" % err)
                c64 = job["result"]["c"]["b64"]
                with open(cbin, "wb") as f:
                    f.write(base64.b64decode(c64))
                firsts.append(flop / secs / 1e9)
                # Then the timed ones with loadgen, as in every figure.
                res = self.loadgen("jobd_sgemm_rtt", jobd, "rtt",
                                   per_round * 60 + REQUEST_TIMEOUT,
                                   "--requests", per_round,
                                   "--body-file", body_file, "--wait", 60)
                if res["failed"]:
                    raise BenchError("sgemm jobs failed: %s" % res["states"])
                e2es.append(res)
                for _ in range(k_round if kbody else 0):
                    secs, job, _ = self.job_roundtrip(jobd, kbody)
                    err = self.job_failed(job)
                    if err:
                        raise BenchError("the generic sgemm job %s" % err)
                    res = job["result"]
                    kerns.append({"kernel_ms": res["timings"]["kernel_ms"],
                                  "build": res.get("build"),
                                  "device": res.get("device"),
                                  "seconds": secs})
                    outs = res.get("outputs") or []
                    o = outs[-1] if outs else None
                    if isinstance(o, dict):
                        o = o.get("b64")
                    same_c.append(o == c64)
                self.raw["sgemm_kernel_jobs"] = kerns
            finally:
                self.stop(jobd)
            log("i. sgemm n=%d, round %d/%d: OpenBLAS" % (n, i + 1,
                                                         self.repeat))
            blas.append(self.run_tool(
                "blas_anchor", "blas_anchor",
                [self.args.blas_anchor, "--n", n, "--a", abin, "--b", bbin,
                 "--repeat", 3, "--check", cbin], 60))
        self.raw["sgemm_first_job_gflops"] = firsts
        self.raw["sgemm_sizes"] = sizes
        anchor = median([g for x in blas for g in x["gflops_runs"]])
        aname = "OpenBLAS cblas_sgemm, %d threads" % blas[0]["threads"]
        # loadgen's p50 of per_round jobs is their median.
        e2e = median([flop / (x["p50_us"] / 1e6) / 1e9 for x in e2es])
        diff = max(x.get("max_rel_diff", 0) for x in blas)
        notes = ["first job on a fresh jobd (not counted): %.1f GFLOP/s"
                 % median(firsts),
                 "HTTP bytes per job: %.1f MB submitted, %.1f MB in the "
                 "202, %.1f MB in the final poll"
                 % (sizes["submit_bytes"] / 1e6,
                    sizes["submit_answer_bytes"] / 1e6,
                    sizes["final_answer_bytes"] / 1e6),
                 "c vs OpenBLAS: max difference %.2g of max |c|" % diff]
        met = None
        if diff > 1e-4 or any(x.get("check_nan") for x in blas):
            met = False
            notes.append("jobd's c differs from OpenBLAS's")
        self.figure("sgemm_e2e", "sgemm 1024 end to end", "GFLOP/s", e2e,
                    anchor, aname, e2e / anchor if anchor else None, None,
                    met, "; ".join(notes))
        if not kbody:
            self.figure_skip("sgemm_kernel", "sgemm 1024 kernel",
                             "GFLOP/s", "ratio >= %.2f" % TARGET_SGEMM_RATIO,
                             why_not)
            return
        kms = median([x["kernel_ms"] for x in kerns])
        kg = flop / (kms / 1e3) / 1e9
        notes = ["jobd's jd_sgemm_rb through the generic opencl task, "
                 "global %s local %s %s: kernel %.1f ms (median of %d)"
                 % (self.raw["sgemm_kernel_launch"]["global"],
                    self.raw["sgemm_kernel_launch"]["local"],
                    self.raw["sgemm_kernel_launch"]["options"] or
                    "(source defaults)", kms, len(kerns))]
        if not all(same_c):
            notes.append("its c is not bit-identical to the built-in "
                         "task's")
        if self.args.ocl_anchor and os.access(self.args.ocl_anchor, os.X_OK):
            srcfile = os.path.join(self.tmp, "builtin.cl")
            with open(srcfile, "w") as f:
                f.write(kern[0])
            lo = self.raw["sgemm_kernel_launch"]
            log("i. sgemm n=%d: the same kernel in ocl_anchor" % n)
            try:
                x = self.run_tool(
                    "ocl_anchor_sgemm", "ocl_anchor",
                    [self.args.ocl_anchor, "sgemm", "--source", srcfile,
                     "--kernel", "jd_sgemm_rb", "--options", lo["options"],
                     "--n", n, "--vw", vw, "--rm", rm, "--lx", lo["local"][0],
                     "--ly", lo["local"][1], "--repeat", 3], 60)
                notes.append("the same kernel in ocl_anchor: %.1f GFLOP/s"
                             % x["gflops"])
            except BenchError as e:
                notes.append("ocl_anchor sgemm: %s" % e)
        ratio = kg / anchor if anchor else None
        self.figure("sgemm_kernel", "sgemm 1024 kernel", "GFLOP/s", kg,
                    anchor, aname, ratio,
                    "ratio >= %.2f" % TARGET_SGEMM_RATIO,
                    ratio is not None and ratio >= TARGET_SGEMM_RATIO,
                    "; ".join(notes))

    def run_program_cache(self):
        """j. Time to the first result of a kernel jobd has never seen,
        of the same kernel again, and of it after a restart on the same
        state directory."""
        want = {"new": "compiled", "memory": "memory", "disk": "disk",
                "pause": "memory"}
        times = {k: [] for k in want}
        builds = {k: [] for k in want}
        restarts, gaps, first_launch = [], [], []
        wrong = []
        for i in range(self.repeat):
            # A source no cache has seen: jobd's, nor PoCL's own.
            nonce = "%d %d %s" % (os.getpid(), i, os.urandom(8).hex())
            body = json.dumps({"task": "opencl", "executor": "opencl",
                               "params": {
                                   "source": CACHE_KERNEL % nonce,
                                   "kernel": "bench_k", "global": 10,
                                   "args": [
                                       {"buffer": list(range(1, 11)),
                                        "dtype": "int32", "access": "read"},
                                       {"size": 10, "dtype": "int32",
                                        "access": "write"},
                                       {"scalar": 10, "dtype": "int32"}]}},
                              separators=(",", ":")).encode()
            log("j. program cache, round %d/%d: jobd, a new kernel twice"
                % (i + 1, self.repeat))
            jobd, dev, _ = self.start_ocl_jobd()
            state = jobd.argv[jobd.argv.index("--state-dir") + 1]
            runs = []
            try:
                for k in ("new", "memory"):
                    runs.append((k,) + self.job_roundtrip(jobd, body, 60))
                # Once more after a pause: the memory hit on an idle host
                # (the second job above comes right after the first, as a
                # client's next job would).
                time.sleep(PROGRAM_CACHE_PAUSE)
                runs.append(("pause",) + self.job_roundtrip(jobd, body, 60))
            finally:
                self.stop(jobd)
            log("j. program cache, round %d/%d: jobd restarted on the same "
                "state directory, the kernel again" % (i + 1, self.repeat))
            jobd, dev, ready = self.start_ocl_jobd(state)
            restarts.append(ready)
            try:
                runs.append(("disk",) + self.job_roundtrip(jobd, body, 60))
            finally:
                self.stop(jobd)
            for k, secs, job, _ in runs:
                err = self.job_failed(job)
                if err:
                    raise BenchError("the %s-kernel job %s" % (k, err))
                res = job.get("result") or {}
                outs = res.get("outputs") or [None]
                out = outs[-1] if isinstance(outs, list) else None
                if out != [x * x + 1 for x in range(1, 11)] and \
                        not (isinstance(out, dict) and
                             out.get("values") == [x * x + 1
                                                   for x in range(1, 11)]):
                    wrong.append("%s: %s" % (k, json.dumps(outs)[:120]))
                times[k].append(secs * 1e3)
                builds[k].append(res.get("build") or {})
            tm = {k: (job.get("result") or {}).get("timings") or {}
                  for k, _, job, _ in runs}
            try:
                # The host's clock (CLOCK_MONOTONIC on PoCL): from the new
                # kernel's end to the next job's kernel being queued, and
                # the new kernel's wait between queued and started.
                gaps.append((tm["memory"]["queued_ns"] -
                             tm["new"]["end_ns"]) / 1e6)
                first_launch.append((tm["new"]["start_ns"] -
                                     tm["new"]["queued_ns"]) / 1e6)
            except (KeyError, TypeError):
                pass
                self.raw.setdefault("program_cache", []).append(
                    {"case": k, "ms": secs * 1e3, "build": res.get("build"),
                     "timings": res.get("timings")})
        new = median(times["new"])
        rows = (("new", "program cache: new kernel"),
                ("memory", "program cache: same kernel"),
                ("disk", "program cache: after restart"))
        for k, name in rows:
            got = [b.get("cache") for b in builds[k]]
            bms = [b.get("ms") for b in builds[k]
                   if isinstance(b.get("ms"), (int, float))]
            notes = ["build.cache %s, build.ms %s"
                     % ("/".join(str(g) for g in got),
                        "/".join("%.2f" % x for x in bms))]
            if k == "new" and first_launch:
                notes.append("kernel queued to started %s ms (the first "
                             "launch of a new kernel)"
                             % "/".join("%.1f" % x for x in first_launch))
            if k == "memory":
                if gaps:
                    notes.append("the new kernel's end to this job's "
                                 "kernel being queued: %s ms"
                                 % "/".join("%.1f" % x for x in gaps))
                notes.append("the same kernel after a %.1f s pause: %s ms "
                             "(build.cache %s)"
                             % (PROGRAM_CACHE_PAUSE,
                                "/".join("%.1f" % x for x in times["pause"]),
                                "/".join(str(b.get("cache"))
                                         for b in builds["pause"])))
            if k == "disk":
                notes.append("restart to device ready %s s"
                             % "/".join("%.2f" % x for x in restarts))
            met = all(g == want[k] for g in got)
            if wrong:
                met = False
                notes.append("wrong outputs: %s" % "; ".join(wrong))
            v = median(times[k])
            self.figure("program_cache_%s" % k, name, "ms", v,
                        None if k == "new" else new,
                        None if k == "new" else "new kernel",
                        None if k == "new" else v / new,
                        'build.cache == "%s"' % want[k], met,
                        "; ".join(notes))

    # -- o. SSE --

    def sse_round(self, jobd, subscribe):
        """Submit SSE_JOBS echo jobs in batches of SSE_BATCH on one
        connection, as fast as the answers come. With `subscribe`, one
        GET /v1/events client (a thread of its own) reads the stream, and
        the round ends with the arrival of the last terminal event: events/s
        is what it received over the time from the first submission to
        then. Without, events/s is the three events per job jobd published
        over the time from the first submission to the latest finished_at,
        read from the last jobs once they have ended."""
        body = json.dumps({"jobs": [json.loads(ECHO_BODY)] * SSE_BATCH})
        timeout = self.budget.timeout(120)
        sub = None
        if subscribe:
            # A process of its own: in a thread of the driver it would wait
            # for the GIL while the driver submits.
            sub = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--sse-subscriber",
                 str(jobd.port), str(SSE_JOBS), str(timeout)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                preexec_fn=_die_with_parent)
            if sub.stdout.readline() != b"ready\n":
                sub.kill()
                sub.wait()
                raise BenchError("the subscriber did not start")
        c = http.client.HTTPConnection("127.0.0.1", jobd.port, timeout=timeout)
        ids = []

        def call(method, path, doc=None):
            c.request(method, path, body=doc,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status not in (200, 202):
                raise BenchError("%s %s: HTTP %d %s" % (method, path, r.status,
                                                        data[:200]))
            return json.loads(data)

        try:
            t0 = time.time()
            for _ in range(SSE_JOBS // SSE_BATCH):
                ids += call("POST", "/v1/jobs/batch", body)["ids"]
            if sub:
                try:
                    out, _ = sub.communicate(timeout=timeout + 5)
                except subprocess.TimeoutExpired:
                    raise BenchError("the subscriber did not get %d terminal "
                                     "events in %.0f s" % (SSE_JOBS, timeout))
                got = json.loads(out)
                if got.get("error"):
                    raise BenchError("subscriber: %s" % got["error"])
            else:
                # FIFO on two threads: the last jobs end last. (Not POST
                # /v1/wait on all of them: it checks every job at each
                # end, which would slow the run it measures.)
                ends = []
                for i in ids[-20:]:
                    job = call("GET", "/v1/jobs/%s?wait=%d" % (i, timeout))
                    if job["state"] != "succeeded":
                        raise BenchError("job %s: %s" % (i, job["state"]))
                    ends.append(rfc3339(job["finished_at"]))
                t_end = max(ends)
        finally:
            c.close()
            if sub and sub.poll() is None:
                sub.kill()
                sub.wait()
        if not sub:
            return {"jobs": len(ids), "seconds": t_end - t0,
                    "events_per_s": 3 * len(ids) / (t_end - t0)}
        events, lost, ends, last = (got["events"], got["lost"], got["ends"],
                                    got["last"])
        if not ends:
            raise BenchError("the subscriber got no terminal event")
        delays = sorted(t - rfc3339(at) for t, at, _ in ends)
        bad = [st for _, _, st in ends if st != "succeeded"]
        t_end = max(rfc3339(at) for _, at, _ in ends)
        return {"jobs": len(ids), "seconds": t_end - t0,
                "delivered_seconds": last - t0, "events": events,
                "lost": lost, "not_succeeded": len(bad),
                "events_per_s": events / (last - t0),
                "delay_p50_us": 1e6 * delays[len(delays) // 2],
                "delay_p99_us": 1e6 * delays[int(len(delays) * 0.99)],
                "delay_max_us": 1e6 * delays[-1]}

    def run_sse(self):
        """o. GET /v1/events: one subscriber while 10,000 jobs complete,
        beside the same jobs with no subscriber."""
        subs, bares = [], []
        for i in range(self.repeat):
            for subscribe in (False, True):
                log("o. SSE, round %d/%d: %d echo jobs in batches of %d, %s"
                    % (i + 1, self.repeat, SSE_JOBS, SSE_BATCH,
                       "one subscriber" if subscribe else "no subscriber"))
                jobd = self.start_jobd(2, extra=MEMORY_STORE)
                try:
                    res = self.sse_round(jobd, subscribe)
                finally:
                    self.stop(jobd)
                self.raw.setdefault("sse_subscriber" if subscribe
                                    else "sse_none", []).append(res)
                (subs if subscribe else bares).append(res)
        v = median([x["events_per_s"] for x in subs])
        a = median([x["events_per_s"] for x in bares])
        p50 = median([x["delay_p50_us"] for x in subs])
        p99 = median([x["delay_p99_us"] for x in subs])
        ratio = v / a if a > 0 else None
        notes = ["%d events per run (3 per job); jobs/s with the subscriber "
                 "%.0f, without %.0f" % (median([x["events"] for x in subs]),
                                         median([x["jobs"] / x["seconds"]
                                                 for x in subs]),
                                         median([x["jobs"] / x["seconds"]
                                                 for x in bares]))]
        met = ratio is not None and ratio >= TARGET_SSE_RATIO
        lost = [x["lost"] for x in subs if x["lost"]]
        short = [x["events"] for x in subs if x["events"] < 3 * x["jobs"]]
        failed = [x["not_succeeded"] for x in subs if x["not_succeeded"]]
        if lost or short or failed:
            met = False
            notes.append("lost events: %s; short runs (events): %s; jobs not "
                         "succeeded: %s" % (lost, short, failed))
        self.figure("sse_events", "SSE: events to 1 subscriber", "events/s",
                    v, a, "published, no subscriber", ratio,
                    "ratio >= %.2f" % TARGET_SSE_RATIO, met, "; ".join(notes))
        dnote = "max %.0f µs" % median([x["delay_max_us"] for x in subs])
        self.figure("sse_delay_p50", "SSE: job end to its event p50", "us",
                    p50, None, None, None, None, None, dnote)
        self.figure("sse_delay_p99", "SSE: job end to its event p99", "us",
                    p99, None, None, None,
                    "<= %d us" % TARGET_SSE_DELAY_P99_US,
                    p99 <= TARGET_SSE_DELAY_P99_US)

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
            ("opencl-square", "opencl_added_us",
             "opencl square: added per job p50", "us",
             "<= %d us" % TARGET_OCL_ADDED_US, self.run_ocl_overhead),
            ("sgemm", "sgemm_kernel", "sgemm 1024 kernel", "GFLOP/s",
             "ratio >= %.2f" % TARGET_SGEMM_RATIO, self.run_sgemm),
            ("program-cache", "program_cache_new",
             "program cache: new kernel", "ms", 'build.cache == "compiled"',
             self.run_program_cache),
            ("durability", "submit_durability_normal",
             "submit rate, durability normal", "req/s",
             "ratio >= %.2f" % TARGET_NORMAL_RATIO,
             self.run_durability_submit),
            ("recovery", "recovery_s", "restart, %s jobs stored"
             % "{:,}".format(100000 if self.quick else 1000000), "s",
             "< %d s" % TARGET_RECOVERY_S, self.run_recovery),
            ("db-size", "db_bytes_per_job", "database per finished job",
             "B", None, self.run_db_size),
            ("batch-e2e", "batch_e2e", "batch end to end", "jobs/s",
             "ratio >= %.2f" % TARGET_BATCH_E2E_RATIO, self.run_batch_e2e),
            ("sse", "sse_events", "SSE: events to 1 subscriber", "events/s",
             "ratio >= %.2f" % TARGET_SSE_RATIO, self.run_sse),
        ]
        # The other rows of a step, for a "skipped" row each.
        more_rows = {
            "opencl-square": [("opencl_square_e2e",
                               "opencl square: 64 connections", "jobs/s",
                               "ratio >= %.2f" % TARGET_OCL_TPUT_RATIO)],
            "sgemm": [("sgemm_e2e", "sgemm 1024 end to end", "GFLOP/s",
                       None)],
            "sse": [("sse_delay_p50", "SSE: job end to its event p50", "us",
                     None),
                    ("sse_delay_p99", "SSE: job end to its event p99", "us",
                     "<= %d us" % TARGET_SSE_DELAY_P99_US)],
            "program-cache": [
                ("program_cache_memory", "program cache: same kernel", "ms",
                 'build.cache == "memory"'),
                ("program_cache_disk", "program cache: after restart", "ms",
                 'build.cache == "disk"')],
        }
        for step, fid, name, unit, target, fn in steps:
            if only and step not in only:
                continue
            try:
                fn()
            except Skip as e:
                log("%s: skipped: %s" % (name, e))
                rows = [(fid, name, unit, target)] + more_rows.get(step, [])
                if step == "sgemm":
                    rows.reverse()  # end to end first, as when measured
                for row in rows:
                    self.figure_skip(*row, str(e))
            except BenchError as e:
                log("%s: ERROR: %s" % (name, e))
                self.figure_error(fid, name, unit, target, e)
            finally:
                self.stop_all()


class SseSubscriber:
    """Figure o's client of GET /v1/events, run in a process of its own
    (sse_subscriber_main). While the run lasts it only reads: each chunk is
    kept with the wall-clock time it arrived, and the terminal events in it
    are counted (bytes.count, on the chunk and the end of the one before,
    so that a marker cut in two counts once) until `n` have come. Frames
    are taken apart afterwards (results()), so that the subscriber's own
    work does not delay its reads. The stream is open (jobd has registered
    it) once __init__ has returned."""

    TERMINAL = (b'"state":"succeeded"', b'"state":"failed"',
                b'"state":"cancelled"', b'"state":"timed_out"')

    def __init__(self, port, n, timeout):
        self.n = n
        self.chunks = []
        self.ended = 0
        self.last = None
        self.conn = http.client.HTTPConnection("127.0.0.1", port,
                                               timeout=timeout)
        self.conn.request("GET", "/v1/events")
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise BenchError("GET /v1/events: HTTP %d" % self.resp.status)

    def run(self):
        tail = b""
        while self.ended < self.n:
            data = self.resp.read1(1 << 20)
            now = time.time()
            if not data:
                raise BenchError("the stream ended")
            self.chunks.append((now, data))
            both = tail + data
            self.ended += sum(both.count(t) - tail.count(t)
                              for t in self.TERMINAL)
            tail = both[-32:]
            self.last = now

    def frames(self):
        """(arrival time, frame) of every complete frame received."""
        buf = b""
        for t, data in self.chunks:
            parts = (buf + data).split(b"\n\n")
            buf = parts.pop()
            for f in parts:
                yield t, f

    def results(self):
        """Events (state frames) and lost events received, and (arrival,
        at, state) of each terminal event."""
        events = lost = 0
        ends = []
        for t, f in self.frames():
            if not f.startswith(b"id:"):
                continue  # retry:, keep-alive comments
            if b"\nevent: lost" in f:
                lost += 1
                continue
            events += 1
            if any(m in f for m in self.TERMINAL):
                ev = json.loads(f[f.index(b"\ndata: ") + 7:])
                ends.append((t, ev["at"], ev["state"]))
        return events, lost, ends


def sse_subscriber_main(port, n, timeout):
    """run.py --sse-subscriber PORT N TIMEOUT: says "ready" once the stream
    is open, then prints one JSON line of what it received."""
    _load_libc()
    _die_with_parent()
    try:
        sub = SseSubscriber(int(port), int(n), float(timeout))
        print("ready", flush=True)
        sub.run()
        events, lost, ends = sub.results()
        out = {"events": events, "lost": lost, "ends": ends, "last": sub.last}
    except Exception as e:  # reported by the driver
        out = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(out), flush=True)
    return 0


def rfc3339(s):
    """jobd's "2026-11-25T12:00:00.123456Z" as seconds since the epoch."""
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def ceil_div(a, b):
    return -(-a // b)


def ceil_to(a, b):
    return ceil_div(a, b) * b


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


def loadavg():
    """1/5/15-minute load averages: on a shared machine, how much else was
    running (anything above ~0.5 at the start is not the benchmark)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise BenchError("no VmRSS for pid %d" % pid)


def db_files(state):
    """Sizes of jobd's database files in a state directory: jobd.db, -wal,
    -shm (0 when absent), and total = jobd.db + -wal."""
    out = {}
    for k, suffix in (("db", ""), ("wal", "-wal"), ("shm", "-shm")):
        try:
            out[k] = os.stat(os.path.join(state, "jobd.db" + suffix)).st_size
        except OSError:
            out[k] = 0
    out["total"] = out["db"] + out["wal"]
    return out


def fs_type(path):
    """The file system type of the mount that holds path, from
    /proc/self/mounts, or None."""
    try:
        path = os.path.realpath(path)
        best, kind = "", None
        with open("/proc/self/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) \
                        and len(mnt) >= len(best):
                    best, kind = mnt, parts[2]
        return kind
    except OSError:
        return None


# ---- output ----------------------------------------------------------------

def fmt_num(v, unit):
    if v is None:
        return "—"
    if unit in ("req/s", "jobs/s", "events/s"):
        return "{:,.0f} {}".format(v, unit)
    if unit == "us":
        return "{:,.1f} µs".format(v)
    if unit == "B":
        return "{:,.0f} B".format(v)
    if unit == "ms":
        return "{:,.1f} ms".format(v)
    if unit == "GFLOP/s":
        return "{:,.1f} GFLOP/s".format(v)
    return "{:,.2f} {}".format(v, unit)


def fmt_target(t):
    if not t:
        return "—"
    return t.replace(">=", "≥").replace("<=", "≤").replace(" us", " µs")


def table(figures):
    out = ["| figure | value | anchor | ratio | target | met |",
           "|---|---|---|---|---|---|"]
    for f in figures:
        if f.get("skipped"):
            out.append("| %s | skipped: %s | — | — | %s | — |"
                       % (f["name"], f["skipped"].replace("|", "/"),
                          fmt_target(f["target"])))
            continue
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
    ap.add_argument("--ocl-anchor", metavar="PATH",
                    help="the ocl_anchor binary (default: ocl_anchor beside "
                         "--loadgen; figure h is skipped without it)")
    ap.add_argument("--blas-anchor", metavar="PATH",
                    help="the blas_anchor binary (default: blas_anchor "
                         "beside --loadgen; figure i is skipped without it)")
    ap.add_argument("--kernels-source", metavar="PATH",
                    default=os.path.join(os.path.dirname(here), "opencl",
                                         "kernels.c"),
                    help="jobd's opencl/kernels.c, for figure i's kernel "
                         "timing (default: beside bench/)")
    ap.add_argument("--quick", action="store_true",
                    help="smaller counts; the run takes at most 3 minutes")
    ap.add_argument("--out", default=os.path.join(here, "results.json"),
                    help="where to write the JSON results")
    ap.add_argument("--only", action="append", default=[],
                    choices=["submit", "e2e", "rtt", "memory",
                             "process-e2e", "exec", "process-rtt",
                             "opencl-square", "sgemm", "program-cache",
                             "durability", "recovery", "db-size",
                             "batch-e2e", "sse"],
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
    # The CMake build puts the anchors beside loadgen.
    build_dir = os.path.dirname(os.path.abspath(args.loadgen))
    if args.spawn_anchor is None:
        args.spawn_anchor = os.path.join(build_dir, "spawn_anchor")
    if args.ocl_anchor is None:
        args.ocl_anchor = os.path.join(build_dir, "ocl_anchor")
    if args.blas_anchor is None:
        args.blas_anchor = os.path.join(build_dir, "blas_anchor")
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
    load0 = loadavg()
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
                    "python": platform.python_version(),
                    "loadavg_start": load0, "loadavg_end": loadavg()},
        "jobd": os.path.abspath(args.jobd),
        "figures": bench.figures,
        "errors": bench.errors,
        "skipped": bench.skipped,
        "raw": bench.raw,
    }
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)

    print("## jobd benchmark%s — %d CPUs, %.0f s, medians of %d, load "
          "average %s at the start\n"
          % (" (quick)" if args.quick else "", os.cpu_count() or 0, elapsed,
             args.repeat, "%.2f" % load0[0] if load0 else "?"))
    print(table(bench.figures))
    notes = [f for f in bench.figures
             if (f["note"] or f["error"]) and not f.get("skipped")]
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
    if len(sys.argv) == 5 and sys.argv[1] == "--sse-subscriber":
        sys.exit(sse_subscriber_main(*sys.argv[2:]))
    sys.exit(main())
