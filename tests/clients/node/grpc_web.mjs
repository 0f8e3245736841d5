#!/usr/bin/env node
// A real gRPC-Web client against both APIs: Connect's gRPC-Web transport
// (@connectrpc/connect-node), with the services read at run time from our
// descriptor set (@bufbuild/protobuf's registry), so no code is generated.
//
// Usage: node grpc_web.mjs DESCRIPTOR_SET_FILE BASE_URL [BASE_URL...]
//
// For each base URL (the HTTP listener, the gRPC listener): compute Get and
// List, container Get, a NOT_FOUND and an INVALID_ARGUMENT. Prints one JSON
// line per call: {"url", "call", "code", ...what it answered}.

import { readFileSync } from 'node:fs';
import { createClient, ConnectError, Code } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-node';
import { createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';

const [descriptorFile, ...urls] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(descriptorFile)));
const service = (name) => {
  const found = registry.getService(name);
  if (!found) throw new Error(`no service ${name} in the descriptor set`);
  return found;
};
const compute = service('yandex.cloud.compute.v1.ImageService');
const containers = service('yandex.cloud.containerregistry.v1.ImageService');

async function attempt(url, call, run) {
  try {
    const answer = await run();
    console.log(JSON.stringify({ url, call, code: 'OK', ...answer }));
  } catch (err) {
    const error = ConnectError.from(err);
    console.log(JSON.stringify({ url, call, code: Code[error.code], message: error.rawMessage }));
  }
}

for (const url of urls) {
  const transport = createGrpcWebTransport({ baseUrl: url, httpVersion: '1.1' });
  const images = createClient(compute, transport);
  const registryImages = createClient(containers, transport);
  await attempt(url, 'compute.Get', async () => {
    const image = await images.get({ imageId: 'fd8o2pjpr9dfpl308ukq' });
    return { id: image.id, name: image.name, folderId: image.folderId };
  });
  await attempt(url, 'compute.List', async () => {
    const page = await images.list({ folderId: 'b1gdemo7f0lder2qk8vh', pageSize: 2n });
    return { count: page.images.length, nextPageToken: page.nextPageToken };
  });
  await attempt(url, 'container.Get', async () => {
    const image = await registryImages.get({ imageId: 'crpphk31u48ts5plqaqo' });
    return { id: image.id, name: image.name };
  });
  await attempt(url, 'compute.Get missing', () => images.get({ imageId: 'fd8nosuchimage' }));
  await attempt(url, 'compute.Get bad id', () => images.get({ imageId: 'x'.repeat(51) }));
}
