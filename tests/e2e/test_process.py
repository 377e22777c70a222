"""The process executor against the real jobd: worker processes, exec jobs,
output capture, stopping process trees, crashes."""
import base64
import select
import json
import os
import signal
import threading
import time
import unittest

from jobdtest import Daemon, DaemonTest, pids_with_marker, zombies_of


def exec_job(command=None, argv=None, **kw):
    params = {}
    if command is not None:
        params["command"] = command
    if argv is not None:
        params["argv"] = argv
    params.update(kw.pop("params", {}))
    job = {"task": "exec", "params": params}
    job.update(kw)
    return job


class Exec(DaemonTest):
    ARGS = ("--processes", "2", "--threads", "2", "--kill-grace", "1")

    def run_exec(self, job, timeout=60):
        return self.d.wait(self.d.submit(job)["id"], timeout)

    def test_stdout_stderr_and_exit_code(self):
        job = self.run_exec(exec_job("echo out; echo err >&2; exit 3"))
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "exit_status")
        r = job["result"]
        self.assertEqual((r["exit_code"], r["signal"]), (3, None))
        self.assertEqual((r["stdout"], r["stderr"]), ("out\n", "err\n"))
        self.assertEqual((r["stdout_size"], r["stderr_size"]), (4, 4))
        self.assertEqual(job["worker"][:8], "process-")

    def test_success_and_argv(self):
        job = self.run_exec(exec_job(argv=["printf", "%s-%s", "a b", "c"]))
        self.assertEqual(job["state"], "succeeded")
        self.assertEqual(job["result"]["stdout"], "a b-c")
        self.assertEqual(job["result"]["exit_code"], 0)

    def test_signal(self):
        job = self.run_exec(exec_job("kill -SEGV $$"))
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["error"]["type"], "signal")
        self.assertEqual((job["result"]["signal"], job["result"]["signal_name"]),
                         (signal.SIGSEGV, "SIGSEGV"))
        self.assertIsNone(job["result"]["exit_code"])

    def test_env_cwd_stdin(self):
        job = self.run_exec(exec_job("echo $GREETING; pwd; cat; echo $JOBD_JOB_ID",
                                     params={"env": {"GREETING": "hi"}, "cwd": "/tmp",
                                             "stdin": "from stdin\n"}))
        self.assertEqual(job["state"], "succeeded", job)
        lines = job["result"]["stdout"].splitlines()
        self.assertEqual(lines[:3], ["hi", "/tmp", "from stdin"])
        self.assertEqual(lines[3], job["id"])
        raw = bytes(range(256))
        job = self.run_exec(exec_job(argv=["od", "-An", "-tx1", "-v"],
                                     params={"stdin": {"b64": base64.b64encode(raw).decode()}}))
        self.assertEqual(job["result"]["stdout"].split(), [f"{b:02x}" for b in raw])

    def test_clean_environment_and_no_inherited_fds(self):
        job = self.run_exec(exec_job("env; ls /proc/self/fd"))
        out = job["result"]["stdout"]
        self.assertIn("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", out)
        for leak in ("NOTIFY_SOCKET", "LISTEN_FDS", "JOBD_BIN", "ASAN_OPTIONS"):
            self.assertNotIn(leak, out)
        fds = [l for l in out.splitlines() if l.strip().isdigit()]
        # ls itself opens one directory fd beyond 0, 1, 2.
        self.assertLessEqual(len(fds), 4, out)

    def test_bad_input(self):
        bad = [
            (exec_job(argv=[]), "params.argv"),
            (exec_job(argv=["ls", 3]), "params.argv[1]"),
            (exec_job(argv=["ls"], params={"env": {"A": 1}}), "params.env.A"),
            (exec_job(argv=["ls"], params={"env": ["A=1"]}), "params.env"),
            (exec_job(argv=["ls"], params={"cwd": "relative/dir"}), "params.cwd"),
            (exec_job(argv=["ls"], command="ls"), "params.command"),
            ({"task": "exec", "params": {}}, "params.argv"),
            (exec_job(argv=["ls"], params={"stdin": "x" * (5 << 20)}), "params.stdin"),
            ({"task": "exec", "executor": "thread", "params": {"argv": ["ls"]}}, "executor"),
        ]
        for job, field in bad:
            with self.subTest(job=str(job)[:80]):
                status, _, problem = self.d.request("POST", "/v1/jobs", job)
                self.assertIn(status, (400, 413), problem)
                if field:
                    self.assertEqual(problem["field"], field)
        for job, words in ((exec_job(argv=["/no/such/program"]), "No such file"),
                           (exec_job(argv=["ls"], params={"cwd": "/no/such/dir"}), "/no/such/dir")):
            with self.subTest(job=job):
                done = self.run_exec(job, 30)
                self.assertEqual(done["state"], "failed")
                self.assertEqual(done["error"]["type"], "exec_failed")
                self.assertIn(words, done["error"]["message"])

    def tree(self, tag):
        # Three generations, each saying it is there before it sleeps.
        return (f"sh -c 'sh -c \"echo g3; sleep 300; echo {tag}\" & echo g2; sleep 301; "
                f"echo {tag}' & echo g1; sleep 302; echo {tag}")

    def wait_output(self, job_id, words, timeout=30):
        """Follow the job's stdout (long-polls) until every word has appeared."""
        got, offset = b"", 0
        deadline = time.monotonic() + timeout
        while not all(w.encode() in got for w in words):
            self.assertLess(time.monotonic(), deadline, f"output so far: {got!r}")
            _, resp, body = self.d.request(
                "GET", f"/v1/jobs/{job_id}/output/stdout?offset={offset}&wait=10")
            got += body
            offset += len(body)
            self.assertFalse(resp.getheader("X-Output-Complete") == "true" and not body,
                             f"job ended; output {got!r}")
        return got

    def test_cancel_kills_three_generations(self):
        tag = f"jobd-test-tree-{os.getpid()}-cancel"
        job = self.d.submit(exec_job(self.tree(tag)))
        self.wait_output(job["id"], ["g1", "g2", "g3"])
        status, _, done = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual((status, done["state"]), (200, "cancelled"))
        # Gone before the job reported cancelled.
        self.assertEqual(pids_with_marker(tag), [])

    def test_timeout_kills_three_generations(self):
        tag = f"jobd-test-tree-{os.getpid()}-timeout"
        job = self.d.submit(exec_job(self.tree(tag), timeout=1.5))
        self.wait_output(job["id"], ["g1", "g2", "g3"])
        done = self.d.wait(job["id"])
        self.assertEqual(done["state"], "timed_out")
        self.assertEqual(pids_with_marker(tag), [])

    def test_term_ignored_then_killed_after_grace(self):
        job = self.d.submit(exec_job("trap '' TERM; echo ready; sleep 300"))
        self.wait_output(job["id"], ["ready"])
        t0 = time.monotonic()
        status, _, done = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual(done["state"], "cancelled")
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)  # kill_grace = 1

    def test_setsid_escape_is_killed_with_cgroups(self):
        status, _, ex = self.d.request("GET", "/v1/executors")
        proc = [e for e in ex["executors"] if e["name"] == "process"][0]
        if not proc["cgroup"]:
            self.skipTest("no cgroup v2 here: setsid escapes are documented")
        tag = f"jobd-test-setsid-{os.getpid()}"
        done = self.run_exec(exec_job(f"setsid sh -c 'sleep 300; echo {tag}' & sleep 0.2"))
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(pids_with_marker(tag), [])

    def test_square_same_on_thread_and_process(self):
        params = {"values": [1.5, -2, 3e10, 7], "dtype": "float64"}
        a = self.d.wait(self.d.submit({"task": "square", "executor": "thread",
                                       "params": params})["id"])
        b = self.d.wait(self.d.submit({"task": "square", "executor": "process",
                                       "params": params})["id"])
        self.assertEqual(a["result"], b["result"])
        self.assertEqual(b["worker"][:8], "process-")
        for task, p in (("sum", {"values": [0.1, 0.2]}), ("primes", {"below": 10000}),
                        ("echo", {"value": {"x": [1, 0.30000000000000004]}}),
                        ("saxpy", {"a": 2, "x": [1, 2], "y": [3, 4]}),
                        ("sgemm", {"m": 1, "n": 1, "k": 2, "a": [1, 2], "b": [3, 4]})):
            with self.subTest(task=task):
                t = self.d.wait(self.d.submit({"task": task, "executor": "thread",
                                               "params": p})["id"])
                q = self.d.wait(self.d.submit({"task": task, "executor": "process",
                                               "params": p})["id"])
                self.assertEqual(t["result"], q["result"])

    def test_sleep_cancel_in_a_worker(self):
        job = self.d.submit({"task": "sleep", "executor": "process", "params": {"seconds": 300}})
        self.d.wait_running(job["id"])
        t0 = time.monotonic()
        status, _, done = self.d.request("POST", f"/v1/jobs/{job['id']}/cancel")
        self.assertEqual(done["state"], "cancelled")
        self.assertLess(time.monotonic() - t0, 1)

    def test_worker_killed_mid_job(self):
        job = self.d.submit({"task": "sleep", "executor": "process", "params": {"seconds": 300}})
        running = self.d.wait_running(job["id"])
        slot = int(running["worker"].split("-")[1])
        _, _, ex = self.d.request("GET", "/v1/executors")
        proc = [e for e in ex["executors"] if e["name"] == "process"][0]
        pid = proc["processes"][slot]["pid"]
        os.kill(pid, signal.SIGKILL)
        done = self.d.wait(job["id"])
        self.assertEqual(done["state"], "failed")
        self.assertEqual(done["error"]["type"], "worker_crashed")
        self.assertIn("SIGKILL", done["error"]["message"])
        # A new worker takes its place and runs the next job.
        nxt = self.d.wait(self.d.submit({"task": "echo", "executor": "process",
                                         "params": {"value": 1}})["id"])
        self.assertEqual(nxt["state"], "succeeded")
        self.assertEqual(zombies_of(self.d.proc.pid), [])

    def test_200_concurrent_exec_jobs_on_2_workers(self):
        ids = [self.d.submit(exec_job(argv=["echo", str(i)]))["id"] for i in range(200)]
        for i, job_id in enumerate(ids):
            job = self.d.wait(job_id)
            self.assertEqual(job["state"], "succeeded")
            self.assertEqual(job["result"]["stdout"], f"{i}\n")

    def test_output_follow_while_running(self):
        job = self.d.submit(exec_job("echo first; sleep 0.5; echo second"))
        # Long-poll the output: the first line arrives before the job ends.
        status, resp, body = self.d.request(
            "GET", f"/v1/jobs/{job['id']}/output/stdout?offset=0&wait=30")
        self.assertEqual(body, b"first\n")
        self.assertEqual(resp.getheader("X-Output-Complete"), "false")
        offset = len(body)
        got = body
        while True:
            status, resp, body = self.d.request(
                "GET", f"/v1/jobs/{job['id']}/output/stdout?offset={offset}&wait=30")
            got += body
            offset += len(body)
            if resp.getheader("X-Output-Complete") == "true" and not body:
                break
        self.assertEqual(got, b"first\nsecond\n")
        status, resp, body = self.d.request("GET", f"/v1/jobs/{job['id']}/output/stdout?offset=6")
        self.assertEqual(body, b"second\n")
        status, _, problem = self.d.request("GET", f"/v1/jobs/{job['id']}/output/stdout?offset=-1")
        self.assertEqual(status, 400)
        echo = self.d.submit({"task": "echo", "params": {"value": 1}})
        status, _, problem = self.d.request("GET", f"/v1/jobs/{echo['id']}/output/stdout")
        self.assertEqual(status, 404)


class WorkerLife(unittest.TestCase):
    def test_workers_hold_only_their_fds_and_die_with_jobd(self):
        d = Daemon("--processes", "2")
        try:
            job = d.wait(d.submit({"task": "echo", "executor": "process",
                                   "params": {"value": 1}})["id"])
            self.assertEqual(job["state"], "succeeded")
            _, _, ex = d.request("GET", "/v1/executors")
            proc = [e for e in ex["executors"] if e["name"] == "process"][0]
            pids = [p["pid"] for p in proc["processes"]]
            self.assertEqual(len(pids), 2)
            for pid in pids:
                self.assertEqual(sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd")),
                                 [0, 1, 2, 3])
            fds = [os.pidfd_open(pid) for pid in pids]
            d.proc.kill()  # SIGKILL: jobd gets no chance to clean up
            d.proc.wait()
            for fd in fds:  # a pidfd turns readable when its process ends
                r, _, _ = select.select([fd], [], [], 10)
                self.assertEqual(r, [fd], "a worker outlived jobd")
                os.close(fd)
        finally:
            d.cleanup()


class OutputLimit(DaemonTest):
    ARGS = ("--processes", "1", "--output-limit", "1M")

    def test_10_mib_with_1_mib_limit(self):
        job = self.d.wait(self.d.submit(exec_job(
            "head -c 10485760 /dev/zero | tr '\\0' x; echo done >&2"))["id"])
        self.assertEqual(job["state"], "succeeded", job)
        r = job["result"]
        self.assertEqual(r["stdout_size"], 10 << 20)
        self.assertTrue(r["stdout_truncated"])
        self.assertEqual(len(r["stdout"]), 64 * 1024)
        self.assertEqual(r["stderr"], "done\n")
        status, resp, body = self.d.request("GET", f"/v1/jobs/{job['id']}/output/stdout")
        self.assertEqual(len(body), 1 << 20)
        self.assertEqual(resp.getheader("X-Output-Truncated"), "true")
        self.assertEqual(resp.getheader("X-Output-Total"), str(10 << 20))


class Limits(DaemonTest):
    ARGS = ("--processes", "1", "--job-open-files", "64", "--job-cpu-limit", "30")

    def test_limits_from_config_and_job(self):
        job = self.d.wait(self.d.submit(exec_job("ulimit -n; ulimit -t"))["id"])
        self.assertEqual(job["result"]["stdout"].split(), ["64", "30"])
        job = self.d.wait(self.d.submit(exec_job(
            "ulimit -n; ulimit -v", params={"limits": {"open_files": 32,
                                                       "memory": 512 << 20}}))["id"])
        self.assertEqual(job["result"]["stdout"].split(), ["32", str(512 << 10)])
        status, _, problem = self.d.request("POST", "/v1/jobs", exec_job(
            argv=["true"], params={"limits": {"open_files": 1000}}))
        self.assertEqual((status, problem["field"]), (400, "params.limits.open_files"))
        status, _, problem = self.d.request("POST", "/v1/jobs", exec_job(
            argv=["true"], params={"limits": {"stack": 1}}))
        self.assertEqual((status, problem["field"]), (400, "params.limits.stack"))

    def test_cpu_limit_kills_a_spinner(self):
        job = self.d.wait(self.d.submit(exec_job(
            "while :; do :; done", params={"limits": {"cpu_seconds": 1}}))["id"])
        self.assertEqual(job["state"], "failed")
        self.assertEqual(job["result"]["signal_name"], "SIGXCPU")


class ExecDisabled(DaemonTest):
    CONFIG = "[process]\nallow_exec = no\n"

    def test_403(self):
        status, _, problem = self.d.request("POST", "/v1/jobs", exec_job(argv=["true"]))
        self.assertEqual(status, 403)
        self.assertIn("allow_exec", problem["detail"])
        # Function tasks still run in workers.
        job = self.d.wait(self.d.submit({"task": "echo", "executor": "process",
                                         "params": {"value": 1}})["id"])
        self.assertEqual(job["state"], "succeeded")


class Stability(DaemonTest):
    ARGS = ("--processes", "2", "--max-jobs-per-worker", "100")

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.d.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.d.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def test_1000_jobs_no_zombies_stable_fds(self):
        def batch(n):
            ids = [self.d.submit(exec_job(argv=["true"]) if i % 2 else
                                 {"task": "echo", "executor": "process",
                                  "params": {"value": i}})["id"] for i in range(n)]
            for i in ids:
                self.assertEqual(self.d.wait(i)["state"], "succeeded")
        batch(100)  # warm up: workers recycled once, buffers grown
        fds = self.fd_count()
        batch(1000)
        self.assertLessEqual(self.fd_count(), fds + 2)
        self.assertEqual(zombies_of(self.d.proc.pid), [])
        _, _, ex = self.d.request("GET", "/v1/executors")
        proc = [e for e in ex["executors"] if e["name"] == "process"][0]
        self.assertGreaterEqual(proc["restarts"], 10)  # recycled every 100 jobs
        self.assertEqual(proc["crashes"], 0)


if __name__ == "__main__":
    unittest.main()
