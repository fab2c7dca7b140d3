# govfeed: poll IMAP mailboxes and store GovDelivery bulletins in SQLite.
#
#   docker build -t govfeed .
#   docker run -d --name govfeed --init \
#     -v govfeed-data:/data \
#     -v "$PWD/govfeed.toml:/config/govfeed.toml:ro" \
#     -v "$PWD/imap-password:/run/secrets/imap-password:ro" \
#     govfeed
#
# The config must say   [database] path = "/data/govfeed.db"
# and read the password with   password_file = "/run/secrets/imap-password".
# docs/deploy.md and compose.example.yaml show the rest.

# Both stages use the same Debian release, so the venv's compiled wheels match the libc
# they run on. Bump PYTHON_VERSION to take a newer 3.11 patch release.
ARG PYTHON_VERSION=3.11.14

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# pyproject.toml names README.md (readme) and LICENSE (license-files): the build needs both.
COPY pyproject.toml README.md LICENSE ./
COPY requirements/site.txt ./requirements/site.txt
COPY daemon ./daemon
# The exact, hash-checked versions of the lock (`make lock`), then `.` (this source tree)
# alone. pip byte-compiles into the venv here, so the read-only runtime never writes .pyc.
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements/site.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps ".[site]"


FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="govfeed" \
      org.opencontainers.image.description="Government mailing-list email to a searchable SQLite database" \
      org.opencontainers.image.licenses="MIT"

# A fixed UID/GID so a bind-mounted /data or secret file can be chowned to it in advance.
ARG GOVFEED_UID=10001
RUN groupadd --system --gid "${GOVFEED_UID}" govfeed \
    && useradd --system --uid "${GOVFEED_UID}" --gid govfeed \
       --home-dir /data --no-create-home --shell /usr/sbin/nologin govfeed \
    && install -d -o govfeed -g govfeed -m 0700 /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GOVFEED_CONFIG=/config/govfeed.toml

WORKDIR /data
VOLUME ["/data"]
USER ${GOVFEED_UID}:${GOVFEED_UID}

# Healthy while every mailbox succeeded within 15 minutes (status exits 1 when
# degraded or stale, 2 when the config or database is unusable; Docker counts any
# non-zero exit as a failed check). The start period covers a first large import.
HEALTHCHECK --interval=60s --timeout=15s --start-period=5m --retries=3 \
    CMD ["govfeed", "status", "--max-age", "900"]

# SIGTERM (docker stop) lets the current batch commit; give it time: `docker stop -t 60`.
# SIGHUP (docker kill --signal HUP) re-reads the config.
STOPSIGNAL SIGTERM
ENTRYPOINT ["govfeed"]
CMD ["run"]
