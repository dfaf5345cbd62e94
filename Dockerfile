FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY app ./app
COPY adapters ./adapters
COPY workers ./workers
COPY loadtest ./loadtest
RUN pip install --no-cache-dir . \
 && mkdir -p /var/lib/intercept \
 && chown nobody:nogroup /var/lib/intercept
# The one directory the unprivileged user writes: beat's schedule (`intercept beat` keeps it in
# INTERCEPT_HOME), a worker's metrics files (prometheus/), worker logs, an embedded database when
# no INTERCEPT_DATABASE_URL is set. Logs go to stderr unbuffered, one JSON object a line.
ENV INTERCEPT_HOME=/var/lib/intercept
ENV INTERCEPT_LOG_FORMAT=json
ENV PYTHONUNBUFFERED=1
WORKDIR /var/lib/intercept
USER nobody
# The ingress (`intercept serve`, /metrics too), the image's default command; workers and beat
# override it. 9100: a worker's /metrics when INTERCEPT_METRICS_PORT=9100.
EXPOSE 8080 9100
# SIGTERM (an orchestrator's stop) is a bounded shutdown: `intercept worker` remaps it to Celery's
# soft shutdown (docs/operations.md); give the container 30 s.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["intercept", "serve", "--host", "0.0.0.0", "--port", "8080"]
