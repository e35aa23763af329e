# ingest: news-feed archiver. The archive lives in the /data volume.
#   docker build -t ingest .
#   docker run --rm -v ingest-data:/data ingest fetch
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

ENTRYPOINT ["ingest"]
CMD ["fetch"]
