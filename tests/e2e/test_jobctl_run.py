"""jobctl run and jobctl output against the real jobd: an exec job's stdout
and stderr streamed while it runs, its exit code passed on, Ctrl-C."""
import os
import signal
import subprocess
import tempfile
import threading
import unittest

from jobdtest import JOBCTL, DaemonTest, jobctl

UNKNOWN_ID = "0190a000-0000-7000-8000-000000000001"


class JobctlRun(DaemonTest):
    ARGS = ("--threads", "1", "--processes", "2")

    def ctl(self, *args, **kw):
        return jobctl(*args, url=self.d.url, **kw)

    def ctl_bytes(self, *args, timeout=60):
        """Run jobctl; stdout and stderr as bytes, for byte-exact checks."""
        return subprocess.run([JOBCTL, *args], capture_output=True, timeout=timeout,
                              env=dict(os.environ, JOBD_URL=self.d.url))

    def start(self, *args):
        """jobctl in the background, with a watchdog that kills it after 60 s
        so that a hung test fails instead of hanging."""
        p = subprocess.Popen([JOBCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, JOBD_URL=self.d.url))
        watchdog = threading.Timer(60, p.kill)
        watchdog.daemon = True
        watchdog.start()
        self.addCleanup(watchdog.cancel)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.addCleanup(p.wait)
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.stderr.close)
        return p

    def start_printing_id(self, *argv):
        """`jobctl run --print-id -- argv` in the background; its job's ID
        is the first line of its stderr."""
        p = self.start("run", "--print-id", "--", *argv)
        job_id = p.stderr.readline().decode().strip()
        self.assertRegex(job_id, r"^[0-9a-f-]{36}$")
        return p, job_id

    def test_exit_code_and_both_streams(self):
        r = self.ctl("run", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stdout, "out\n")
        self.assertEqual(r.stderr, "err\n")

    def test_success_exits_0(self):
        r = self.ctl("run", "--", "true")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_killed_by_signal_exits_128_plus_n(self):
        r = self.ctl("run", "--", "sh", "-c", "kill -9 $$")
        self.assertEqual(r.returncode, 137, r.stderr)

    def test_timeout_exits_124(self):
        r = self.ctl("run", "--timeout", "0.5", "--", "sleep", "30", timeout=30)
        self.assertEqual(r.returncode, 124, r.stderr)

    def test_output_streams_while_the_job_runs(self):
        p = self.start("run", "--", "sh", "-c", "echo first; sleep 2; echo second")
        self.assertEqual(p.stdout.readline(), b"first\n")
        self.assertIsNone(p.poll(), "'first' came only once the job had ended")
        self.assertEqual(p.stdout.read(), b"second\n")
        self.assertEqual(p.wait(30), 0)

    def test_interrupt_cancels_the_job(self):
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            with self.subTest(signal=sig.name):
                p, job_id = self.start_printing_id("sleep", "60")
                self.d.wait_running(job_id)
                p.send_signal(sig)
                self.assertEqual(p.wait(30), code)
                self.assertEqual(self.d.get(job_id)["state"], "cancelled")

    def test_interrupt_prints_the_last_output(self):
        # The job's answer to SIGTERM still reaches us after the Ctrl-C.
        p, job_id = self.start_printing_id(
            "sh", "-c", "trap 'echo bye; exit 1' TERM; echo ready; while :; do sleep 0.1; done")
        self.assertEqual(p.stdout.readline(), b"ready\n")
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.stdout.read(), b"bye\n")
        self.assertEqual(p.wait(30), 130)
        self.assertEqual(self.d.get(job_id)["state"], "cancelled")

    def test_env_and_cwd(self):
        r = self.ctl("run", "--env", "A=1", "--cwd", "/tmp", "--", "sh", "-c", "echo $A; pwd")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["1", os.path.realpath("/tmp")])

    def test_command_without_double_dash(self):
        r = self.ctl("run", "--env", "B=2", "sh", "-c", "echo $B $0", "--json")
        self.assertEqual((r.returncode, r.stdout), (0, "2 --json\n"), r.stderr)

    def test_stdin_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("line one\nline two\n")
        self.addCleanup(os.unlink, f.name)
        r = self.ctl("run", "--stdin-file", f.name, "--", "wc", "-l")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "2"), r.stderr)

    def test_large_output_in_order(self):
        r = self.ctl("run", "--", "sh", "-c", "seq 1 50000; seq 1 1000 >&2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "".join(f"{i}\n" for i in range(1, 50001)))
        self.assertEqual(r.stderr, "".join(f"{i}\n" for i in range(1, 1001)))

    def test_closed_pipe_cancels_and_exits_141(self):
        p, job_id = self.start_printing_id("sh", "-c", "seq 1 200000; sleep 60")
        self.assertEqual(p.stdout.readline(), b"1\n")
        p.stdout.close()
        self.assertEqual(p.wait(30), 141)
        self.assertEqual(self.d.get(job_id)["state"], "cancelled")

    def test_output_after_the_job_ended(self):
        script = r"printf 'one\ntwo\n\001\377 no newline'; printf 'warn\n' >&2; exit 2"
        r = self.ctl_bytes("run", "--print-id", "--", "sh", "-c", script)
        self.assertEqual(r.returncode, 2, r.stderr)
        job_id, _, err = r.stderr.partition(b"\n")
        job_id = job_id.decode()
        self.assertEqual(r.stdout, b"one\ntwo\n\001\377 no newline")
        self.assertEqual(err, b"warn\n")
        for args, want in ((("output", job_id), r.stdout),
                           (("output", job_id, "--follow"), r.stdout),
                           (("output", job_id, "--stderr"), b"warn\n"),
                           (("output", "--stderr", "--follow", job_id), b"warn\n")):
            with self.subTest(args=args):
                o = self.ctl_bytes(*args)
                self.assertEqual((o.returncode, o.stdout, o.stderr), (0, want, b""))

    def test_output_follow_until_the_job_ends(self):
        p, job_id = self.start_printing_id("sh", "-c", "echo a; sleep 1; echo b >&2; echo c")
        self.d.wait_running(job_id)
        o = self.ctl("output", job_id, "--follow")
        self.assertEqual((o.returncode, o.stdout), (0, "a\nc\n"), o.stderr)
        self.assertEqual(p.wait(30), 0)
        e = self.ctl("output", "--stderr", job_id, "--follow")
        self.assertEqual((e.returncode, e.stdout), (0, "b\n"), e.stderr)

    def test_output_of_unknown_or_non_exec_job_exits_3(self):
        r = self.ctl("output", UNKNOWN_ID)
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stderr.startswith("jobctl: "), r.stderr)
        job_id = self.ctl("submit", "echo", "--param", "value=1").stdout.strip()
        self.assertEqual(self.ctl("wait", job_id).returncode, 0)
        r = self.ctl("output", job_id, "--follow")
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stderr.startswith("jobctl: "), r.stderr)

    def test_usage_errors_exit_2(self):
        for args in (("run",), ("run", "--"), ("run", "--env", "novalue", "true"),
                     ("run", "--timeout", "0", "true"), ("output",),
                     ("output", "a", "b")):
            with self.subTest(args=args):
                self.assertEqual(self.ctl(*args).returncode, 2)


class JobctlRunExecDisabled(DaemonTest):
    ARGS = ("--threads", "1", "--processes", "1")
    CONFIG = "[process]\nallow_exec = no\n"

    def test_refused_exits_3_with_the_problem_detail(self):
        r = jobctl("run", "--", "true", url=self.d.url)
        self.assertEqual(r.returncode, 3)
        self.assertTrue(r.stderr.startswith("jobctl: "), r.stderr)
        self.assertIn("allow_exec", r.stderr)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
