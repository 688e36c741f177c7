# One image for every Slipway service: the API, the build workers and the runtime agents.
# Builds need python3 (venv, pip), node/npm, GNU tar and zstd; agents need the same to run apps.
# Builds and apps run in bubblewrap sandboxes (bubblewrap, util-linux's setpriv/prlimit), builds
# behind slirp4netns. Workers and agents run as root in their container to set sandboxes up and
# give each its own unprivileged uid; the API runs as `node` (compose sets `user:`).

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY services/api/package.json services/api/
COPY services/build-worker/package.json services/build-worker/
COPY services/runtime-agent/package.json services/runtime-agent/
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-venv python3-pip tar zstd ca-certificates curl git \
     bubblewrap slirp4netns util-linux \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# The dashboard is bundled here, once, not by the API at run time.
RUN npm run build
RUN mkdir -p /var/lib/slipway/build /var/lib/slipway/runtime && chmod 0711 /var/lib/slipway/build /var/lib/slipway/runtime
# The API (user node) keeps the apps' git repositories here; nothing else may read them.
RUN mkdir -p /var/lib/slipway/git && chown node:node /var/lib/slipway/git && chmod 0700 /var/lib/slipway/git
ENV NODE_ENV=production \
    SCRATCH_DIR=/var/lib/slipway/build \
    RUNTIME_ROOT=/var/lib/slipway/runtime
# compose.yaml picks the service with `command`; the API is the default.
CMD ["npm", "start", "-w", "services/api"]
