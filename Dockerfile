# Spanwise app image: API, sync and the built client on one port. See docker-compose.yml for
# the scaled-out deployment (Postgres + Redis + two instances behind nginx).
FROM node:20-bookworm-slim

WORKDIR /app

# The npm the project is developed with: npm 10 (this image's) ignores package.json's
# `allowScripts`, and would run the install scripts it leaves out.
RUN npm install -g npm@11.19.1 --no-audit --no-fund

# Dependencies first, so source edits do not invalidate the `npm ci` layer. Dev dependencies stay
# installed: the server runs through tsx, and `npm run build` needs vite.
COPY package.json package-lock.json ./
COPY shared/package.json shared/
COPY server/package.json server/
COPY client/package.json client/
RUN npm ci --no-audit --no-fund

COPY tsconfig*.json ./
COPY shared/ shared/
COPY server/ server/
COPY client/ client/
COPY seeds/ seeds/
# Builds the client into client/dist, which the server serves. `.data` is the embedded PGlite
# directory, used only when DATABASE_URL is unset; the unprivileged user must be able to write it.
RUN npm run build \
 && mkdir -p .data \
 && chown node:node .data
# The embedded database outlives the container only on a volume (a named one starts owned by
# `node`, as this folder is; a host folder must be owned by uid 1000).
VOLUME ["/app/.data"]

ENV PORT=3000 \
    NPM_CONFIG_UPDATE_NOTIFIER=false

EXPOSE 3000
USER node

# 127.0.0.1 rather than localhost: the server listens on 0.0.0.0 (IPv4 only), and localhost may
# resolve to ::1 first.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/api/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# What `npm run serve` runs, without npm and a shell in between: node itself, with tsx loaded in
# it (not tsx's own parent process, which relays a signal but kills its child if the child has
# not acknowledged it within 30 ms, as a busy event loop may not), so `docker stop`'s SIGTERM
# reaches the server's own handler, whose shutdown stores what is queued.
CMD ["node", "--import", "tsx", "server/src/main.ts"]
