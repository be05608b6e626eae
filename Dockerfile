# ivr: the Twilio webhook server. Build: docker build -t ivr .
# Run:   docker run -p 8080:8080 -e TWILIO_AUTH_TOKEN=... -e IVR_PUBLIC_URL=https://... -v ivr-data:/data ivr
# An exact tag, not a digest: the digest could not be looked up where this was written
# (no registry access). Add @sha256:... once someone can.
FROM python:3.11.18-slim-bookworm

# ffmpeg and espeak-ng: prompt audio conversion and local text-to-speech for the voice assistant
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --gid 10001 ivr && useradd --create-home --uid 10001 --gid 10001 ivr
WORKDIR /app

# uv at the version and hashes make uses
COPY uv-requirements.txt ./
RUN pip install --no-cache-dir --require-hashes -r uv-requirements.txt

# The image's Python, never a downloaded one; bytecode compiled now, since user ivr
# cannot write it into the root-owned venv at run time.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/app/.venv/bin:$PATH

# dependencies first, exactly as uv.lock pins them (hashes checked), so code edits
# do not reinstall them
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# then ivr itself: its dependencies are already in place
COPY README.md ./
COPY ivr ./ivr
RUN uv sync --frozen --no-dev --no-editable && rm -rf build ivr.egg-info

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
# by number: Kubernetes' runAsNonRoot can only check a numeric user
USER 10001:10001
EXPOSE 8080

# the port from IVR_PORT, read by Python: exec form has no shell to expand it
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('IVR_PORT', '8080'); sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=2).status != 200)"]

# exec form: ivr is PID 1 and gets SIGTERM for a graceful shutdown
CMD ["ivr", "serve"]
