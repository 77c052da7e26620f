# The service as an image: dependencies installed when the image is built, so
# a restart needs neither the npm registry nor a writable source tree.
#   docker build -t auditlog .        (docker-compose.yml builds it for you)
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY gen ./gen
COPY proto ./proto
COPY deploy ./deploy
COPY tsconfig.json ./
# Holds the checkpoint signing key and the instance's chain id (and the
# embedded store, when no CLICKHOUSE_URL is given): mount a volume here.
RUN mkdir -p /data && chown node:node /data
ENV AUDITLOG_DATA_DIR=/data
USER node
EXPOSE 8080
ENTRYPOINT ["node", "bin/auditlog.mjs"]
CMD ["serve"]
