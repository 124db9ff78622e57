# The gateway in production mode (docs/deploy.md). Configuration, keys, trust anchors and the
# registry are mounted at run time under /etc/gba, never built into the image.
FROM python:3.11-slim

# mappings/ (reviewed data) is not inside the Python packages: it is installed beside them.
# .dockerignore leaves gateway/sandbox, gateway/conformance and gateway/portal out: the image
# has no sandbox (nor its reference portal),
# and `gba-gateway sandbox` there says it is not installed in this build.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GBA_MAPPINGS_DIR=/opt/gba/mappings

COPY pyproject.toml README.md /src/
COPY gateway /src/gateway
COPY adapters /src/adapters
COPY mappings /opt/gba/mappings
RUN pip install /src \
    && rm -rf /src \
    && groupadd --system --gid 10001 gba \
    && useradd --system --uid 10001 --gid gba --no-create-home --home-dir /nonexistent gba

USER 10001:10001
WORKDIR /opt/gba
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3).status != 200)"]

ENTRYPOINT ["gba-gateway"]
CMD ["serve", "--config", "/etc/gba/gateway.toml", "--host", "0.0.0.0", "--port", "8080"]
