# Build stage: install (applying patches/), compile, then drop dev dependencies.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY patches ./patches
COPY src ./src
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: production dependencies, compiled code and migrations only.
FROM node:24-slim
ENV NODE_ENV=production
# A heap cap keeps worker memory flat (see bench/README.md).
ENV NODE_OPTIONS="--max-old-space-size=256 --max-semi-space-size=16"
WORKDIR /app
COPY package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# /healthz, /readyz, /metrics (and /queues with QUEUE_DASHBOARD=1).
ENV HTTP_PORT=8080
EXPOSE 8080
USER node
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start"]
