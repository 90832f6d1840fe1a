# syntax=docker/dockerfile:1
# Amrikyy Agent API. Multi-stage: compile with the dev dependencies, run on the current Node LTS with
# production dependencies only, as the unprivileged `node` user. Configuration comes from the environment
# (names as in src/config.ts / the README table); without DATABASE_URL it keeps PGlite data in /app/data.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# tsc, then the SQL migrations next to the compiled migration runner (dist/store/migrations).
RUN npm run build

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3001 \
    DATA_DIR=/app/data
WORKDIR /app
# Code stays owned by root (read-only for the app user); only the data directory is writable.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3001
# Liveness only (is the event loop responsive?): readiness belongs to the orchestrator's probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3001) + '/api/health/live').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM goes straight to node (exec form): close-with-grace flips readiness, ends streams and exits.
CMD ["node", "dist/server.js"]
