#!/usr/bin/env python3
"""Terraform's yandex_compute_image_iam_binding sequence through the official
Python SDK, with the roles of a tokens file deciding who may do it.

Usage: sdk_iam.py HOST:PORT CA_PEM_PATH FOLDER_ID OWNER_TOKEN EDITOR_TOKEN FRIEND_TOKEN

The owner (admin in the folder) creates an image; the friend (no roles) can't
read it and the editor can't change its bindings. Then, as the provider does:
ListAccessBindings with page_size 1000 following next_page_token, Set, and
Update in batches, each operation waited on by the SDK's own waiter. After
that the friend reads the image. Prints one JSON object of what it saw.
"""

import json
import sys

import grpc
import yandexcloud
from google.protobuf import json_format
from yandex.cloud.access.access_pb2 import (
    ADD,
    REMOVE,
    AccessBinding,
    AccessBindingDelta,
    AccessBindingsOperationResult,
    ListAccessBindingsRequest,
    SetAccessBindingsMetadata,
    SetAccessBindingsRequest,
    Subject,
    UpdateAccessBindingsMetadata,
    UpdateAccessBindingsRequest,
)
from yandex.cloud.compute.v1.image_pb2 import Image
from yandex.cloud.compute.v1.image_service_pb2 import (
    CreateImageMetadata,
    CreateImageRequest,
    GetImageRequest,
)
from yandex.cloud.compute.v1.image_service_pb2_grpc import ImageServiceStub

TIMEOUT = 20


def binding(role, subject_id, subject_type):
    return AccessBinding(role_id=role, subject=Subject(id=subject_id, type=subject_type))


def list_all(images, image_id):
    """Every binding, as the provider reads them: pages of 1000."""
    found, token = [], ""
    while True:
        page = images.ListAccessBindings(
            ListAccessBindingsRequest(resource_id=image_id, page_size=1000, page_token=token)
        )
        found.extend(json_format.MessageToDict(b) for b in page.access_bindings)
        if not page.next_page_token:
            return found
        token = page.next_page_token


def code_of(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as err:
        return err.code().name


def main():
    addr, ca_path, folder, owner_token, editor_token, friend_token = sys.argv[1:7]
    with open(ca_path, "rb") as f:
        ca = f.read()
    owner = yandexcloud.SDK(iam_token=owner_token, endpoint=addr, root_certificates=ca)
    editor = yandexcloud.SDK(iam_token=editor_token, endpoint=addr, root_certificates=ca)
    friend = yandexcloud.SDK(iam_token=friend_token, endpoint=addr, root_certificates=ca)
    images = owner.client(ImageServiceStub)
    seen = {}

    created = owner.create_operation_and_get_result(
        CreateImageRequest(folder_id=folder, name="shared-by-sdk", disk_id="fhmdisk"),
        service=ImageServiceStub,
        method_name="Create",
        response_type=Image,
        meta_type=CreateImageMetadata,
        timeout=TIMEOUT,
    )
    image_id = created.response.id
    read = lambda sdk: sdk.client(ImageServiceStub).Get(GetImageRequest(image_id=image_id))
    seen["friend_before"] = code_of(lambda: read(friend))
    seen["bindings_before"] = list_all(images, image_id)
    seen["editor_sets"] = code_of(
        lambda: editor.client(ImageServiceStub).SetAccessBindings(
            SetAccessBindingsRequest(resource_id=image_id, access_bindings=[])
        )
    )

    friend_uses = binding("compute.images.user", "ajefriend", "userAccount")
    team_views = binding("viewer", "ajeteam", "serviceAccount")
    setting = images.SetAccessBindings(
        SetAccessBindingsRequest(resource_id=image_id, access_bindings=[friend_uses, team_views])
    )
    done = owner.wait_operation_and_get_result(
        setting,
        response_type=AccessBindingsOperationResult,
        meta_type=SetAccessBindingsMetadata,
        timeout=TIMEOUT,
    )
    seen["set_meta"] = done.meta.resource_id
    seen["set_effective"] = len(done.response.effective_deltas)

    batches = [
        [AccessBindingDelta(action=ADD, access_binding=friend_uses),
         AccessBindingDelta(action=ADD, access_binding=binding("editor", "ajefriend", "userAccount"))],
        [AccessBindingDelta(action=REMOVE, access_binding=team_views)],
    ]
    seen["update_effective"] = []
    for batch in batches:
        updating = images.UpdateAccessBindings(
            UpdateAccessBindingsRequest(resource_id=image_id, access_binding_deltas=batch)
        )
        done = owner.wait_operation_and_get_result(
            updating,
            response_type=AccessBindingsOperationResult,
            meta_type=UpdateAccessBindingsMetadata,
            timeout=TIMEOUT,
        )
        seen["update_effective"].extend(
            json_format.MessageToDict(d) for d in done.response.effective_deltas
        )
    seen["bindings_after"] = list_all(images, image_id)
    seen["friend_after"] = code_of(lambda: read(friend))
    seen["friend_lists_bindings"] = code_of(lambda: list_all(friend.client(ImageServiceStub), image_id))
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
