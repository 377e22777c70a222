"""The README's examples, run against a real jobd, so the README stays true.

Every ```sh block under "Walkthrough with curl" and "jobctl" is run with
bash (set -euo pipefail) against a test daemon: the address 127.0.0.1:7070
is replaced by the daemon's, and `jobctl` is the one just built. Comment
lines that hold a complete JSON document are expected output: each must
appear, as a line, in what the block printed.
"""
import json
import os
import re
import subprocess
import unittest

from jobdtest import JOBCTL, SOURCE_DIR, DaemonTest


def sh_blocks(section):
    with open(os.path.join(SOURCE_DIR, "README.md")) as f:
        text = f.read()
    m = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.S | re.M)
    if not m:
        raise AssertionError(f"README has no section '{section}'")
    return re.findall(r"```sh\n(.*?)```", m.group(1), re.S)


def expected_lines(block):
    out = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("# {") or line.startswith("# ["):
            try:
                json.loads(line[2:])
            except ValueError:
                continue  # an abridged example ("...")
            out.append(line[2:])
    return out


class Readme(DaemonTest):
    ARGS = ("--threads", "2")

    def run_block(self, block):
        script = block.replace("http://127.0.0.1:7070", self.d.url)
        script = script.replace("export PATH=$PWD/build:$PATH",
                                f"export PATH={os.path.dirname(os.path.abspath(JOBCTL))}:$PATH")
        env = dict(os.environ, JOBD_URL=self.d.url)
        r = subprocess.run(["bash", "-c", "set -euo pipefail\n" + script],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 0, f"script:\n{script}\nstdout:\n{r.stdout}\n"
                                          f"stderr:\n{r.stderr}")
        got = [line.strip() for line in r.stdout.splitlines()]
        for want in expected_lines(block):
            self.assertIn(want, got, f"README promises this output:\n{want}\n"
                                     f"the example printed:\n{r.stdout}")
        return r.stdout

    def test_curl_walkthrough(self):
        blocks = sh_blocks("Walkthrough with curl")
        self.assertGreaterEqual(len(blocks), 2)
        out = self.run_block(blocks[0])
        self.assertIn("HTTP/1.1 202 Accepted", out)
        self.assertIn("square", out)
        problem = self.run_block(blocks[1])
        doc = json.loads(problem)
        self.assertEqual((doc["status"], doc["field"]), (400, "params.values[1]"))

    def test_futures_examples(self):
        blocks = sh_blocks("Many jobs, chains and retries")
        self.assertEqual(len(blocks), 1)
        out = self.run_block(blocks[0])
        self.assertEqual(out.splitlines()[-1], "waiting")

    def test_jobctl_examples(self):
        blocks = sh_blocks("jobctl")
        self.assertEqual(len(blocks), 1)
        out = self.run_block(blocks[0])
        self.assertIn("primes", out)  # the list shows the jobs just run

    def test_two_commands_are_shown(self):
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            text = f.read()
        self.assertIn("make run", text)
        self.assertIn("make test", text)


if __name__ == "__main__":
    unittest.main()
