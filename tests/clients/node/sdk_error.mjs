#!/usr/bin/env node
// Calls ImageService.Get of both APIs through the official Yandex Cloud
// Node.js SDK (@yandex-cloud/nodejs-sdk), to see the SDK's own ApiError.
//
// Usage: node sdk_error.mjs HOST:PORT   (plaintext gRPC, no TLS)
//
// The clients come from the SDK's generated service definitions and the SDK's
// own client factory (dist/utils/client-factory: the one Session.client uses,
// with its error-metadata, retry and deadline middleware); only the channel is
// built here, plaintext, since Session always dials TLS with an IAM token.
//
// The SDK turns a failed call into an ApiError (requestId, serverTraceId)
// only when response headers arrived before the status
// (dist/middleware/error-metadata.js); after a trailers-only answer it
// rethrows nice-grpc's ClientError unchanged. ApiError keeps the ClientError's
// message ("/PATH STATUS_NAME: details") but not its code, so `code` below is
// read back from that message for an ApiError (`codeFrom: "message"`).
//
// Prints one JSON line per call. Exits 0 when every call ran, whatever it
// answered; the caller asserts on the lines.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const sdk = require('@yandex-cloud/nodejs-sdk');
const { clientFactory } = require('@yandex-cloud/nodejs-sdk/dist/utils/client-factory');
const compute = require('@yandex-cloud/nodejs-sdk/compute-v1');
const registry = require('@yandex-cloud/nodejs-sdk/containerregistry-v1');
// The SDK's own copy of nice-grpc (and through it @grpc/grpc-js), whatever npm hoisted.
const sdkRequire = createRequire(require.resolve('@yandex-cloud/nodejs-sdk'));
const { createChannel, ChannelCredentials, Status } = sdkRequire('nice-grpc');

const CALL_TIMEOUT_MS = 10_000;
const CALLS = [
    { call: 'compute.Get', api: 'compute', id: 'fd8doesnotexist000000' },
    { call: 'registry.Get', api: 'registry', id: 'crpdoesnotexist00000' },
    { call: 'compute.Get', api: 'compute', id: 'fd8e0i00mv2ba2rsl5re' },
    { call: 'registry.Get', api: 'registry', id: 'crpphk31u48ts5plqaqo' },
];

const address = process.argv[2];
if (!address || process.argv.length !== 3) {
    console.error('usage: node sdk_error.mjs HOST:PORT');
    process.exit(2);
}
// Keeps a hung server from hanging the test run.
setTimeout(() => {
    console.error(`sdk_error.mjs: no answer from ${address} in time`);
    process.exit(3);
}, 4 * CALL_TIMEOUT_MS).unref();

const channel = createChannel(address, ChannelCredentials.createInsecure());
const clients = {
    compute: {
        client: clientFactory.create(compute.imageService.ImageServiceClient.service, channel),
        request: (imageId) => compute.imageService.GetImageRequest.fromPartial({ imageId }),
    },
    registry: {
        client: clientFactory.create(registry.imageService.ImageServiceClient.service, channel),
        request: (imageId) => registry.imageService.GetImageRequest.fromPartial({ imageId }),
    },
};

/** A nice-grpc Metadata as a plain object (first value of each key). */
const plain = (metadata) =>
    metadata === undefined
        ? null
        : Object.fromEntries([...metadata].map(([key, values]) => [key, String(values[0])]));

/** The status code of an error: its own, else the name in "/PATH NAME: details". */
function codeOf(error) {
    if (typeof error.code === 'number') {
        return { code: error.code, codeFrom: 'error.code' };
    }
    const name = /^\/\S+ ([A-Z_]+): /.exec(error.message ?? '')?.[1];
    return name !== undefined && typeof Status[name] === 'number'
        ? { code: Status[name], codeFrom: 'message' }
        : { code: null, codeFrom: null };
}

for (const { call, api, id } of CALLS) {
    const { client, request } = clients[api];
    let trailer;
    const line = { call, id };
    try {
        const image = await client.get(request(id), {
            deadline: new Date(Date.now() + CALL_TIMEOUT_MS),
            // Only observed here: the SDK's middleware reads the headers, not these.
            onTrailer: (metadata) => {
                trailer = metadata;
            },
        });
        Object.assign(line, { ok: true, imageId: image.id, name: image.name });
    } catch (error) {
        const isApiError = error instanceof sdk.errors.ApiError;
        Object.assign(line, {
            ok: false,
            error: error?.constructor?.name ?? typeof error,
            isApiError,
            ...codeOf(error),
            requestId: isApiError ? (error.requestId ?? null) : null,
            serverTraceId: isApiError ? (error.serverTraceId ?? null) : null,
            message: error?.message ?? String(error),
            headers: isApiError ? plain(error.metadata) : null,
            trailerRequestId: trailer?.get('x-request-id') ?? null,
            trailerServerTraceId: trailer?.get('x-server-trace-id') ?? null,
        });
    }
    console.log(JSON.stringify(line));
}
channel.close();
