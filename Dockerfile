# Multi-stage build of the three services. Build: docker build -t iafactory .
# Each service is its own binary; pick one with the container command.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && for b in promo-service llm-gateway gateway-rest; do \
      if [ -f "target/release/$b" ]; then cp "target/release/$b" /out/; fi; \
    done

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app iaf
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
COPY gateway-rest/static /app/static
ENV STATIC_DIR=/app/static/api-packages
USER iaf
