FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY adapters ./adapters
COPY workers ./workers
RUN pip install --no-cache-dir .
USER nobody
