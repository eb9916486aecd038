# syntax=docker/dockerfile:1
#
# fluxgate: a static (musl) binary on distroless, non-root.
#   docker build -t registry.example.com/fluxgate:0.1.0 .
# Builds for the platform it runs on (x86_64 or aarch64: `uname -m` names the Rust target);
# for another platform use `docker buildx build --platform linux/arm64` (emulated).

FROM rust:1-slim-bookworm AS build
# musl-tools: the C compiler for musl that ring's C and assembly need. Nothing else is native.
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
# The whole checkout (less .dockerignore): Cargo.toml names targets such as benches/, and the
# binary embeds deploy/examples/windows.yaml.
COPY . .
RUN cargo build --release --locked --target "$(uname -m)-unknown-linux-musl" \
 && cp "target/$(uname -m)-unknown-linux-musl/release/fluxgate" /fluxgate

# distroless/static: no shell, no package manager, CA certificates and /etc/passwd for nonroot.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /fluxgate /fluxgate
USER 65532:65532
# 8443: HTTPS webhook (/validate, /healthz, /readyz); 9090: plain-HTTP /metrics.
EXPOSE 8443 9090
ENTRYPOINT ["/fluxgate", "serve"]
