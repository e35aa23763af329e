# ingest: news-feed archiver. The archive lives in the /data volume; the daemon runs by default.
#   docker build -t ingest .
#   docker run -d --name ingest -v ingest-data:/data ingest            # the daemon
#   docker run --rm -v ingest-data:/data ingest fetch                  # one run, then exit
#   docker exec ingest ingest search kosovo
#   docker run -d -p 8080:8080 -v ingest-data:/data -e INGEST_SERVE_TOKEN=... ingest \
#     serve --listen 0.0.0.0:8080                                     # the API and pages
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest ./ingest
COPY config ./config
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ingest \
 && mkdir -p /data && chown ingest:ingest /data

USER ingest
ENV INGEST_CONFIG=/app/config/ingest.toml \
    INGEST_DATABASE_URL=sqlite:////data/ingest.sqlite3
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers 200 while the daemon's clock ticks (listen defaults to 127.0.0.1:9464;
# set INGEST_DAEMON_LISTEN=0.0.0.0:9464 to let Prometheus scrape /metrics from outside).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["ingest", "--log-format", "json"]
CMD ["daemon"]
