"""GET /metrics parses with the Prometheus client's own parser (Debian's
python3-prometheus-client), and its values match the jobs the test ran."""
import json
import subprocess
import unittest

from jobdtest import DaemonTest

PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"""


def parse(text):
    r = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=text, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"the Prometheus parser refused /metrics:\n{r.stderr}")
    return json.loads(r.stdout)


def value(samples, name, **labels):
    for lab, v in samples.get(name, []):
        if all(lab.get(k) == w for k, w in labels.items()):
            return v
    return None


class Metrics(DaemonTest):
    ARGS = ("--threads", "2", "--processes", "1")

    def test_metrics_parse_and_count_jobs(self):
        for i in range(3):
            self.d.wait(self.d.submit({"task": "echo", "params": {"value": i}})["id"])
        self.d.wait(self.d.submit({"task": "echo", "params": {"value": 1, "fail": "x"}})["id"])
        self.d.wait(self.d.submit({"task": "square", "executor": "process",
                                   "params": {"values": [2]}})["id"])
        self.d.request("GET", "/v1/jobs/nope")
        status, resp, body = self.d.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(resp.getheader("Content-Type").startswith("text/plain"))
        text = body.decode()
        self.assertNotRegex(text, r'id="[0-9a-f]{8}-')  # no job IDs in labels
        m = parse(text)
        self.assertEqual(value(m, "jobd_jobs_submitted_total", task="echo",
                               executor="thread"), 4)
        self.assertEqual(value(m, "jobd_jobs_finished_total", task="echo", executor="thread",
                               state="succeeded"), 3)
        self.assertEqual(value(m, "jobd_jobs_finished_total", task="echo", executor="thread",
                               state="failed"), 1)
        self.assertEqual(value(m, "jobd_jobs_finished_total", task="square",
                               executor="process", state="succeeded"), 1)
        self.assertEqual(value(m, "jobd_job_run_seconds_count", executor="thread"), 4)
        self.assertEqual(value(m, "jobd_job_wait_seconds_count", executor="process"), 1)
        self.assertEqual(value(m, "jobd_queue_depth", executor="thread"), 0)
        self.assertEqual(value(m, "jobd_process_workers_alive"), 1)
        self.assertGreaterEqual(value(m, "jobd_store_commit_seconds_count"), 5)
        self.assertEqual(value(m, "jobd_http_requests_total", route="/v1/jobs/{id}",
                               status="404"), 1)
        self.assertGreaterEqual(value(m, "jobd_http_requests_total", route="/v1/jobs",
                                      status="202"), 5)
        self.assertEqual(value(m, "jobd_ready"), 1)
        self.assertEqual(value(m, "jobd_build_info", version=self.version()), 1)

    def version(self):
        return self.d.request("GET", "/v1/health")[2]["version"]

    def test_ready(self):
        status, _, body = self.d.request("GET", "/v1/ready")
        self.assertEqual((status, body), (200, {"ready": True}))


if __name__ == "__main__":
    unittest.main()
