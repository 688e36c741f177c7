# One image for every Slipway service: the API, the build workers, the runtime agents and the router;
# MinIO and Caddy get images of their own (targets `minio` and `caddy`).
# Builds need python3 (venv, pip), node/npm, GNU tar and zstd; agents need the same to run apps.
# Builds and apps run in bubblewrap sandboxes (bubblewrap, util-linux's setpriv/prlimit), builds
# behind slirp4netns. Workers and agents run as root in their container to set sandboxes up and
# give each its own unprivileged uid; the API runs as `node` (compose sets `user:`).
# Every base image is named by a version tag (not a digest): a rebuild gives the same system unless
# that tag is re-pushed; apt packages come at the versions the base image's Debian release serves.

# MinIO, built from pinned sources (the same version .ci/run tests against), for compose's object
# storage; `docker build --target minio`. Go's caches are build cache mounts: a rebuild after a
# version bump recompiles only what changed.
FROM golang:1.26.8 AS minio-build
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
  go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

# On Slipway's own base: one base image to pull and patch, and its node runs the healthcheck.
FROM node:20.20.2-bookworm-slim AS minio
COPY --from=minio-build /go/bin/minio /usr/local/bin/
ENTRYPOINT ["minio"]
CMD ["server", "/data", "--console-address", ":9001"]

# Caddy, the front door, built from source at the version .ci/run tests against: Debian's 2.6
# closes WebSockets whenever its configuration changes and has no per-host metrics. Its own image
# (`docker build --target caddy`), started bare with its admin API on a socket only the router
# reaches; the router loads the rest.
FROM golang:1.26.8 AS caddy-build
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
  go install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9

FROM node:20.20.2-bookworm-slim AS caddy
COPY --from=caddy-build /go/bin/caddy /usr/local/bin/
COPY services/router/caddy-bootstrap.json /etc/slipway/caddy.json
RUN mkdir -p /run/caddy-admin /var/lib/caddy
CMD ["caddy", "run", "--config", "/etc/slipway/caddy.json"]

# The runtime agent's restore helper, slipway-fetch (services/runtime-agent/fetch): Go's standard
# library only, static; `npm run build` builds it the same way where Go is installed.
FROM golang:1.26.8 AS fetch-build
WORKDIR /src
COPY services/runtime-agent/fetch/ ./
RUN CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags="-s -w" -o /out/slipway-fetch .

# The workspace's package manifests alone: installs are cached until one of them changes.
FROM node:20.20.2-bookworm-slim AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/api/package.json services/api/
COPY services/build-worker/package.json services/build-worker/
COPY services/runtime-agent/package.json services/runtime-agent/
COPY services/router/package.json services/router/
COPY cli/package.json cli/

# Compiles the services and the CLI and bundles the dashboard (npm run build), with dev dependencies;
# slipway-fetch joins the agent's output (this stage has no Go to build it).
FROM manifests AS build
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
COPY --from=fetch-build /out/slipway-fetch services/runtime-agent/dist/slipway-fetch

# What the compiled services import at run time, and nothing else (no tsx, esbuild, s3rver, test tools).
FROM manifests AS deps
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv python3-pip tar zstd ca-certificates curl git \
     bubblewrap slirp4netns util-linux iptables iproute2 \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# package.json files (they make dist/*.js ES modules) and node_modules; then only the build output.
COPY --from=deps /app ./
COPY --from=build /app/services/api/dist services/api/dist
COPY --from=build /app/services/build-worker/dist services/build-worker/dist
COPY --from=build /app/services/runtime-agent/dist services/runtime-agent/dist
COPY --from=build /app/services/router/dist services/router/dist
COPY --from=build /app/cli/dist cli/dist
COPY --from=build /app/cli/bin cli/bin
RUN mkdir -p /var/lib/slipway/build /var/lib/slipway/runtime && chmod 0711 /var/lib/slipway/build /var/lib/slipway/runtime
# The API (user node) keeps the apps' git repositories here; nothing else may read them.
RUN mkdir -p /var/lib/slipway/git && chown node:node /var/lib/slipway/git && chmod 0700 /var/lib/slipway/git
ENV NODE_ENV=production \
    SCRATCH_DIR=/var/lib/slipway/build \
    RUNTIME_ROOT=/var/lib/slipway/runtime
# compose.yaml picks the service with `command`; the API is the default. Node straight away, no
# npm in between; compose runs it under an init (`init: true`), use `docker run --init` elsewhere:
# workers and agents start sandboxes whose orphans must be reaped.
CMD ["node", "services/api/dist/main.js"]
