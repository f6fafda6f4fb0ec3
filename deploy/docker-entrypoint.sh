#!/bin/sh
# Container roles: web (migrate, collect static files, gunicorn), worker, beat, or any command.
set -eu

# The data dir's folders, and the keys .env does not give (every role: each may be the first to start).
python manage.py initdata

case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    exec gunicorn webpop.wsgi \
      --bind 0.0.0.0:8000 \
      --workers "${WEB_CONCURRENCY:-4}" \
      --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-*}" \
      --access-logfile - \
      --timeout 120 \
      --graceful-timeout 30
    ;;
  worker)
    # Node names must be unique: %h is the container's host name, different for each replica.
    exec celery -A webpop worker --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${WORKER_CONCURRENCY:-4}" --hostname "worker@%h"
    ;;
  beat)
    # A second beat is harmless (it waits on standby for the beat lease), but one is all you need.
    exec celery -A webpop beat --loglevel "${LOG_LEVEL:-INFO}" \
      --schedule /tmp/celerybeat-schedule
    ;;
  *)
    exec "$@"
    ;;
esac
