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
# INTERCEPT_HOME), worker logs, an embedded database when no INTERCEPT_DATABASE_URL is set.
ENV INTERCEPT_HOME=/var/lib/intercept
WORKDIR /var/lib/intercept
USER nobody
# The ingress (`intercept serve`), the image's default command; workers and beat override it.
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["intercept", "serve", "--host", "0.0.0.0", "--port", "8080"]
