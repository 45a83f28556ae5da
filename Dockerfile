# syntax=docker/dockerfile:1.7
# One image for the four amends services: `docker run IMAGE serve <ingest|classify|route|followup>`.
# Also runs the other `amends` commands (asyncapi, triage-eval...).
#
# Base pinned to an exact release. To pin by digest as well (recommended for production
# builds), build with --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: compilers and pip live only here ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/amends
ENV PATH=/opt/amends/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the code changes).
COPY pyproject.toml ./
RUN python - <<'PY'
import subprocess, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
subprocess.check_call([sys.executable, "-m", "pip", "install", *deps])
PY
# The code keeps the repository's layout under /opt/amends/app (data files of any kind
# next to the modules, as in a checkout), on the virtualenv's path through a .pth file.
COPY shared /opt/amends/app/shared
COPY services /opt/amends/app/services
COPY cli /opt/amends/app/cli
RUN echo /opt/amends/app > "$(python -c 'import site; print(site.getsitepackages()[0])')/amends.pth" \
 && printf '#!/opt/amends/bin/python\nimport sys\nfrom cli.main import main\nsys.exit(main())\n' \
        > /opt/amends/bin/amends \
 && chmod 0755 /opt/amends/bin/amends \
 && pip uninstall -y pip setuptools wheel \
 && python -m compileall -q /opt/amends \
 && amends --help >/dev/null

# ---- runtime: the virtualenv on a slim base, no compilers, no pip, not root ---------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="amends" \
      org.opencontainers.image.description="amends complaint-resolution services (ingest, classify, route, followup)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 amends \
 && useradd --system --uid 10001 --gid amends --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin amends \
 && python -m pip uninstall -y pip setuptools wheel
COPY --from=build /opt/amends /opt/amends
ENV PATH=/opt/amends/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AMENDS_HTTP_HOST=0.0.0.0 \
    AMENDS_HTTP_PORT=8000 \
    AMENDS_LOG_JSON=true
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# Liveness for plain Docker (Kubernetes and compose use their own probes).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AMENDS_HTTP_PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["amends"]
CMD ["--help"]
