"""jobctl against the real jobd: output, --json, and the exit codes."""
import json
import os
import socket
import unittest

from jobdtest import DaemonTest, jobctl


class Jobctl(DaemonTest):
    ARGS = ("--threads", "2")

    def ctl(self, *args, **kw):
        return jobctl(*args, url=self.d.url, **kw)

    def test_seed_example(self):
        r = self.ctl("submit", "square", "--executor", "thread",
                     "--param", "values=[0,1,2,3,4,5,6,7,8,9]", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), {"values": [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]})

    def test_submit_prints_id_then_status_result_wait(self):
        r = self.ctl("submit", "echo", "--param", "value=hello", "--label", "k=v")
        self.assertEqual(r.returncode, 0, r.stderr)
        job_id = r.stdout.strip()
        self.assertRegex(job_id, r"^[0-9a-f-]{36}$")
        w = self.ctl("wait", job_id, "--timeout", "30")
        self.assertEqual(w.returncode, 0, w.stderr)
        res = self.ctl("result", job_id)
        self.assertEqual((res.returncode, json.loads(res.stdout)), (0, {"value": "hello"}))
        st = self.ctl("--json", "status", job_id)
        job = json.loads(st.stdout)
        self.assertEqual((job["state"], job["labels"]), ("succeeded", {"k": "v"}))

    def test_params_from_file_and_stdin(self):
        path = os.path.join(self.d.tmp, "p.json")
        with open(path, "w") as f:
            json.dump({"values": [1, 2, 3], "dtype": "int32"}, f)
        r = self.ctl("submit", "sum", "--params", "@" + path, "--wait")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, {"sum": 6}), r.stderr)

    def test_failed_job_exits_1(self):
        r = self.ctl("submit", "echo", "--param", "value=1", "--param", "fail=boom", "--wait")
        self.assertEqual(r.returncode, 1)
        self.assertIn("boom", r.stderr)

    def test_wait_timeout_exits_124_and_cancel(self):
        job_id = self.ctl("submit", "sleep", "--param", "seconds=60").stdout.strip()
        r = self.ctl("wait", job_id, "--timeout", "0.3")
        self.assertEqual(r.returncode, 124, r.stderr)
        c = self.ctl("cancel", job_id)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertEqual(self.d.get(job_id)["state"], "cancelled")
        # wait on a cancelled job: it ended other than succeeded.
        self.assertEqual(self.ctl("wait", job_id).returncode, 1)

    def test_wait_several(self):
        ids = [self.ctl("submit", "echo", "--param", f"value={i}").stdout.strip()
               for i in range(5)]
        r = self.ctl("wait", *ids, "--timeout", "30")
        self.assertEqual(r.returncode, 0, r.stderr)
        for i in ids:
            self.assertEqual(self.d.get(i)["state"], "succeeded")

    def test_usage_errors_exit_2(self):
        for args in (("submit",), ("frobnicate",), ("submit", "echo", "--priority", "x"),
                     ("wait",), ("list", "--limit", "many")):
            with self.subTest(args=args):
                self.assertEqual(self.ctl(*args).returncode, 2)

    def test_refused_exits_3(self):
        r = self.ctl("submit", "no-such-task")
        self.assertEqual(r.returncode, 3)
        self.assertIn("unknown task", r.stderr)
        r = self.ctl("status", "0190a000-0000-7000-8000-000000000001")
        self.assertEqual(r.returncode, 3)

    def test_unreachable_exits_3(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        r = jobctl("health", url=f"http://127.0.0.1:{port}")
        self.assertEqual(r.returncode, 3)
        self.assertIn(str(port), r.stderr)

    def test_service_commands(self):
        for cmd, word in (("executors", "thread"), ("tasks", "sgemm"), ("health", "ok")):
            r = self.ctl(cmd)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(word, r.stdout)
        r = self.ctl("--json", "tasks")
        self.assertIn("primes", [t["name"] for t in json.loads(r.stdout)["tasks"]])

    def test_list(self):
        self.ctl("submit", "echo", "--param", "value=1", "--wait")
        r = self.ctl("list", "--state", "succeeded", "--limit", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertTrue(lines[0].startswith("ID"))
        self.assertTrue(1 <= len(lines) - 1 <= 3)


if __name__ == "__main__":
    unittest.main()
