"""A minimal Lambda runtime interface loop for handler.py, the fastest a
Python function can be driven: stdlib http.client, no awslambdaric. The
handler module is imported (and its boto3 clients built) before the first
`next`, as Lambda's init phase does.
"""

import http.client
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import handler  # noqa: E402

host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
runtime = http.client.HTTPConnection(host, int(port or 80))
BASE = "/2018-06-01/runtime/invocation"

while True:
    runtime.request("GET", f"{BASE}/next")
    reply = runtime.getresponse()
    request_id = reply.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(reply.read())
    try:
        result, outcome = json.dumps(handler.handler(event, None)), "response"
    except Exception as error:  # what the real runtime reports as a function error
        result, outcome = json.dumps({"errorMessage": str(error), "errorType": type(error).__name__}), "error"
    runtime.request("POST", f"{BASE}/{request_id}/{outcome}", body=result, headers={"Content-Type": "application/json"})
    runtime.getresponse().read()
