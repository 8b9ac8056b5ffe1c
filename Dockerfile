# syntax=docker/dockerfile:1
# Build: docker build -t mca:latest .
# Stage 1 compiles main.ts into one self-contained executable. `deno compile`
# downloads its runtime (denort), so this stage needs network access.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ./
COPY lib/ ./lib/
RUN deno install --frozen --entrypoint main.ts \
 && deno compile --frozen --allow-all --output /out/mca main.ts \
 && /out/mca --version

# Stage 2: only the binary, on distroless (glibc, CA bundle, non-root user).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/mca /usr/local/bin/mca
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mca"]
