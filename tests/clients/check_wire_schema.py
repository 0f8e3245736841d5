#!/usr/bin/env python3
"""Compares our encoded FileDescriptorSet with the official SDK's descriptors.

Usage: check_wire_schema.py DESCRIPTOR_SET_PATH

For each of our files that mirrors an official one, the SDK's `*_pb2` module of
the same path supplies the official descriptor. Compared: package and syntax;
for every message (nested ones too) its fields by number (name, type,
type_name, label, JSON name, oneof, proto3_optional, default, options), its
oneofs and options; every enum value; every extension; every service method
(types, streaming, options). Options are compared as parsed messages with the
SDK's extensions loaded, so `google.api.http`, `yandex.cloud.api.operation`
and the `yandex.cloud` validation options are compared by value, not by bytes.

Prints one line per mismatch and a final `wire schema: N passed, M failed`,
counting each top-level declaration (and each file's header) once.
"""

import importlib
import sys

from google.protobuf import descriptor_pb2, text_format

# Loaded for their extensions, so that options parse into known fields rather
# than unknown ones and compare by value.
import google.api.annotations_pb2  # noqa: F401
import yandex.cloud.api.operation_pb2  # noqa: F401
import yandex.cloud.validation_pb2  # noqa: F401

# Our files that must match an official file: by prefix, or by exact name.
CHECKED_PREFIXES = (
    "yandex/cloud/compute/v1/",
    "yandex/cloud/containerregistry/v1/",
    "yandex/cloud/endpoint/",
)
CHECKED_FILES = {
    "yandex/cloud/validation.proto",
    "yandex/cloud/access/access.proto",
    "yandex/cloud/operation/operation.proto",
    "yandex/cloud/api/operation.proto",
    "google/api/http.proto",
    "google/api/annotations.proto",
    # Carried in the grpc-status-details-bin trailer of every error, so their
    # wire format matters to clients as much as the images' does.
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
}
# Files that must be in our set at all (the prefixes alone would accept none).
REQUIRED_FILES = CHECKED_FILES | {
    "yandex/cloud/compute/v1/image_service.proto",
    "yandex/cloud/containerregistry/v1/image_service.proto",
    "yandex/cloud/endpoint/api_endpoint_service.proto",
}
# Files of which we declare only what the served services need: only their
# top-level declarations may be missing.
SUBSET_FILES = {
    "yandex/cloud/access/access.proto",
    "google/rpc/error_details.proto",
}
OPTIONS_CLASSES = {
    "message": descriptor_pb2.MessageOptions,
    "field": descriptor_pb2.FieldOptions,
    "oneof": descriptor_pb2.OneofOptions,
    "enum": descriptor_pb2.EnumOptions,
    "enum value": descriptor_pb2.EnumValueOptions,
    "service": descriptor_pb2.ServiceOptions,
    "method": descriptor_pb2.MethodOptions,
}
FIELD_TYPE = descriptor_pb2.FieldDescriptorProto.Type
FIELD_LABEL = descriptor_pb2.FieldDescriptorProto.Label


def default_json_name(name):
    """protoc's JSON name for a field without an explicit json_name."""
    out, upper = [], False
    for ch in name:
        if ch == "_":
            upper = True
        elif upper:
            out.append(ch.upper())
            upper = False
        else:
            out.append(ch)
    return "".join(out)


def parsed_options(kind, holder):
    """The options of `holder` reparsed with every extension known, or None when unset."""
    if not holder.HasField("options"):
        return None
    options = OPTIONS_CLASSES[kind]()
    options.ParseFromString(holder.options.SerializeToString())
    return options


def options_text(options):
    if options is None:
        return "<none>"
    text = text_format.MessageToString(options, as_one_line=True, print_unknown_fields=True)
    return text or "<empty>"


class FileCheck:
    """Compares one of our files with the SDK's file of the same name."""

    def __init__(self, ours, theirs, sdk_pool):
        self.ours = ours
        self.theirs = theirs
        self.sdk_pool = sdk_pool
        self.subset = ours.name in SUBSET_FILES
        self.problems = []

    def take_problems(self):
        problems, self.problems = self.problems, []
        return problems

    def mismatch(self, path, detail):
        self.problems.append(f"MISMATCH {self.ours.name}: {path}: {detail}")

    def missing(self, path, detail):
        """An official declaration we lack."""
        self.mismatch(path, detail)

    def same(self, path, what, ours, theirs):
        if ours != theirs:
            self.mismatch(path, f"{what} is {ours!r}, official is {theirs!r}")

    def same_options(self, kind, path, ours_holder, theirs_holder):
        ours = parsed_options(kind, ours_holder)
        theirs = parsed_options(kind, theirs_holder)
        # Unset and empty options encode identically.
        if (ours or OPTIONS_CLASSES[kind]()) != (theirs or OPTIONS_CLASSES[kind]()):
            self.mismatch(
                path,
                f"{kind} options are {options_text(ours)}, official are {options_text(theirs)}",
            )

    def by_name(self, path, what, ours, theirs, compare):
        """Pairs nested declarations by name; extras fail, missing ones go to `missing`."""
        ours_by_name = {d.name: d for d in ours}
        theirs_by_name = {d.name: d for d in theirs}
        for name, decl in ours_by_name.items():
            if name not in theirs_by_name:
                self.mismatch(f"{path}{name}", f"{what} not in the official file")
            else:
                compare(f"{path}{name}", decl, theirs_by_name[name])
        for name in sorted(theirs_by_name.keys() - ours_by_name.keys()):
            self.missing(f"{path}{name}", f"official {what} missing from ours")

    def header(self):
        self.same("file", "package", self.ours.package, self.theirs.package)
        # An empty syntax means proto2 in a FileDescriptorProto.
        self.same(
            "file",
            "syntax",
            self.ours.syntax or "proto2",
            self.theirs.syntax or "proto2",
        )

    def message(self, path, ours, theirs):
        full_name = f"{self.ours.package}.{path}" if self.ours.package else path
        runtime = self.sdk_pool.FindMessageTypeByName(full_name)
        self.same_options("message", path, ours, theirs)

        ours_fields = {f.number: f for f in ours.field}
        theirs_fields = {f.number: f for f in theirs.field}
        for number in sorted(ours_fields.keys() | theirs_fields.keys()):
            field_path = f"{path} field {number}"
            if number not in theirs_fields:
                self.mismatch(field_path, f"field {ours_fields[number].name!r} not in the official message")
            elif number not in ours_fields:
                self.missing(field_path, f"official field {theirs_fields[number].name!r} missing from ours")
            else:
                self.field(
                    field_path,
                    ours,
                    ours_fields[number],
                    theirs,
                    theirs_fields[number],
                    runtime.fields_by_number[number].json_name,
                )

        self.by_name(f"{path}.", "oneof", ours.oneof_decl, theirs.oneof_decl, self.oneof)
        self.by_name(f"{path}.", "nested message", ours.nested_type, theirs.nested_type, self.message)
        self.by_name(f"{path}.", "nested enum", ours.enum_type, theirs.enum_type, self.enum)
        self.by_name(f"{path}.", "nested extension", ours.extension, theirs.extension, self.extension)

    def field(self, path, ours_msg, ours, theirs_msg, theirs, theirs_json_name):
        self.same(path, "name", ours.name, theirs.name)
        self.same(path, "type", FIELD_TYPE.Name(ours.type), FIELD_TYPE.Name(theirs.type))
        self.same(path, "type_name", ours.type_name, theirs.type_name)
        self.same(path, "label", FIELD_LABEL.Name(ours.label), FIELD_LABEL.Name(theirs.label))
        ours_json = ours.json_name if ours.HasField("json_name") else default_json_name(ours.name)
        self.same(path, "json_name", ours_json, theirs_json_name)
        self.same(path, "oneof", oneof_of(ours_msg, ours), oneof_of(theirs_msg, theirs))
        self.same(path, "proto3_optional", ours.proto3_optional, theirs.proto3_optional)
        self.same(path, "default_value", ours.default_value, theirs.default_value)
        self.same_options("field", path, ours, theirs)

    def oneof(self, path, ours, theirs):
        self.same_options("oneof", path, ours, theirs)

    def extension(self, path, ours, theirs):
        self.same(path, "number", ours.number, theirs.number)
        self.same(path, "extendee", ours.extendee, theirs.extendee)
        self.same(path, "type", FIELD_TYPE.Name(ours.type), FIELD_TYPE.Name(theirs.type))
        self.same(path, "type_name", ours.type_name, theirs.type_name)
        self.same(path, "label", FIELD_LABEL.Name(ours.label), FIELD_LABEL.Name(theirs.label))
        self.same_options("field", path, ours, theirs)

    def enum(self, path, ours, theirs):
        self.same_options("enum", path, ours, theirs)
        ours_values = {v.name: v for v in ours.value}
        theirs_values = {v.name: v for v in theirs.value}
        self.same(path, "value names", sorted(ours_values), sorted(theirs_values))
        for name in sorted(ours_values.keys() & theirs_values.keys()):
            value_path = f"{path}.{name}"
            self.same(value_path, "number", ours_values[name].number, theirs_values[name].number)
            self.same_options("enum value", value_path, ours_values[name], theirs_values[name])

    def service(self, path, ours, theirs):
        self.same_options("service", path, ours, theirs)
        self.by_name(f"{path}.", "method", ours.method, theirs.method, self.method)

    def method(self, path, ours, theirs):
        self.same(path, "input_type", ours.input_type, theirs.input_type)
        self.same(path, "output_type", ours.output_type, theirs.output_type)
        self.same(path, "client_streaming", ours.client_streaming, theirs.client_streaming)
        self.same(path, "server_streaming", ours.server_streaming, theirs.server_streaming)
        self.same_options("method", path, ours, theirs)


def oneof_of(message, field):
    """The name of the oneof a field belongs to, or None."""
    if not field.HasField("oneof_index"):
        return None
    return message.oneof_decl[field.oneof_index].name


def sdk_file(name):
    """The SDK's descriptor of `name` as a FileDescriptorProto, with its pool."""
    module = importlib.import_module(name.removesuffix(".proto").replace("/", ".") + "_pb2")
    # serialized_pb is the descriptor exactly as protoc produced it for the SDK.
    theirs = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    return theirs, module.DESCRIPTOR.pool


def is_checked(name):
    return name in CHECKED_FILES or name.startswith(CHECKED_PREFIXES)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], "rb") as f:
        descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(f.read())

    passed = failed = 0

    def record(problems):
        nonlocal passed, failed
        for line in problems:
            print(line)
        if problems:
            failed += 1
        else:
            passed += 1

    ours_by_name = {f.name: f for f in descriptor_set.file}
    for name in sorted(REQUIRED_FILES - ours_by_name.keys()):
        record([f"MISMATCH {name}: file missing from our descriptor set"])

    for name in sorted(n for n in ours_by_name if is_checked(n)):
        ours = ours_by_name[name]
        try:
            theirs, sdk_pool = sdk_file(name)
        except ImportError as err:
            record([f"MISMATCH {name}: no such file in the official SDK ({err})"])
            continue

        check = FileCheck(ours, theirs, sdk_pool)
        # File options (go_package, java_package, ...) name generated code, not
        # the wire, so they are left out.
        check.header()
        record(check.take_problems())

        # One count per top-level declaration, so the summary says how much differs.
        for kind, ours_decls, theirs_decls, compare in (
            ("message", ours.message_type, theirs.message_type, check.message),
            ("enum", ours.enum_type, theirs.enum_type, check.enum),
            ("extension", ours.extension, theirs.extension, check.extension),
            ("service", ours.service, theirs.service, check.service),
        ):
            theirs_by_name = {d.name: d for d in theirs_decls}
            for decl in ours_decls:
                if decl.name in theirs_by_name:
                    compare(decl.name, decl, theirs_by_name[decl.name])
                else:
                    check.mismatch(decl.name, f"{kind} not in the official file")
                record(check.take_problems())
            if not check.subset:
                for missing in sorted(theirs_by_name.keys() - {d.name for d in ours_decls}):
                    check.mismatch(missing, f"official {kind} missing from ours")
                    record(check.take_problems())

    print(f"wire schema: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
