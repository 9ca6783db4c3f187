# One image for every V-Tax process: signaling nodes (`vtax serve`), migrations
# (`vtax migrate`) and recorder workers (`vtax recorder`).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY vtax ./vtax
COPY signaling ./signaling
RUN pip install --no-cache-dir .
COPY web ./web
COPY examples ./examples
RUN cd web && npm ci --no-audit --no-fund && npm run build && npm prune --omit=dev --no-audit --no-fund
ENV VTAX_WEB_DIR=/app/web VTAX_DATA_DIR=/data VTAX_RECORDINGS_DIR=/recordings
EXPOSE 8080
CMD ["vtax", "serve", "--host", "0.0.0.0", "--port", "8080"]
