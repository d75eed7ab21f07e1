# Vestnik: one image for `vestnik serve`, `vestnik migrate`, `vestnik check-config` and the
# other commands. The templates (templates/**/*.j2) and the migrations are package data of
# the wheel; the build stops if they are missing from the installed package.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY dispatch ./dispatch
COPY storage ./storage
COPY templates ./templates
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/python -c "import pathlib, storage, templates; \
t = pathlib.Path(templates.__file__).parent; m = pathlib.Path(storage.__file__).parent / 'migrations'; \
assert list(t.glob('events/*.j2')), 'templates/events/*.j2 missing from the wheel'; \
assert list(t.glob('bot/*.j2')) and list(t.glob('email/*.j2')), 'bot/e-mail templates missing'; \
assert (m / 'env.py').is_file() and list(m.glob('versions/*.py')), 'migrations missing'"

FROM python:3.11-slim
RUN useradd --create-home --home-dir /app --uid 10001 --user-group vestnik
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VESTNIK_HTTP__HOST=0.0.0.0 \
    VESTNIK_HTTP__PORT=8080
USER vestnik
# ./vestnik.toml here is read when present (mount it read-only); everything else comes from
# VESTNIK_<SECTION>__<KEY> variables.
WORKDIR /app
EXPOSE 8080
STOPSIGNAL SIGTERM
# Ready = the process answers and its database does (/readyz).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('VESTNIK_HTTP__PORT', '8080'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["vestnik"]
CMD ["serve", "--no-migrate"]
