# syntax=docker/dockerfile:1
# Amrikyy Agent API. Multi-stage: compile with the dev dependencies, run the compiled dist/ on Node 20 (the
# major version CI tests on) with production dependencies only (no tsx, esbuild or TypeScript), as the
# unprivileged `node` user. Configuration comes from the environment (names as in src/config.ts / the
# README table); without DATABASE_URL it keeps PGlite data in /app/data. Steps are ordered so that few of
# them follow a large layer: on storage drivers without copy-on-write (vfs, as in CI) each step copies the
# whole file system.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm ci --no-audit --no-fund
# tsc, then the SQL migrations next to the compiled migration runner (dist/store/migrations).
RUN npm run build

# The runtime's /app: production dependencies, package.json and the compiled code, copied over in one step.
FROM node:20-slim AS app
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && rm -f package-lock.json
COPY --from=build /app/dist ./dist
# The PGlite snapshot of a new database with its migrations (src/store/pglite-snapshot.ts), made here because a
# pod's code is read-only: without it each new DATA_DIR would run initdb (seconds, and about 900 MB at its peak).
RUN node --input-type=module -e "const { openDatabase } = await import('./dist/store/database.js'); \
  const { loadMigrations } = await import('./dist/store/migrate.js'); \
  await (await openDatabase({ dataDir: 'memory://', migrations: await loadMigrations() })).close()"

FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3001 \
    DATA_DIR=/app/data
WORKDIR /app
EXPOSE 3001
# Liveness only (is the event loop responsive?): readiness belongs to the orchestrator's probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3001) + '/api/health/live').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Only the data directory is writable by the app user; the code copied below stays owned by root (read-only).
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# SIGTERM goes straight to node (exec form): close-with-grace flips readiness, ends streams and exits.
CMD ["node", "dist/server.js"]
COPY --from=app /app ./
