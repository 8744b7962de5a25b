# Build stage: install (applying patches/), compile src/, then keep only what runs.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY patches ./patches
COPY src ./src
# npm ci applies patches/ (postinstall: patch-package) and compiles (prepare: npm run build).
# bench/ and test/ are not copied, so dist/ holds src/ alone.
RUN npm ci --no-audit --no-fund
# Production dependencies only. --omit=dev alone keeps TypeScript (a devDependency that is also an
# optional peer of valibot, under @bull-board/api, so npm marks it devOptional) and patch-package
# (a dependency only for the install above); without both in this stage's package.json, prune
# removes them, and the embedded PostgreSQL build with them (optional dependencies: the image
# always names a server). Then check that the pruned tree still loads every command (the CLI
# imports a command's modules only when it runs, so each is imported here).
RUN npm pkg delete devDependencies dependencies.patch-package optionalDependencies \
 && npm prune --omit=dev --no-audit --no-fund \
 && test ! -e node_modules/typescript && test ! -e dist/bench \
 && node dist/src/cli.js --version \
 && for command in dist/src/commands/*.js; do node -e "await import('./$command')" || exit 1; done

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
# Outside the container's own loopback: reached only through the ports the operator publishes.
ENV HTTP_HOST=0.0.0.0
EXPOSE 8080
USER node
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["start"]
