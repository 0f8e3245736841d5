#!/usr/bin/env python3
"""Pages through List and calls GetLatestByFamily with the official Yandex Cloud Python SDK.

Usage: sdk_list.py HOST:PORT CATALOG_JSON_PATH

With the SDK's own generated stubs and message classes:
- compute List pages through every folder of the catalog (several page sizes,
  orders and a filter) and each page's images must be the catalog's entries,
  parsed into the SDK's Image class, in the expected order;
- compute GetLatestByFamily answers, for every family of every folder, the
  newest READY image (ties: smallest id), or NOT_FOUND with the API's message;
- container registry List pages through each folder (via the catalog's
  registries), each registry and each repository;
- invalid requests answer INVALID_ARGUMENT with a google.rpc.BadRequest detail
  naming the field, decoded with the SDK's google.rpc classes.
Prints one line per failure and a final `sdk: N passed, M failed`.
"""

import json
import sys

import grpc
import yandexcloud
from google.protobuf import json_format, text_format
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2, status_pb2
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
MAX_PAGES = 10_000


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}: {detail}")


def created_key(entry):
    text = entry.get("createdAt", entry.get("created_at"))
    if text is None:
        return (-(2**63), 0)
    ts = Timestamp()
    ts.FromJsonString(text)
    return (ts.seconds, ts.nanos)


def page_through(stub, request, what, results):
    """Every image of a List, page by page; None if a call failed."""
    images = []
    for _ in range(MAX_PAGES):
        try:
            page = stub.List(request, timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as err:
            results.check(False, what, f"{err.code().name}: {err.details()}")
            return None
        images.extend(page.images)
        if not page.next_page_token:
            return images
        size = request.page_size or 100
        if len(page.images) != size or len(page.next_page_token) > 100:
            results.check(
                False,
                what,
                f"a page of {len(page.images)} (want {size}) with token {page.next_page_token!r}",
            )
            return None
        request.page_token = page.next_page_token
    results.check(False, what, "paging did not end")
    return None


def compare(results, what, got, expected):
    if got is None:
        return
    if got == expected:
        results.check(True, what)
        return
    got_ids = [image.id for image in got]
    expected_ids = [image.id for image in expected]
    if got_ids != expected_ids:
        results.check(False, what, f"ids\n  got      {got_ids}\n  expected {expected_ids}")
        return
    for g, e in zip(got, expected):
        if g != e:
            shown = [text_format.MessageToString(m, print_unknown_fields=True) for m in (g, e)]
            results.check(False, what, f"\n--- got ---\n{shown[0]}--- expected ---\n{shown[1]}")
            return


def bad_request_field(err):
    """The field of the BadRequest detail in an error's grpc-status-details-bin, if any."""
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    return [v.field for v in bad_request.field_violations]
    return None


def check_invalid(results, what, call, request, field):
    try:
        got = call(request, timeout=TIMEOUT_SECONDS)
    except grpc.RpcError as err:
        fields = bad_request_field(err)
        results.check(
            err.code() == grpc.StatusCode.INVALID_ARGUMENT and fields == [field],
            what,
            f"{err.code().name} {err.details()!r}, BadRequest fields {fields}, want {field}",
        )
        return
    results.check(False, what, f"succeeded with {got}, want INVALID_ARGUMENT")


def check_compute(results, stub, entries):
    images = [(entry, json_format.ParseDict(entry, compute_image_pb2.Image())) for entry in entries]
    folders = sorted({image.folder_id for _, image in images if image.folder_id})
    if not folders:
        results.check(False, "compute", "the catalog has no compute folders to list")
    for folder in folders:
        in_folder = [(e, i) for e, i in images if i.folder_id == folder]
        by_id = [i for _, i in sorted(in_folder, key=lambda p: p[1].id)]
        for page_size in (1, 3, 0):
            request = compute_service_pb2.ListImagesRequest(folder_id=folder, page_size=page_size)
            got = page_through(stub, request, f"compute List {folder} by {page_size}", results)
            compare(results, f"compute List {folder} by {page_size}", got, by_id)

        # Newest first: created_at descending, ties by id ascending (two stable sorts).
        newest_first = sorted(in_folder, key=lambda p: p[1].id)
        newest_first = [i for _, i in sorted(newest_first, key=lambda p: created_key(p[0]), reverse=True)]
        request = compute_service_pb2.ListImagesRequest(folder_id=folder, page_size=2, order_by="createdAt desc")
        got = page_through(stub, request, f"compute List {folder} createdAt desc", results)
        compare(results, f"compute List {folder} createdAt desc", got, newest_first)

        ready = [i for i in by_id if i.status == compute_image_pb2.Image.Status.READY]
        request = compute_service_pb2.ListImagesRequest(folder_id=folder, page_size=2, filter='status = "READY"')
        got = page_through(stub, request, f"compute List {folder} READY", results)
        compare(results, f"compute List {folder} READY", got, ready)

        for family in sorted({i.family for _, i in in_folder if i.family}):
            what = f"compute GetLatestByFamily {folder} {family}"
            candidates = [
                (e, i)
                for e, i in in_folder
                if i.family == family and i.status == compute_image_pb2.Image.Status.READY
            ]
            request = compute_service_pb2.GetImageLatestByFamilyRequest(folder_id=folder, family=family)
            try:
                got = stub.GetLatestByFamily(request, timeout=TIMEOUT_SECONDS)
            except grpc.RpcError as err:
                want = f"Image family {family} not found in folder {folder}"
                results.check(
                    not candidates and err.code() == grpc.StatusCode.NOT_FOUND and err.details() == want,
                    what,
                    f"{err.code().name}: {err.details()}",
                )
                continue
            if not candidates:
                results.check(False, what, f"found {got.id}, want NOT_FOUND")
                continue
            newest = max(created_key(e) for e, _ in candidates)
            expected = min((i for e, i in candidates if created_key(e) == newest), key=lambda i: i.id)
            results.check(got == expected, what, f"got {got.id}, want {expected.id}")

    folder = folders[0] if folders else "b1gnosuchf0lder00000"
    check_invalid(
        results,
        "compute List page_size 1001",
        stub.List,
        compute_service_pb2.ListImagesRequest(folder_id=folder, page_size=1001),
        "page_size",
    )
    check_invalid(
        results,
        "compute List unknown filter field",
        stub.List,
        compute_service_pb2.ListImagesRequest(folder_id=folder, filter='size = "1"'),
        "filter",
    )
    check_invalid(
        results,
        "compute List altered page_token",
        stub.List,
        compute_service_pb2.ListImagesRequest(folder_id=folder, page_token="AQAAAAAAAAAAYWJjAAAAAAAAAAA"),
        "page_token",
    )
    check_invalid(
        results,
        "compute GetLatestByFamily bad family",
        stub.GetLatestByFamily,
        compute_service_pb2.GetImageLatestByFamilyRequest(folder_id=folder, family="Not_A_Family"),
        "family",
    )


def check_container_registry(results, stub, entries, registries):
    images = [json_format.ParseDict(entry, registry_image_pb2.Image()) for entry in entries]

    def registry_of(image):
        return image.name.split("/", 1)[0] if "/" in image.name else None

    def listed(request, expected, what):
        got = page_through(stub, request, what, results)
        compare(results, what, got, sorted(expected, key=lambda i: i.id))

    folders = {}
    for registry in registries:
        folders.setdefault(registry.get("folderId", registry.get("folder_id")), set()).add(registry["id"])
    if not folders:
        results.check(False, "containerregistry", "the catalog has no container registries")
    for folder, ids in sorted(folders.items()):
        expected = [i for i in images if registry_of(i) in ids]
        listed(
            registry_service_pb2.ListImagesRequest(folder_id=folder, page_size=1),
            expected,
            f"containerregistry List folder {folder}",
        )
    for registry in sorted({registry_of(i) for i in images if registry_of(i)}):
        listed(
            registry_service_pb2.ListImagesRequest(registry_id=registry, page_size=2),
            [i for i in images if registry_of(i) == registry],
            f"containerregistry List registry {registry}",
        )
    for repository in sorted({i.name for i in images}):
        listed(
            registry_service_pb2.ListImagesRequest(repository_name=repository, folder_id="ignored"),
            [i for i in images if i.name == repository],
            f"containerregistry List repository {repository}",
        )
    check_invalid(
        results,
        "containerregistry List without a scope",
        stub.List,
        registry_service_pb2.ListImagesRequest(),
        "folder_id",
    )
    check_invalid(
        results,
        "containerregistry List bad order_by",
        stub.List,
        registry_service_pb2.ListImagesRequest(registry_id="crp1", order_by="size"),
        "order_by",
    )


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
    compute = sdk.client(ComputeImageServiceStub, endpoint=addr, insecure=True)
    registry = sdk.client(RegistryImageServiceStub, endpoint=addr, insecure=True)

    results = Results()
    check_compute(results, compute, catalog.get("computeImages", []))
    check_container_registry(
        results,
        registry,
        catalog.get("containerRegistryImages", []),
        catalog.get("containerRegistries", []),
    )
    print(f"sdk: {results.passed} passed, {results.failed} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
