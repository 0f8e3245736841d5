#!/usr/bin/env python3
"""The official Python SDK's own operation waiting against our TLS listener.

Usage: sdk_writes.py HOST:PORT CA_PEM_PATH FOLDER_ID

With endpoint discovery and TLS (which its waiter requires), unchanged:
create_operation_and_get_result for a Create and an Update, Get in between,
wait_operation_and_get_result for a Delete, Get NOT_FOUND after it, and a
Create that fails inside its operation (an ftp:// uri), which the waiter must
raise as its OperationError. Prints one JSON object of what it saw.
"""

import json
import sys

import grpc
import yandexcloud
from google.protobuf import json_format
from google.protobuf.empty_pb2 import Empty
from yandex.cloud.compute.v1.image_pb2 import Image
from yandex.cloud.compute.v1.image_service_pb2 import (
    CreateImageMetadata,
    CreateImageRequest,
    DeleteImageMetadata,
    DeleteImageRequest,
    GetImageRequest,
    ListImagesRequest,
    UpdateImageMetadata,
    UpdateImageRequest,
)
from yandex.cloud.compute.v1.image_service_pb2_grpc import ImageServiceStub
from google.protobuf.field_mask_pb2 import FieldMask
from yandexcloud.operations import OperationError

TIMEOUT = 20


def main():
    addr, ca_path, folder = sys.argv[1:4]
    with open(ca_path, "rb") as f:
        ca = f.read()
    sdk = yandexcloud.SDK(iam_token="t1", endpoint=addr, root_certificates=ca)
    images = sdk.client(ImageServiceStub)
    seen = {}

    created = sdk.create_operation_and_get_result(
        CreateImageRequest(
            folder_id=folder,
            name="sdk-image",
            description="made by the official SDK",
            labels={"env": "ci"},
            uri="https://storage.yandexcloud.net/bucket/disk.qcow2",
        ),
        service=ImageServiceStub,
        method_name="Create",
        response_type=Image,
        meta_type=CreateImageMetadata,
        timeout=TIMEOUT,
    )
    seen["created"] = json_format.MessageToDict(created.response)
    seen["created_meta"] = created.meta.image_id
    image_id = created.response.id
    seen["read"] = json_format.MessageToDict(images.Get(GetImageRequest(image_id=image_id)))

    updated = sdk.create_operation_and_get_result(
        UpdateImageRequest(
            image_id=image_id,
            update_mask=FieldMask(paths=["labels"]),
            labels={"env": "prod", "owner": "sdk"},
        ),
        service=ImageServiceStub,
        method_name="Update",
        response_type=Image,
        meta_type=UpdateImageMetadata,
        timeout=TIMEOUT,
    )
    seen["updated_labels"] = dict(updated.response.labels)

    deleting = images.Delete(DeleteImageRequest(image_id=image_id))
    deleted = sdk.wait_operation_and_get_result(
        deleting, response_type=Empty, meta_type=DeleteImageMetadata, timeout=TIMEOUT
    )
    seen["deleted_meta"] = deleted.meta.image_id
    try:
        images.Get(GetImageRequest(image_id=image_id))
        seen["after_delete"] = "OK"
    except grpc.RpcError as err:
        seen["after_delete"] = err.code().name

    try:
        sdk.create_operation_and_get_result(
            CreateImageRequest(folder_id=folder, name="sdk-bad", uri="ftp://example/disk.img"),
            service=ImageServiceStub,
            method_name="Create",
            response_type=Image,
            meta_type=CreateImageMetadata,
            timeout=TIMEOUT,
        )
        seen["failed_create"] = "no error"
    except OperationError as err:
        seen["failed_create"] = err.message if hasattr(err, "message") else str(err)
    listed = images.List(ListImagesRequest(folder_id=folder))
    seen["left"] = [image.name for image in listed.images]
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
