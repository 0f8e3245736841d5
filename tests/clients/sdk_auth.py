#!/usr/bin/env python3
"""Calls a server started with --auth-tokens through the official Yandex Cloud Python SDK.

Usage: sdk_auth.py HOST:PORT TOKEN

TOKEN may read folder b1gdemo7f0lder2qk8vh of the demo catalog only. Two ways
of sending it are checked: the SDK's own IAM-token credentials plugin (what
`yandexcloud.SDK(iam_token=...)` attaches to its channels; over plaintext
loopback gRPC only lets call credentials through local channel credentials),
and plain call metadata on an SDK client. Prints `sdk_auth: ok` when every
answer is the expected one.
"""

import sys

import grpc
import yandexcloud
from yandex.cloud.compute.v1 import image_service_pb2 as compute_service_pb2
from yandex.cloud.compute.v1.image_service_pb2_grpc import ImageServiceStub as ComputeStub
from yandex.cloud.containerregistry.v1 import image_service_pb2 as registry_service_pb2
from yandex.cloud.containerregistry.v1.image_service_pb2_grpc import (
    ImageServiceStub as RegistryStub,
)
from yandexcloud import _auth_plugin
from yandexcloud._auth_fabric import get_auth_token_requester

TIMEOUT_SECONDS = 10
OWN_IMAGE = "fd8o2pjpr9dfpl308ukq"
OTHER_FOLDER_IMAGE = "fd8e0i00mv2ba2rsl5re"
OWN_FOLDER = "b1gdemo7f0lder2qk8vh"


def expect_code(what, call, code):
    try:
        call()
    except grpc.RpcError as err:
        if err.code() != code:
            raise AssertionError(f"{what}: {err.code().name} ({err.details()}), want {code.name}")
        return
    raise AssertionError(f"{what}: succeeded, want {code.name}")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, token = sys.argv[1], sys.argv[2]

    # The SDK's IAM-token plugin, as SDK(iam_token=...) builds it.
    plugin = _auth_plugin.Credentials(get_auth_token_requester(iam_token=token), lambda: None)
    creds = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.metadata_call_credentials(plugin),
    )
    with grpc.secure_channel(addr, creds) as channel:
        compute = ComputeStub(channel)
        image = compute.Get(
            compute_service_pb2.GetImageRequest(image_id=OWN_IMAGE), timeout=TIMEOUT_SECONDS
        )
        assert image.folder_id == OWN_FOLDER, image
        images = compute.List(
            compute_service_pb2.ListImagesRequest(folder_id=OWN_FOLDER), timeout=TIMEOUT_SECONDS
        )
        assert images.images, "own folder listed no images"
        expect_code(
            "Get in another folder",
            lambda: compute.Get(
                compute_service_pb2.GetImageRequest(image_id=OTHER_FOLDER_IMAGE),
                timeout=TIMEOUT_SECONDS,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )
        registry = RegistryStub(channel)
        expect_code(
            "container List in another folder",
            lambda: registry.List(
                registry_service_pb2.ListImagesRequest(registry_id="crpd2nrqffpp3e93946m"),
                timeout=TIMEOUT_SECONDS,
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )

    # An SDK client over plaintext, the token as call metadata.
    sdk = yandexcloud.SDK()
    compute = sdk.client(ComputeStub, endpoint=addr, insecure=True)
    request = compute_service_pb2.GetImageRequest(image_id=OWN_IMAGE)
    image = compute.Get(
        request, metadata=[("authorization", f"Bearer {token}")], timeout=TIMEOUT_SECONDS
    )
    assert image.id == OWN_IMAGE, image
    expect_code(
        "Get without a token",
        lambda: compute.Get(request, timeout=TIMEOUT_SECONDS),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    expect_code(
        "Get with an unknown token",
        lambda: compute.Get(
            request, metadata=[("authorization", "Bearer nope")], timeout=TIMEOUT_SECONDS
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )
    print("sdk_auth: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
