#!/usr/bin/env python3
"""The official Python SDK used as its README says, against our TLS listener.

Usage: sdk_tls.py HOST:PORT CA_PEM_PATH CATALOG_JSON_PATH [IAM_TOKEN [EXPECTED_CODE]]

`yandexcloud.SDK(iam_token=..., endpoint=HOST:PORT, root_certificates=CA)`
with no endpoint override: the SDK asks our ApiEndpointService where compute
and container-registry live, opens TLS channels there (carrying the IAM
token) and calls ImageService.Get of both APIs. Each answer must equal the
catalog's first image of that API, or, when EXPECTED_CODE (a gRPC code name
such as UNAUTHENTICATED) is given, fail with that code; discovery is open
either way. IAM_TOKEN defaults to "t1". Prints one line per failure and a final
`sdk tls: N passed, M failed`.
"""

import json
import sys

import grpc
import yandexcloud
from google.protobuf import json_format
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
from yandex.cloud.endpoint.api_endpoint_service_pb2 import ListApiEndpointsRequest
from yandex.cloud.endpoint.api_endpoint_service_pb2_grpc import ApiEndpointServiceStub

TIMEOUT_SECONDS = 10


def main():
    if not 4 <= len(sys.argv) <= 6:
        print(__doc__, file=sys.stderr)
        return 2
    addr, ca_path, catalog_path = sys.argv[1:4]
    token = sys.argv[4] if len(sys.argv) > 4 else "t1"
    expected_code = sys.argv[5] if len(sys.argv) > 5 else "OK"
    with open(ca_path, "rb") as f:
        ca = f.read()
    with open(catalog_path, encoding="utf-8") as f:
        catalog = json.load(f)

    sdk = yandexcloud.SDK(iam_token=token, endpoint=addr, root_certificates=ca)
    passed = failed = 0

    def fail(what, detail):
        nonlocal failed
        failed += 1
        print(f"FAIL {what}: {detail}")

    for api, stub_cls, request_cls, message_cls, key in (
        (
            "compute",
            ComputeImageServiceStub,
            compute_service_pb2.GetImageRequest,
            compute_image_pb2.Image,
            "computeImages",
        ),
        (
            "containerregistry",
            RegistryImageServiceStub,
            registry_service_pb2.GetImageRequest,
            registry_image_pb2.Image,
            "containerRegistryImages",
        ),
    ):
        entry = catalog[key][0]
        expected = json_format.ParseDict(entry, message_cls())
        try:
            got = sdk.client(stub_cls).Get(request_cls(image_id=entry["id"]), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as err:
            if err.code().name == expected_code:
                passed += 1
            else:
                fail(f"{api} Get", f"{err.code().name}: {err.details()}")
            continue
        if expected_code != "OK":
            fail(f"{api} Get", f"answered, expected {expected_code}")
            continue
        if got != expected:
            fail(f"{api} Get", f"got {got}, expected {expected}")
        else:
            passed += 1

    # What the SDK resolved: every API it needed points at us.
    try:
        listed = sdk.client(ApiEndpointServiceStub).List(ListApiEndpointsRequest(), timeout=TIMEOUT_SECONDS)
        ids = {e.id: e.address for e in listed.endpoints}
        for needed in ("compute", "container-registry", "iam"):
            if ids.get(needed) != addr:
                fail("endpoints", f"{needed} is at {ids.get(needed)!r}, want {addr!r}")
            else:
                passed += 1
    except grpc.RpcError as err:
        fail("endpoints List", f"{err.code().name}: {err.details()}")

    print(f"sdk tls: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
