# syntax=docker/dockerfile:1
# Build on a current LTS image; the code also runs on Node 20 (see package.json engines).
FROM node:24-bookworm-slim AS build
# better-sqlite3 (the embedded baseline store) compiles its native module when no prebuilt one fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md); pass
# --build-arg VERSION=… REVISION=$(git rev-parse HEAD) CREATED=$(date -u +%FT%TZ) from the release job.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# Where the source lives (set at build time: --build-arg SOURCE=https://…); empty by default.
ARG SOURCE=
LABEL org.opencontainers.image.title="egress-inspector" \
      org.opencontainers.image.description="Egress forward proxy that attributes, fingerprints and polices outbound flows (MITRE ATT&CK AN0922)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
ENV NODE_ENV=production
# The listener ports, in one place: the image's config (/app/config/container.yaml) listens on them, EXPOSE
# declares them, and the HEALTHCHECK finds the admin port by loading that same config.
ENV EGRESS_PROXY_PORT=3128 \
    EGRESS_DNS_PORT=5300 \
    EGRESS_ADMIN_PORT=9180 \
    EGRESS_CONFIG=/app/config/container.yaml
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Shipped policies and scoring data (policies/data/) stay in the image, never under a volume, so the config
# always finds never-bump.yaml and default.yaml; operators' own policies go beside their config
# (/etc/egress-inspector, deploy/container/compose.yaml).
COPY policies ./policies
COPY config/example.yaml ./config/example.yaml
COPY deploy/container/egress.yaml ./config/container.yaml
COPY deploy/container/healthcheck.mjs ./deploy/container/healthcheck.mjs
# certs/ holds the interception CA (key mode 0600), data/ the baseline store (baseline.dir): owned by the
# unprivileged runtime user.
RUN mkdir -p certs data /etc/egress-inspector && chown node:node certs data && chmod 0700 certs data
USER node
# Operators mount their CA and keep the baselines across upgrades; config and local policies are mounted
# read-only at /etc/egress-inspector (set EGRESS_CONFIG=/etc/egress-inspector/egress.yaml).
VOLUME ["/app/certs", "/app/data"]
EXPOSE ${EGRESS_PROXY_PORT}/tcp ${EGRESS_DNS_PORT}/udp ${EGRESS_DNS_PORT}/tcp ${EGRESS_ADMIN_PORT}/tcp
# /readyz on whatever admin.listen the running config says (deploy/container/healthcheck.mjs).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "deploy/container/healthcheck.mjs"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
CMD ["start"]
