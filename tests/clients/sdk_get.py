#!/usr/bin/env python3
"""Calls ImageService.Get of both APIs through the official Yandex Cloud Python SDK.

Usage: sdk_get.py HOST:PORT CATALOG_JSON_PATH

Every image in the catalog is fetched with the SDK's own generated stubs and
compared with the catalog entry parsed into the SDK's own message class, so
any difference in field numbers, types or JSON names between our .proto files
and the official ones shows up as a mismatch. Error answers are checked too.
Prints one line per failure and a final `sdk: N passed, M failed`.
"""

import json
import sys

import grpc
import yandexcloud
from google.protobuf import json_format, text_format
from yandex.cloud.compute.v1 import image_pb2 as compute_image_pb2
from yandex.cloud.compute.v1 import image_service_pb2 as compute_service_pb2
from yandex.cloud.compute.v1.image_service_pb2_grpc import (
    ImageServiceStub as ComputeImageServiceStub,
)
from yandex.cloud.containerregistry.v1 import image_pb2 as registry_image_pb2
from yandex.cloud.containerregistry.v1 import image_service_pb2 as registry_service_pb2
from yandex.cloud.containerregistry.v1.image_service_pb2_grpc import (
    ImageServiceStub as RegistryImageServiceStub,
)

# Keeps a hung server from hanging the test run.
TIMEOUT_SECONDS = 10

UNKNOWN_ID = "fd8doesnotexist000000"
TOO_LONG_ID = "x" * 51


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self):
        self.passed += 1

    def fail(self, what, detail):
        self.failed += 1
        print(f"FAIL {what}: {detail}")


def check_get(results, api, stub, request_cls, message_cls, entry):
    image_id = entry.get("id", "")
    what = f"{api} Get {image_id}"
    expected = json_format.ParseDict(entry, message_cls())
    try:
        got = stub.Get(request_cls(image_id=image_id), timeout=TIMEOUT_SECONDS)
    except grpc.RpcError as err:
        results.fail(what, f"{err.code().name}: {err.details()}")
        return
    if got == expected:
        results.ok()
    else:
        # Unknown fields make messages unequal, so show them: they mean a
        # field number the SDK doesn't know.
        shown = [text_format.MessageToString(m, print_unknown_fields=True) for m in (got, expected)]
        results.fail(what, f"\n--- got ---\n{shown[0]}--- expected ---\n{shown[1]}")


def check_error(results, api, stub, request_cls, image_id, code, message=None):
    what = f"{api} Get {image_id!r}"
    try:
        got = stub.Get(request_cls(image_id=image_id), timeout=TIMEOUT_SECONDS)
    except grpc.RpcError as err:
        if err.code() != code:
            results.fail(what, f"code {err.code().name} ({err.details()}), want {code.name}")
        elif message is not None and err.details() != message:
            results.fail(what, f"message {err.details()!r}, want {message!r}")
        else:
            results.ok()
        return
    results.fail(what, f"succeeded with {got}, want {code.name}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, catalog_path = sys.argv[1], sys.argv[2]
    with open(catalog_path, encoding="utf-8") as f:
        catalog = json.load(f)

    # An explicit endpoint with insecure=True makes the SDK open a plaintext
    # channel straight to it, skipping endpoint discovery and IAM.
    sdk = yandexcloud.SDK()
    apis = [
        (
            "compute",
            sdk.client(ComputeImageServiceStub, endpoint=addr, insecure=True),
            compute_service_pb2.GetImageRequest,
            compute_image_pb2.Image,
            catalog.get("computeImages", []),
        ),
        (
            "containerregistry",
            sdk.client(RegistryImageServiceStub, endpoint=addr, insecure=True),
            registry_service_pb2.GetImageRequest,
            registry_image_pb2.Image,
            catalog.get("containerRegistryImages", []),
        ),
    ]

    results = Results()
    for api, stub, request_cls, message_cls, entries in apis:
        if not entries:
            results.fail(api, "the catalog has no images of this API to check")
        for entry in entries:
            check_get(results, api, stub, request_cls, message_cls, entry)
        check_error(
            results,
            api,
            stub,
            request_cls,
            UNKNOWN_ID,
            grpc.StatusCode.NOT_FOUND,
            f"Image {UNKNOWN_ID} not found",
        )
        check_error(results, api, stub, request_cls, "", grpc.StatusCode.INVALID_ARGUMENT)
        check_error(results, api, stub, request_cls, TOO_LONG_ID, grpc.StatusCode.INVALID_ARGUMENT)

    print(f"sdk: {results.passed} passed, {results.failed} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
