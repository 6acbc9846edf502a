"""Schemathesis hooks for scripts/fuzz (loaded through SCHEMATHESIS_HOOKS).

- `problem_json_refusals`: a check that every 4xx is an RFC 9457 problem.
- Path parameters, the region query and order bodies sometimes name the ids
  scripts/fuzz seeded (FUZZ_STORE_ID, FUZZ_ORDER_ID, FUZZ_REGION,
  FUZZ_MENU_ID), so requests reach past "not found" into the handlers; and
  Idempotency-Keys are made fresh (always in the coverage phase, half the
  time when fuzzing), so requests reach past "reused with another body".
- Every response's status is appended to FUZZ_TALLY, one line each, for the
  summary scripts/fuzz prints.
"""

import json
import os
import threading
import uuid

import schemathesis
from hypothesis import strategies as st

SEEDED_PATH = {"storeId": os.environ.get("FUZZ_STORE_ID"), "orderId": os.environ.get("FUZZ_ORDER_ID")}
REGION = os.environ.get("FUZZ_REGION")
MENU_ID = os.environ.get("FUZZ_MENU_ID")
TALLY = os.environ.get("FUZZ_TALLY")
_tally_lock = threading.Lock()


def _either(value, seeded):
    """The generated value or the seeded one, as Hypothesis chooses."""
    return st.sampled_from([value, seeded]) if seeded and value != seeded else st.just(value)


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return st.fixed_dictionaries({name: _either(value, SEEDED_PATH.get(name)) for name, value in path_parameters.items()})


@schemathesis.hook
def flatmap_query(context, query):
    if not isinstance(query, dict) or "region" not in query:
        return st.just(query)
    return st.fixed_dictionaries({name: _either(value, REGION) if name == "region" else st.just(value) for name, value in query.items()})


@schemathesis.hook
def flatmap_headers(context, headers):
    """Generated Idempotency-Keys shrink to a few short values, and every reuse
    with another body is a 422; a fresh key half the time lets requests reach
    the handlers."""
    if not isinstance(headers, dict) or "Idempotency-Key" not in headers:
        return st.just(headers)
    fresh = st.uuids().map(lambda key: {**headers, "Idempotency-Key": key.hex})
    return st.one_of(st.just(headers), fresh)


@schemathesis.hook
def flatmap_body(context, body):
    """Orders sometimes name the seeded store, its region and a real menu item."""
    operation = getattr(context, "operation", None)
    if operation is None or getattr(operation, "path", None) != "/orders" or not isinstance(body, dict):
        return st.just(body)
    seeded = dict(body)
    if "storeId" in seeded:
        seeded["storeId"] = SEEDED_PATH["storeId"]
    if "region" in seeded:
        seeded["region"] = REGION
    items = seeded.get("items")
    if isinstance(items, list):
        seeded["items"] = [dict(item, menuId=MENU_ID) if isinstance(item, dict) and "menuId" in item else item for item in items]
    return st.sampled_from([body, seeded])


@schemathesis.hook
def before_call(context, case, kwargs):
    """The coverage phase sends one valid Idempotency-Key with every mutation
    of a body, so all but the first would be 422 and never reach the body's
    checks: unless the key itself is under test, each gets a fresh one."""
    headers = case.headers or {}
    phase = getattr(getattr(case, "meta", None), "phase", None)
    if "Idempotency-Key" not in headers or phase is None or phase.name.value != "coverage":
        return
    if getattr(phase.data, "parameter", None) == "Idempotency-Key":
        return
    fresh = uuid.uuid4().hex
    case.headers["Idempotency-Key"] = fresh
    if isinstance(kwargs.get("headers"), dict) and "Idempotency-Key" in kwargs["headers"]:
        kwargs["headers"]["Idempotency-Key"] = fresh


@schemathesis.hook
def after_call(context, case, response):
    if TALLY:
        with _tally_lock, open(TALLY, "a", encoding="utf-8") as tally:
            tally.write(f"{response.status_code} {case.method} {case.operation.path}\n")


@schemathesis.check
def problem_json_refusals(ctx, response, case):
    """Every 4xx says what was wrong as application/problem+json {type, title, status, detail}."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    media_type = content_type.split(";")[0].strip().lower()
    if media_type != "application/problem+json":
        raise AssertionError(f"a {response.status_code} is {content_type or 'untyped'}, not application/problem+json")
    try:
        problem = json.loads(response.content)
    except ValueError as error:
        raise AssertionError(f"a {response.status_code} problem is not JSON: {error}") from None
    if not isinstance(problem, dict):
        raise AssertionError(f"a {response.status_code} problem is not an object: {problem!r}")
    missing = [field for field in ("type", "title", "status", "detail") if field not in problem]
    if missing:
        raise AssertionError(f"a {response.status_code} problem lacks {', '.join(missing)}: {problem!r}")
    if problem["status"] != response.status_code:
        raise AssertionError(f"a {response.status_code} problem says status {problem['status']}")
    return None
