"""1000 jobs from 8 concurrent clients, every result correct."""
import http.client
import json
import threading
import unittest

from jobdtest import DaemonTest


class Load(DaemonTest):
    ARGS = ("--threads", "2")

    def test_1000_jobs_8_clients(self):
        errors = []
        results = {}

        def client(n):
            conn = http.client.HTTPConnection(self.d.host, self.d.port, timeout=60)
            try:
                ids = []
                for i in range(125):
                    v = n * 1000 + i
                    task = ("square", {"values": [v, -v], "dtype": "int64"}) if i % 2 \
                        else ("echo", {"value": v})
                    conn.request("POST", "/v1/jobs",
                                 body=json.dumps({"task": task[0], "params": task[1]}),
                                 headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = json.loads(r.read())
                    if r.status != 202:
                        errors.append((r.status, body))
                        continue
                    ids.append((body["id"], task[0], v))
                for job_id, task, v in ids:
                    while True:
                        conn.request("GET", f"/v1/jobs/{job_id}?wait=30")
                        r = conn.getresponse()
                        job = json.loads(r.read())
                        if job["state"] not in ("queued", "running"):
                            break
                    results[job_id] = (job, task, v)
            except Exception as e:  # reported below, with the others
                errors.append(repr(e))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(240)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 1000)
        for job, task, v in results.values():
            self.assertEqual(job["state"], "succeeded", job)
            if task == "echo":
                self.assertEqual(job["result"], {"value": v})
            else:
                self.assertEqual(job["result"], {"values": [v * v, v * v]})
        self.assertEqual(len({j["id"] for j, _, _ in results.values()}), 1000)


if __name__ == "__main__":
    unittest.main()
