# loopd: multi-stage image. The build stage compiles the release binary with
# Debian bookworm's packages (llhttp from node-llhttp, in strict mode); the
# runtime stage holds the binary, the example config and the two shared
# libraries it needs, and runs as an unprivileged user.
#   docker build -t loopd .   &&   docker run --rm -p 127.0.0.1:8080:8080 loopd
# (the dashboard's buttons and /block are for this machine only: publish the
# port on the loopback, not on every interface)

FROM debian:bookworm-slim AS build
# make: GCC's link-time optimizer runs its parallel jobs through it (without
# it the link warns and compiles them one by one).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config meson ninja-build \
      libuv1-dev node-llhttp libinih-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# No -march=native and no sanitizers: the image must run on any x86-64 host.
RUN meson setup /build --buildtype=release -Dtests=false \
 && ninja -C /build loopd \
 && strip /build/loopd \
 && /build/loopd --version

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libuv1 libinih1 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin loopd
COPY --from=build /build/loopd /usr/local/bin/loopd
COPY config/loopd.ini /etc/loopd/loopd.ini
USER loopd
# The environment overrides the file: listen on every interface in the container.
# There server.allowed_hosts=auto answers any Host (a published port is
# reached by whatever name the host has); -e LOOPD_SERVER_ALLOWED_HOSTS=
# localhost,127.0.0.1,... refuses the others with 421 (keep localhost: the
# HEALTHCHECK below sends it).
ENV LOOPD_SERVER_LISTEN=0.0.0.0:8080
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the image: loopd --health reads the configuration as the server
# does (this file, then LOOPD_* such as LOOPD_SERVER_LISTEN=0.0.0.0:9000) and
# asks that port's /healthz on the loopback; exit 0 on a 200.
HEALTHCHECK --interval=10s --timeout=3s --start-period=3s --retries=3 \
  CMD ["/usr/local/bin/loopd", "--config", "/etc/loopd/loopd.ini", "--health"]
ENTRYPOINT ["/usr/local/bin/loopd"]
CMD ["--config", "/etc/loopd/loopd.ini"]
