# The Perstack runtime image: `perstack run` and its runtime dependencies, nothing else
# (no Prefect, pyarrow or duckdb). Callers pass only the Expert key and the query:
#
#   docker run --rm -v "$PWD/ws:/workspace" perstack-runtime:latest my-expert "the query"
#
# Building needs neither a registry nor network access from inside the build: the
# project and its dependencies come from a wheelhouse built on the host, and the base
# image can be one built locally (see docker/README.md):
#
#   .ci/setup-docker.sh                      # all of it, idempotently
#   # or by hand:
#   docker/build-base-image.sh perstack-base:bookworm python3
#   docker/build-wheelhouse.sh               # -> build/wheelhouse/
#   docker/build-preload.sh                  # -> build/preload/ (the host's gcc)
#   mkdir -p build/image-config && cp examples/support-report/perstack.toml build/image-config/
#   .venv/bin/perstack install --config build/image-config/perstack.toml   # perstack.lock
#   docker build --build-arg BASE_IMAGE=perstack-base:bookworm \
#                --build-arg CONFIG_DIR=build/image-config -t perstack-runtime:latest .
#
# BASE_IMAGE must provide python3 (3.11, as the wheelhouse is built for it) and useradd.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS install
# The MCP servers the baked-in Expert's skills start (they must be in the wheelhouse).
ARG SKILL_PACKAGES=mcp-server-time
# pip comes from its own wheel in the wheelhouse, so the base needs no pip or ensurepip,
# and it stays out of the final image. Bytecode is compiled once, unchecked: the image is
# immutable, so Python need not compare source timestamps on every import.
COPY build/wheelhouse /wheels
RUN set -- /wheels/pip-*.whl \
 && python3 -m venv --without-pip /opt/perstack \
 && /opt/perstack/bin/python3 "$1/pip" install --no-index --find-links=/wheels \
        --no-cache-dir --disable-pip-version-check --quiet perstack-py ${SKILL_PACKAGES} \
 && rm -rf /opt/perstack/lib/python3.11/site-packages/flows \
          /opt/perstack/lib/python3.11/site-packages/analytics \
 && /opt/perstack/bin/python3 -m compileall -q -f --invalidation-mode unchecked-hash /opt/perstack/lib

FROM ${BASE_IMAGE}
ARG CONFIG_DIR=build/image-config
ARG PERSTACK_UID=10001
RUN groupadd --gid "${PERSTACK_UID}" perstack \
 && useradd --uid "${PERSTACK_UID}" --gid "${PERSTACK_UID}" --no-create-home \
        --home-dir /workspace --shell /usr/sbin/nologin perstack \
 && mkdir -p /workspace /app \
 && chown perstack:perstack /workspace
COPY --from=install /opt/perstack /opt/perstack
# Preloaded into every stdio MCP server the runtime starts: marks it not dumpable, so the
# Expert's commands cannot read its requiredEnv secrets (docker/preload/undumpable.c).
COPY build/preload/libperstack-undumpable.so /usr/local/lib/perstack/
# perstack.toml and, once `perstack install` has written it, perstack.lock beside it.
COPY ${CONFIG_DIR}/perstack.* /app/
# HOME on the tmpfs: the root filesystem is mounted read-only at run time.
ENV PATH=/opt/perstack/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LANG=C.UTF-8 \
    PERSTACK_SERVER_PRELOAD=/usr/local/lib/perstack/libperstack-undumpable.so
LABEL org.opencontainers.image.title="perstack-runtime" \
      io.perstack.role="runtime-image"
USER ${PERSTACK_UID}:${PERSTACK_UID}
WORKDIR /workspace
ENTRYPOINT ["perstack", "run", "--config", "/app/perstack.toml"]
