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
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY policies ./policies
COPY config/example.yaml ./config/example.yaml
# certs/ holds the interception CA (key mode 0600), data/ the baseline store (baseline.dir): owned by the
# unprivileged runtime user.
RUN mkdir -p certs data && chown node:node certs data && chmod 0700 data
USER node
# Operators mount their CA and policy files (policy edits reload live) and keep the baselines across upgrades.
VOLUME ["/app/certs", "/app/policies", "/app/data"]
# Configuration: a file (EGRESS_CONFIG=/path/to/egress.yaml, e.g. a mounted volume) or ${ENV} references
# inside it; the admin token from EGRESS_ADMIN_TOKEN. Set admin.listen to 0.0.0.0:9180 for Prometheus.
EXPOSE 3128/tcp 5300/udp 5300/tcp 9180/tcp
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9180/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/main.js"]
CMD ["start"]
