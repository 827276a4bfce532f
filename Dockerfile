# The image is built by the Makefile's own install recipe, so what `make test` tested ships.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md Makefile alembic.ini ./
COPY connector ./connector
COPY whatsapp ./whatsapp
COPY crm_adapters ./crm_adapters
COPY migrations ./migrations
RUN make install INSTALL_SPEC=. PYTHON=python3

ENV WACRM_HOST=0.0.0.0 \
    WACRM_PORT=8000 \
    WACRM_DATABASE_URL=sqlite:////data/wacrm.db \
    PATH=/app/.venv/bin:$PATH
VOLUME /data
EXPOSE 8000
# Web workers with embedded queue consumers and the leased scheduler; set WACRM_EMBEDDED=0
# and run `wacrm worker` containers to scale the consumers out.
CMD ["sh", "-c", "wacrm db upgrade && exec gunicorn -c python:connector.gunicorn_conf --workers ${WACRM_WEB_WORKERS:-2} 'connector:create_app()'"]
