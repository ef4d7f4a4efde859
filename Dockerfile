# One image per service: docker build --build-arg SERVICE=hospital_service -t hospital-service .
# The build context is the repository root because every service installs shared_events.
FROM python:3.11-slim AS base

ARG SERVICE
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system app && useradd --system --gid app --home /app app
WORKDIR /app

COPY shared_events /app/shared_events
COPY ${SERVICE}/requirements.txt /app/${SERVICE}/requirements.txt
RUN pip install /app/shared_events -r /app/${SERVICE}/requirements.txt

COPY ${SERVICE} /app/${SERVICE}
WORKDIR /app/${SERVICE}
# Static files are collected at build time; SECRET_KEY is only needed to load settings.
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput

USER app
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
