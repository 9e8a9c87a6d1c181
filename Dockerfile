# One image for the three services (target `services`, the default) and one for the dashboard
# (target `dashboard`). TypeScript runs directly on Node 24; `npm ci` generates the API from proto/.
FROM node:24-slim AS base
WORKDIR /app
COPY package.json package-lock.json buf.yaml buf.gen.yaml ./
COPY proto ./proto
COPY packages ./packages
COPY services ./services
COPY dashboard ./dashboard
COPY scripts ./scripts
# The images build what they need in their own stages: no prebuild at install (scripts/prebuild.ts).
RUN SHOP_SKIP_PREBUILD=1 npm ci --no-audit --no-fund && npm cache clean --force
# Mount points of the signing-key volumes, owned by the user the containers run as (a new named
# volume takes the owner of the folder it is mounted on).
RUN mkdir -p /auth/keys /auth/jwks /auth/orders /auth/sign-in && chown -R node:node /auth

FROM base AS dashboard
RUN npm run build -w dashboard
ENV NODE_ENV=production PORT=3000
EXPOSE 3000
USER node
CMD ["npm", "run", "start", "-w", "dashboard"]

FROM base AS services
ENV NODE_ENV=production
USER node
EXPOSE 8081 8082 8083
# docker-compose.yml picks the service: node services/<name>/src/main.ts
CMD ["node", "services/users/src/main.ts"]
