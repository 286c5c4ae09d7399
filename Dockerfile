# The platform's image: the three services and the all-in-one run, built by the same script CI
# runs (scripts/build-release.sh), on a minimal runtime image, as a non-root user. Each container
# picks its service with its command (see docker-compose.yml); the landing page is inside
# gateway-rest. Build: docker build -t iafactory .
#
# Dependencies are compiled in a layer of their own (cargo-chef): a change to the sources rebuilds
# only the workspace's crates.
FROM rust:1.95-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
# The build's settings (the bundled SQLite's options) shape the dependency layer too.
COPY .cargo .cargo
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN scripts/build-release.sh /out

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin iaf \
 && mkdir -p /app /data && chown iaf:iaf /app /data
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
USER iaf
# SQLite files, when a service runs on the embedded default (production uses PostgreSQL).
VOLUME ["/data"]
EXPOSE 8180 50051 50052
CMD ["iafactory-local", "--data-dir", "/data", "--host", "0.0.0.0"]
