"""Cold start and memory of a function process, driven through the Lambda
Runtime API emulator in runtime_api.py, for the Rust `bootstrap` and the
Python comparison in python/ (BENCHMARKS.md records the results).

    python bench/functions.py --bootstrap target/release/bootstrap cold-start memory

Both sides get the same environment: the AWS adapters (DynamoDB, EventBridge
and SNS clients built at init) pointed at a moto server this script starts
(or MOTO_ENDPOINT), with static test credentials, so nothing leaves the
machine. Needs boto3 (it comes with moto in .tools/venv).

- cold start: exec of the process to its first response posted, one fresh
  process per run, Rust and Python runs interleaved so both see the same
  load; one discarded warm-up run each (page cache, __pycache__).
- memory: peak RSS (VmHWM) of one process after serving N invocations
  (sequential; moto's answer time grows with its tables, so no latency is
  reported from these runs).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from runtime_api import RuntimeApi

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
FIRST_ANSWER_WITHIN = 30  # seconds


def api_event(method, route, path, sub, group, body=None, query=None):
    """An HTTP API (payload 2.0) event after the JWT authorizer, as
    functions/tests/handlers/support builds them."""
    event = {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"accept": "application/json", "host": "api-id.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api-id",
            "domainName": "api-id.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "api-id",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "bench"},
            "requestId": f"req-{uuid.uuid4().hex}",
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": "22/Nov/2026:13:00:00 +0000",
            "timeEpoch": 1795352400000,
            "authorizer": {"jwt": {"claims": {"sub": sub, "cognito:groups": f"[{group}]", "token_use": "id"}, "scopes": None}},
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["headers"]["content-type"] = "application/json"
        event["body"] = json.dumps(body)
    return event


MENU = [{"name": "Margherita", "price": 900}, {"name": "Tiramisu", "price": 450}, {"name": "Espresso", "price": 250}]
REGISTER = api_event("POST", "/stores", "/stores", "owner-ada", "owner", {"name": "Luigi's", "region": "north", "menu": MENU})
# Refused by the body check, before any AWS call: what is left is the init.
REGISTER_NO_MENU = api_event("POST", "/stores", "/stores", "owner-ada", "owner", {"name": "Luigi's", "region": "north"})
LIST_STORES = api_event("GET", "/stores", "/stores", "customer-bob", "customer", query={"region": "bench-empty"})


# ------------------------------------------------------------------- moto


def start_moto(log):
    if os.environ.get("MOTO_ENDPOINT"):
        return os.environ["MOTO_ENDPOINT"], None
    binary = ROOT / ".tools/venv/bin/moto_server"
    if not binary.exists():
        sys.exit(f"moto is not installed ({binary}): run scripts/install-tools")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"moto server exited ({process.returncode}); see {log.name}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).read()
            return endpoint, process
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit(f"moto server did not answer on {endpoint} within 60 s")


def create_resources(endpoint):
    """The template's two tables, bus and topic, with names of their own."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    suffix = uuid.uuid4().hex[:8]
    events, views = f"bench-events-{suffix}", f"bench-views-{suffix}"
    dynamodb.create_table(
        TableName=events,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    dynamodb.create_table(
        TableName=views,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-partition",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"}, {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    bus = f"bench-bus-{suffix}"
    session.client("events", endpoint_url=endpoint).create_event_bus(Name=bus)
    topic = session.client("sns", endpoint_url=endpoint).create_topic(Name=f"bench-topic-{suffix}")["TopicArn"]
    return {"EVENT_TABLE": events, "VIEW_TABLE": views, "EVENT_BUS": bus, "NOTIFICATION_TOPIC": topic}


# --------------------------------------------------------------- processes


def environment(endpoint, resources, function, scratch):
    """What Lambda and template.yaml give a function, pointed at moto."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "FUNCTION": function,
        "FOOD_DELIVERY_ADAPTERS": "aws",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # No profile files and no instance metadata: nothing to look up.
        "AWS_CONFIG_FILE": str(scratch / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
    }
    env.update(resources)
    return env


class Function:
    """One function process serving a fresh emulator."""

    def __init__(self, command, env, log_path):
        self.api = RuntimeApi()
        self.log = open(log_path, "w")
        self.env = dict(env, AWS_LAMBDA_RUNTIME_API=self.api.address)
        self.command = command
        self.process = None
        self.started = None

    def start(self):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(self.command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def answer(self, expect):
        answer = self.api.answer(FIRST_ANSWER_WITHIN)
        if answer is None or answer.kind != "response" or answer.status() != expect:
            got = "nothing" if answer is None else f"{answer.kind} {answer.body[:300]}"
            self.stop()
            sys.exit(f"{' '.join(self.command)} should answer {expect}, got {got}; see {self.log.name}")
        return answer

    def peak_rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.api.close()
        self.log.close()


def cold_start(command, env, event, expect, log_path, warm_calls=5):
    """Milliseconds from spawning the process to its first response, and
    the median of the next `warm_calls` invocations of the same event in
    that process (`next` handed out to response posted): their difference
    is what the cold start itself adds."""
    function = Function(command, env, log_path)
    try:
        function.api.invoke(event)
        function.start()
        cold = (function.answer(expect).at - function.started) * 1000
        warm = []
        for _ in range(warm_calls):
            request_id = function.api.invoke(event)
            warm.append((function.answer(expect).at - function.api.handed_out[request_id]) * 1000)
        return cold, statistics.median(warm)
    finally:
        function.stop()


def serve(command, env, event, expect, invocations, log_path):
    """Peak RSS (KiB) after the first and after the last of `invocations`
    sequential invocations."""
    function = Function(command, env, log_path)
    try:
        function.start()
        after_first = None
        for n in range(invocations):
            function.api.invoke(event)
            function.answer(expect)
            if n == 0:
                after_first = function.peak_rss_kib()
        return after_first, function.peak_rss_kib()
    finally:
        function.stop()


# ---------------------------------------------------------------- reports


def percentile(values, percent):
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]


def run_cold_starts(sides, endpoint, resources, scratch, runs):
    variants = [
        ("register-store, refused before any AWS call (400)", REGISTER_NO_MENU, 400),
        ("register-store, stored: 2 reads + 1 transaction on DynamoDB/moto (201)", REGISTER, 201),
    ]
    results = []
    for label, event, expect in variants:
        samples = {name: ([], []) for name in sides}
        for run in range(runs + 1):
            for name, command in sides.items():  # interleaved: both see the same load
                env = environment(endpoint, resources, "register-store", scratch)
                cold, warm = cold_start(command, env, event, expect, scratch / f"{name}.log")
                if run > 0:  # the first run of each side only warms caches
                    samples[name][0].append(cold)
                    samples[name][1].append(warm)
        results.append((label, samples))
    print(f"\nCold start: exec to first response, {runs} runs each (ms); warm: the next 5 invocations in the same process")
    print("| first invocation | side | median | p90 | min | max | warm median | median - warm | python / rust (median) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    report = []
    for label, samples in results:
        medians = {name: statistics.median(cold) for name, (cold, _) in samples.items()}
        ratio = medians["python"] / medians["rust"] if "python" in medians else None
        for name, (cold, warm) in samples.items():
            row = {"variant": label, "side": name, "runs": len(cold), "median": medians[name], "p90": percentile(cold, 90)}
            row.update(min=min(cold), max=max(cold), warm_median=statistics.median(warm), samples=cold)
            report.append(row)
            shown = f"**{ratio:.1f}x**" if ratio and name == "python" else ""
            print(
                f"| {label} | {name} | {row['median']:.1f} | {row['p90']:.1f} | {row['min']:.1f} | {row['max']:.1f} "
                f"| {row['warm_median']:.1f} | {row['median'] - row['warm_median']:.1f} | {shown} |"
            )
    return report


def run_memory(sides, endpoint, scratch, invocations):
    cases = [("rust", "register-store", REGISTER, 201), ("rust", "queries", LIST_STORES, 200), ("python", "register-store", REGISTER, 201)]
    print(f"\nPeak RSS (VmHWM) of one process serving {invocations} sequential invocations, each case on tables of its own")
    print("| side | function | invocation | after the first (MiB) | after the last (MiB) |")
    print("| --- | --- | --- | ---: | ---: |")
    report = []
    for name, function, event, expect in cases:
        if name not in sides:
            continue
        env = environment(endpoint, create_resources(endpoint), function, scratch)
        first, last = serve(sides[name], env, event, expect, invocations, scratch / f"{name}-{function}.log")
        report.append({"side": name, "function": function, "route": event["routeKey"], "first_kib": first, "peak_kib": last})
        print(f"| {name} | {function} | {event['routeKey']} | {first / 1024:.1f} | {last / 1024:.1f} |")
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("steps", nargs="+", choices=["cold-start", "memory"])
    parser.add_argument("--bootstrap", required=True, help="the release bootstrap binary")
    parser.add_argument("--python", default=str(ROOT / ".tools/venv/bin/python"), help="a Python with boto3; '' for Rust only")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--out", help="write the figures as JSON here too")
    args = parser.parse_args()

    sides = {"rust": [str(Path(args.bootstrap).resolve())]}
    if args.python:
        sides["python"] = [args.python, str(ROOT / "bench/python/bootstrap.py")]
    scratch = Path(tempfile.mkdtemp(prefix="food-delivery-bench-"))
    with open(scratch / "moto.log", "w") as moto_log:
        endpoint, moto = start_moto(moto_log)
        try:
            report = {"moto": endpoint, "scratch": str(scratch)}
            if "cold-start" in args.steps:
                report["cold_start"] = run_cold_starts(sides, endpoint, create_resources(endpoint), scratch, args.runs)
            if "memory" in args.steps:
                report["memory"] = run_memory(sides, endpoint, scratch, args.invocations)
        finally:
            if moto:
                moto.kill()
                moto.wait()
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nlogs of the last runs: {scratch}")


if __name__ == "__main__":
    main()
