# webpop: one image for every role (web, worker, beat); the command picks the role.
# Build: docker build -t webpop .   Run all of it: docker compose up -d (see docs/deployment.md)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WEBPOP_DATA_DIR=/srv/webpop

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --system --home-dir /srv/webpop --shell /usr/sbin/nologin webpop \
    && mkdir -p /srv/webpop \
    && chown webpop:webpop /srv/webpop \
    && chmod +x deploy/docker-entrypoint.sh
USER webpop
VOLUME ["/srv/webpop"]
EXPOSE 8000

ENTRYPOINT ["deploy/docker-entrypoint.sh"]
CMD ["web"]
