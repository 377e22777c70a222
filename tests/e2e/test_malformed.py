"""A corpus of malformed requests: each gets the right status and a problem
document, and jobd keeps serving good requests after all of them."""
import json
import socket
import unittest

from jobdtest import DaemonTest

J = "application/json"

# (name, method, path, headers, raw body, expected status, field or None)
CORPUS = [
    ("not json", "POST", "/v1/jobs", {"Content-Type": J}, b"{task: echo}", 400, None),
    ("truncated json", "POST", "/v1/jobs", {"Content-Type": J}, b'{"task": "echo"', 400, None),
    ("trailing garbage", "POST", "/v1/jobs", {"Content-Type": J}, b'{"task":"echo"} x', 400, None),
    ("empty body", "POST", "/v1/jobs", {"Content-Type": J}, b"", 400, None),
    ("body is array", "POST", "/v1/jobs", {"Content-Type": J}, b"[]", 400, None),
    ("body is string", "POST", "/v1/jobs", {"Content-Type": J}, b'"echo"', 400, None),
    ("body is null", "POST", "/v1/jobs", {"Content-Type": J}, b"null", 400, None),
    ("nul byte", "POST", "/v1/jobs", {"Content-Type": J}, b'{"task":"ec\x00ho"}', 400, None),
    ("missing task", "POST", "/v1/jobs", {"Content-Type": J}, b'{"params":{}}', 400, "task"),
    ("task not string", "POST", "/v1/jobs", {"Content-Type": J}, b'{"task":42}', 400, "task"),
    ("unknown task", "POST", "/v1/jobs", {"Content-Type": J}, b'{"task":"nope"}', 400, "task"),
    ("unknown field", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"colour":"red"}', 400, "colour"),
    ("duplicate field", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","task":"echo"}', 400, "task"),
    ("bad executor", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","executor":"gpu-cluster","params":{"value":1}}', 400, "executor"),
    ("executor wrong type", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","executor":1,"params":{"value":1}}', 400, "executor"),
    ("task has no opencl kernel", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","executor":"opencl","params":{"value":1}}', 400, "executor"),
    ("device for threads", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","executor":"thread","device":"cpu","params":{"values":[1]}}', 400,
     "device"),
    ("unknown device", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","device":"tpu-9","params":{"values":[1]}}', 400, "device"),
    ("params not object", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":[1]}', 400, "params"),
    ("priority too high", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"priority":101}', 400, "priority"),
    ("priority fractional", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"priority":1.5}', 400, "priority"),
    ("priority string", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"priority":"high"}', 400, "priority"),
    ("negative timeout", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"timeout":-1}', 400, "timeout"),
    ("labels not object", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"labels":["a"]}', 400, "labels"),
    ("label value number", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":1},"labels":{"a":1}}', 400, "labels.a"),
    ("echo without value", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{}}', 400, "params.value"),
    ("square values not array", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","params":{"values":"1,2"}}', 400, "params.values"),
    ("square values with string", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","params":{"values":[1,"2"]}}', 400, "params.values[1]"),
    ("square bad dtype", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","params":{"values":[1],"dtype":"float16"}}', 400, "params.dtype"),
    ("square bad base64", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"square","params":{"values":{"dtype":"float32","b64":"!!!!"}}}', 400,
     "params.values.b64"),
    ("saxpy length mismatch", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"saxpy","params":{"a":1,"x":[1,2],"y":[1]}}', 400, "params.y"),
    ("sgemm wrong sizes", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"sgemm","params":{"m":2,"n":2,"k":2,"a":[1,2,3],"b":[1,2,3,4]}}', 400,
     "params.a"),
    ("sleep negative", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"sleep","params":{"seconds":-1}}', 400, "params.seconds"),
    ("primes too big", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"primes","params":{"below":1e12}}', 400, "params.below"),
    ("unknown param", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"primes","params":{"below":10,"above":1}}', 400, "params.above"),
    ("text/plain body", "POST", "/v1/jobs", {"Content-Type": "text/plain"},
     b'{"task":"echo","params":{"value":1}}', 415, None),
    ("xml body", "POST", "/v1/jobs", {"Content-Type": "application/xml"}, b"<job/>", 415, None),
    ("deeply nested", "POST", "/v1/jobs", {"Content-Type": J},
     b'{"task":"echo","params":{"value":' + b"[" * 5000 + b"]" * 5000 + b"}}", 400, None),
    ("bad job id", "GET", "/v1/jobs/not-an-id", {}, None, 404, None),
    ("unknown job", "GET", "/v1/jobs/0190a000-0000-7000-8000-000000000001", {}, None, 404, None),
    ("cancel unknown", "POST", "/v1/jobs/0190a000-0000-7000-8000-000000000001/cancel", {},
     None, 404, None),
    ("unknown route", "GET", "/v2/jobs", {}, None, 404, None),
    ("delete jobs", "DELETE", "/v1/jobs", {}, None, 405, None),
    ("put health", "PUT", "/v1/health", {}, b"{}", 405, None),
    ("get cancel", "GET", "/v1/jobs/0190a000-0000-7000-8000-000000000001/cancel", {}, None,
     405, None),
    ("wait not a number", "GET", "/v1/jobs/{id}?wait=soon", {}, None, 400, "wait"),
    ("wait negative", "GET", "/v1/jobs/{id}?wait=-3", {}, None, 400, "wait"),
    ("until bad", "GET", "/v1/jobs/{id}?wait=1&until=later", {}, None, 400, "until"),
    ("list bad state", "GET", "/v1/jobs?state=done", {}, None, 400, "state"),
    ("list bad limit", "GET", "/v1/jobs?limit=0", {}, None, 400, "limit"),
    ("list huge limit", "GET", "/v1/jobs?limit=1000000", {}, None, 400, "limit"),
    ("list bad cursor", "GET", "/v1/jobs?cursor=xyz", {}, None, 400, "cursor"),
    ("list bad label", "GET", "/v1/jobs?label=novalue", {}, None, 400, "label"),
    ("list unknown task", "GET", "/v1/jobs?task=nope", {}, None, 400, "task"),
]


class Malformed(DaemonTest):
    ARGS = ("--threads", "1", "--max-body", "64K")

    def test_corpus(self):
        self.assertGreaterEqual(len(CORPUS), 30)
        good = self.d.submit({"task": "echo", "params": {"value": "ok"}})
        for name, method, path, headers, body, want, field in CORPUS:
            with self.subTest(name):
                path = path.replace("{id}", good["id"])
                status, resp, problem = self.d.request(method, path, headers=headers,
                                                       raw=body)
                self.assertEqual(status, want, problem)
                self.assertEqual(resp.getheader("Content-Type"), "application/problem+json")
                self.assertEqual(problem["status"], want)
                for key in ("type", "title", "detail"):
                    self.assertIsInstance(problem[key], str)
                    self.assertTrue(problem[key])
                if field is not None:
                    self.assertEqual(problem.get("field"), field, problem)
                if want == 405:
                    self.assertTrue(resp.getheader("Allow"))
        # Still serving, and the good job was not disturbed.
        self.assertEqual(self.d.wait(good["id"])["result"], {"value": "ok"})
        again = self.d.wait(self.d.submit({"task": "echo", "params": {"value": 2}})["id"])
        self.assertEqual(again["state"], "succeeded")

    def test_form_content_type_from_curl_is_accepted(self):
        status, _, job = self.d.request(
            "POST", "/v1/jobs", raw=b'{"task":"echo","params":{"value":1}}',
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 202)

    def test_raw_garbage_on_the_socket(self):
        for junk in (b"\x00\xff\x10garbage\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                     b"POST /v1/jobs HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                     b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 100000
                     + b"\r\n\r\n"):
            with socket.create_connection((self.d.host, self.d.port), timeout=10) as s:
                # jobd may answer (400, 431) and close before all of the junk
                # is sent: a reset or a closed socket here is fine.
                try:
                    s.sendall(junk)
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(65536):
                        pass
                except (OSError, socket.timeout):
                    pass
        status, _, health = self.d.request("GET", "/v1/health")
        self.assertEqual(status, 200)

    # A body above max_body is refused with 413 from its Content-Length,
    # before it is read. (Not in the corpus: a client that has already sent
    # the body can see the connection reset before it reads the answer.)
    def test_413_sent_before_body_is_read(self):
        # Declare a huge body and send none of it: the answer must come at once.
        with socket.create_connection((self.d.host, self.d.port), timeout=10) as s:
            s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000000000\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:100])


class QueueFull(DaemonTest):
    ARGS = ("--threads", "1", "--max-queued", "3")

    def test_429_with_retry_after(self):
        block = self.d.submit({"task": "sleep", "params": {"seconds": 60}})
        self.d.wait_running(block["id"])
        for i in range(3):
            self.d.submit({"task": "echo", "params": {"value": i}})
        status, resp, problem = self.d.request(
            "POST", "/v1/jobs", {"task": "echo", "params": {"value": 9}})
        self.assertEqual(status, 429)
        self.assertTrue(resp.getheader("Retry-After"))
        self.assertEqual(problem["status"], 429)
        self.d.request("POST", f"/v1/jobs/{block['id']}/cancel")
        # Once the queue drains, submissions are accepted again.
        _, _, page = self.d.request("GET", "/v1/jobs?limit=4")
        for j in page["jobs"]:
            self.d.wait(j["id"])
        self.d.submit({"task": "echo", "params": {"value": 10}})


if __name__ == "__main__":
    unittest.main()
