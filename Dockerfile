# ivr: the Twilio webhook server. Build: docker build -t ivr .
# Run:   docker run -p 8080:8080 -e TWILIO_AUTH_TOKEN=... -e IVR_PUBLIC_URL=https://... -v ivr-data:/data ivr
FROM python:3.11-slim

# ffmpeg and espeak-ng: prompt audio conversion and local text-to-speech for the voice assistant
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 ivr
WORKDIR /app

# dependencies first, so code edits do not reinstall them
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir . && rm -rf /root/.cache

COPY flows ./flows
COPY audio ./audio

ENV IVR_HOST=0.0.0.0 \
    IVR_PORT=8080 \
    IVR_FLOWS=/app/flows \
    IVR_AUDIO=/app/audio \
    IVR_DATA=/data \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown ivr:ivr /data
VOLUME ["/data"]
USER ivr
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]

# exec form: ivr is PID 1 and gets SIGTERM for a graceful shutdown
CMD ["ivr", "serve"]
