# The flow-run image of the docker work pool: Prefect, the flows and this checkout's code
# at /opt/perstack-py (the deployments' working directory). The executions still run in
# their own hardened perstack-runtime containers, started on the host's engine through
# the mounted socket. Built by deployments/build-flows-image.sh, without a registry.
ARG BASE_IMAGE=perstack-base:bookworm
FROM ${BASE_IMAGE}
COPY build/flows-wheelhouse /wheels
RUN set -- /wheels/pip-*.whl \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/venv/bin/python3 "$1/pip" install --no-index --find-links=/wheels \
        --no-cache-dir --disable-pip-version-check --quiet 'perstack-py[flows]' \
 && rm -rf /wheels
COPY flows /opt/perstack-py/flows
COPY deployments /opt/perstack-py/deployments
COPY examples /opt/perstack-py/examples
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    LANG=C.UTF-8
WORKDIR /opt/perstack-py
