"""register-store and the store listing of `queries`, written as many teams
would write them in Python: boto3 clients built at import (DynamoDB,
EventBridge, SNS, as the Rust bootstrap builds all three), the same checks,
the same DynamoDB calls and item layout as the Rust handler. The comparison
side of the cold-start benchmark (BENCHMARKS.md); it is not deployed.
"""

import json
import os
import uuid
from datetime import datetime, timezone

import boto3

_session = boto3.session.Session()
dynamodb = _session.client("dynamodb")
events = _session.client("events")
sns = _session.client("sns")

EVENT_TABLE = os.environ["EVENT_TABLE"]
VIEW_TABLE = os.environ["VIEW_TABLE"]
EVENT_BUS = os.environ["EVENT_BUS"]
NOTIFICATION_TOPIC = os.environ["NOTIFICATION_TOPIC"]


class Problem(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def respond(status, body, content_type="application/json"):
    return {"statusCode": status, "headers": {"content-type": content_type}, "body": json.dumps(body)}


def problem(error):
    body = {"type": "about:blank", "title": "Problem", "status": error.status, "detail": error.detail}
    return respond(error.status, body, "application/problem+json")


def caller(event):
    claims = (((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt") or {}).get("claims")
    if not claims or not claims.get("sub"):
        raise Problem(401, "a valid bearer token is required")
    groups = claims.get("cognito:groups", "").strip("[]").replace(",", " ").split()
    role = next((g for g in groups if g in ("customer", "owner", "rider")), None)
    if role is None:
        raise Problem(403, "the token carries no customer, owner or rider group")
    return claims["sub"], role


def body(event):
    content_type = (event.get("headers") or {}).get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise Problem(415, "send the body as application/json")
    try:
        return json.loads(event.get("body") or "")
    except ValueError as error:
        raise Problem(400, f"invalid body: {error}")


def register_store(event):
    owner, role = caller(event)
    if role != "owner":
        raise Problem(403, "only a store owner may do this")
    data = body(event)
    if not isinstance(data, dict) or set(data) != {"name", "region", "menu"}:
        raise Problem(400, "invalid body: name, region and menu are required, and nothing else")
    name, region, menu = data["name"], data["region"], data["menu"]
    if not isinstance(name, str) or not name.strip() or not isinstance(region, str) or not region.strip():
        raise Problem(400, "name and region must not be empty")
    if not isinstance(menu, list) or not menu:
        raise Problem(400, "the menu must not be empty")
    items = []
    for n, entry in enumerate(menu, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not isinstance(entry.get("price"), int):
            raise Problem(400, "every menu entry needs a name and a price in cents")
        items.append({"id": entry.get("menuId") or f"m{n}", "name": entry["name"].strip(), "price": entry["price"]})

    store_id = f"store-{uuid.uuid4().hex}"
    pk = f"Store#{store_id}"
    # Load the stream (snapshot, then the events after it), as the Rust
    # command does before deciding: a fresh id finds nothing.
    snapshot = dynamodb.get_item(TableName=EVENT_TABLE, Key={"pk": {"S": pk}, "sk": {"N": "0"}}, ConsistentRead=True)
    after = int(snapshot["Item"]["version"]["N"]) if "Item" in snapshot else 0
    stored = dynamodb.query(
        TableName=EVENT_TABLE,
        KeyConditionExpression="pk = :pk AND sk > :after",
        ExpressionAttributeValues={":pk": {"S": pk}, ":after": {"N": str(after)}},
        ConsistentRead=True,
    )
    if stored["Items"] or after:
        raise Problem(409, f"store {store_id} is already registered")

    request_id = (event.get("requestContext") or {}).get("requestId") or str(uuid.uuid4())
    registered = {"storeId": store_id, "owner": owner, "name": name.strip(), "region": region.strip(), "menu": items}
    item = {
        "pk": {"S": pk},
        "sk": {"N": "1"},
        "eventId": {"S": f"Store-{store_id}-1"},
        "eventType": {"S": "StoreRegistered"},
        "eventVersion": {"N": "1"},
        "aggregateType": {"S": "Store"},
        "aggregateId": {"S": store_id},
        "correlationId": {"S": store_id},
        "causationId": {"S": f"request/{request_id}"},
        "time": {"S": datetime.now(timezone.utc).isoformat()},
        "data": {"S": json.dumps(registered)},
    }
    dynamodb.transact_write_items(
        TransactItems=[{"Put": {"TableName": EVENT_TABLE, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}]
    )
    answer = {"storeId": store_id, "name": registered["name"], "region": registered["region"], "open": True, "menu": items}
    response = respond(201, answer)
    response["headers"]["location"] = f"/stores/{store_id}"
    return response


def stores_in_region(event):
    caller(event)
    region = (event.get("queryStringParameters") or {}).get("region")
    if not region:
        raise Problem(400, "query parameter region is required")
    docs = []
    start = None
    while True:
        page = dynamodb.query(
            TableName=VIEW_TABLE,
            IndexName="by-partition",
            KeyConditionExpression="gsi1pk = :partition",
            ExpressionAttributeValues={":partition": {"S": f"catalog#{region}"}},
            **({"ExclusiveStartKey": start} if start else {}),
        )
        docs.extend(json.loads(item["body"]["S"]) for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return respond(200, {"region": region, "stores": docs})


ROUTES = {"POST /stores": register_store, "GET /stores": stores_in_region}


def handler(event, context):
    route = event.get("routeKey", "")
    try:
        function = ROUTES.get(route)
        if function is None:
            raise Problem(404, f"no route {route}")
        return function(event)
    except Problem as error:
        print(json.dumps({"level": "INFO", "status": error.status, "detail": error.detail, "message": "request refused"}))
        return problem(error)
