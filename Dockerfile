# The image of every service; the build argument SERVICE picks which (hospital, bloodbank or
# notification). Build context: the repository root (shared_events is installed from it):
#   docker build --build-arg SERVICE=hospital -t blood-requests/hospital-service:local .
# docker-compose.yml builds the three this way. Default command: the web process (gunicorn,
# with the service's own gunicorn.conf.py over shared_events/gunicorn_config.py: WSGI for
# hospital and bloodbank, ASGI with uvicorn workers for notification's Server-Sent Events).
# The worker is the same image with `python manage.py run_worker` (its health check:
# `python manage.py worker_health`, set in docker-compose.yml). Migrations are not run
# here: docker-compose.yml runs them in a one-shot job before the web process and worker start.

FROM python:3.11.13-slim-bookworm AS builder
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN case "$SERVICE" in hospital|bloodbank|notification) ;; \
      *) echo "build with --build-arg SERVICE=hospital|bloodbank|notification (got '$SERVICE')" >&2; exit 1 ;; \
    esac
COPY shared_events /src/shared_events
COPY ${SERVICE}_service/requirements.txt /src/requirements.txt
# Wheels of every pinned requirement and of shared_events, then a virtualenv from those wheels only.
RUN pip wheel --wheel-dir /wheels /src/shared_events -r /src/requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels shared-events -r /src/requirements.txt

FROM python:3.11.13-slim-bookworm
ARG SERVICE
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/app/metrics
# A numeric user and group (10001) of their own: runtimes and policies that check "not root"
# (Kubernetes runAsNonRoot) can tell from the number without reading /etc/passwd.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home app
COPY --from=builder /opt/venv /opt/venv
COPY ${SERVICE}_service /app/${SERVICE}_service
WORKDIR /app/${SERVICE}_service
# Static files at build time (served by WhiteNoise); settings need a key to load, not a real one.
RUN SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    python manage.py collectstatic --noinput \
 && install -d -o 10001 -g 10001 /app/metrics
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "shared_events.healthcheck", "/readyz"]
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
