# syntax=docker/dockerfile:1
# Build: docker build -t mca:latest .
# Multi-arch (what .github/workflows/release.yml runs):
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE --push .
# Stage 1 compiles main.ts into one self-contained executable. It runs on the
# build machine's platform and cross-compiles for the target one with
# `deno compile --target` (no emulation). `deno compile` downloads its runtime
# (denort) for that target, so this stage needs network access.
# --v8-flags is baked into the binary: V8's young generation capped at 8 MiB
# per semi-space (design/decisions/0023-v8-heap-flags.md).
FROM --platform=$BUILDPLATFORM denoland/deno:2.9.6 AS build
# Set by BuildKit: amd64, arm64 (empty with the legacy builder: this machine's).
ARG TARGETARCH
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ./
COPY lib/ ./lib/
RUN case "${TARGETARCH:-}" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      "") target="" ;; \
      *) echo "unsupported TARGETARCH ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && deno install --frozen --entrypoint main.ts \
 && deno compile --frozen --allow-all --v8-flags=--max-semi-space-size=8 ${target:+--target "$target"} --output /out/mca main.ts \
 && if [ -z "$target" ] || [ "$target" = "$(uname -m)-unknown-linux-gnu" ]; then /out/mca --version; fi

# Stage 2: only the binary, on distroless (glibc, CA bundle, non-root user).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mca /usr/local/bin/mca
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mca"]
