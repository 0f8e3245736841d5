#!/usr/bin/env python3
"""Checks the REST face's JSON against protobuf's reference implementation.

Usage: rest_json.py BASE_URL CATALOG_JSON_PATH

For every image in the catalog (both APIs), one List page and a few error
answers, the body is parsed strictly (unknown fields are errors) by
google.protobuf.json_format into the official SDK's message class, printed
again with json_format.MessageToJson, and the two must be the same bytes once
whitespace is removed (and map keys sorted: their order is unspecified). That pins field names, order, int64 strings, enum names,
timestamp digits, empty oneof members and omitted defaults to the reference.
Prints one line per failure and `rest json: N passed, M failed`.
"""

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401 - registers the detail types for Any
from google.rpc import status_pb2
from yandex.cloud.compute.v1 import image_pb2 as compute_image_pb2
from yandex.cloud.compute.v1 import image_service_pb2 as compute_service_pb2
from yandex.cloud.containerregistry.v1 import image_pb2 as registry_image_pb2

TIMEOUT_SECONDS = 10

# Map fields: proto3 JSON leaves the order of their keys unspecified (the
# reference prints them in whatever order it holds them), so both sides are
# compared with these objects' keys sorted. Everything else keeps its order.
MAP_FIELDS = {"labels"}


def canonical(body):
    """Compact JSON bytes with the keys of map fields sorted."""

    def walk(value, key=None):
        if isinstance(value, dict):
            items = [(k, walk(v, k)) for k, v in value.items()]
            if key in MAP_FIELDS:
                items.sort()
            return dict(items)
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return json.dumps(walk(json.loads(body)), separators=(",", ":"), ensure_ascii=False).encode()


def fetch(url):
    """Status, content type and raw body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.headers.get("content-type"), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("content-type"), err.read()


def reference_bytes(body, message_cls):
    """What the reference implementation prints for the message in `body`, compact."""
    message = json_format.Parse(body, message_cls(), ignore_unknown_fields=False)
    return canonical(json_format.MessageToJson(message, indent=None))


def main():
    base, catalog_path = sys.argv[1], sys.argv[2]
    with open(catalog_path, encoding="utf-8") as f:
        catalog = json.load(f)
    passed = failed = 0

    def check(what, url, message_cls, want_status, want_entry=None):
        nonlocal passed, failed
        status, content_type, body = fetch(base + url)
        problems = []
        if status != want_status:
            problems.append(f"HTTP {status}, expected {want_status}")
        if content_type != "application/json":
            problems.append(f"content-type {content_type!r}")
        try:
            reference = reference_bytes(body, message_cls)
            if canonical(body) != reference:
                problems.append(f"bytes differ:\n  ours:      {body!r}\n  reference: {reference!r}")
            if want_entry is not None:
                expected = json_format.ParseDict(want_entry, message_cls())
                if json_format.Parse(body, message_cls()) != expected:
                    problems.append("message differs from the catalog entry")
        except Exception as err:  # noqa: BLE001 - any parse failure is a finding
            problems.append(f"reference parser refused it: {err}")
        if problems:
            failed += 1
            print(f"FAIL {what}: " + "; ".join(problems))
        else:
            passed += 1

    for entry in catalog.get("computeImages", []):
        check(f"compute Get {entry['id']}", f"/compute/v1/images/{entry['id']}",
              compute_image_pb2.Image, 200, entry)
    for entry in catalog.get("containerRegistryImages", []):
        check(f"registry Get {entry['id']}", f"/container-registry/v1/images/{entry['id']}",
              registry_image_pb2.Image, 200, entry)
    folder = catalog["computeImages"][0]["folderId"]
    check("compute List", "/compute/v1/images?" + urllib.parse.urlencode(
        {"folderId": folder, "pageSize": 3}), compute_service_pb2.ListImagesResponse, 200)
    check("not found", "/compute/v1/images/fd8doesnotexist", status_pb2.Status, 404)
    check("invalid id", "/compute/v1/images/" + "x" * 51, status_pb2.Status, 400)
    check("unknown path", "/compute/v2/nothing", status_pb2.Status, 404)
    check("bad query", "/compute/v1/images?folderId=a&pageSize=abc", status_pb2.Status, 400)

    print(f"rest json: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
