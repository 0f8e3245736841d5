# syntax=docker/dockerfile:1
# Multi-stage build: compile in the Rust image, run from a distroless base that
# has glibc and CA certificates and nothing else (no shell, no package manager).
# The demo catalog is compiled into the binary, so the image serves it as is.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
COPY src ./src
RUN cargo build --release --locked --bin image-service \
    && cp target/release/image-service /image-service

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /image-service /usr/local/bin/image-service
# Listen on every interface inside the container; the Service decides exposure.
ENV IMAGE_SERVICE_GRPC_LISTEN=0.0.0.0:50051 \
    IMAGE_SERVICE_HTTP_LISTEN=0.0.0.0:8080 \
    IMAGE_SERVICE_LOG_FORMAT=json
EXPOSE 50051 8080
# The distroless "nonroot" user (65532).
USER 65532:65532
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/image-service"]
CMD ["serve"]
