"""Settings shared by every service and the CLI, read from the environment.

Every setting has the prefix ``AMENDS_`` (``AMENDS_MONGODB_DATABASE``...). The two
connection URLs also accept the conventional un-prefixed names
``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URL`` so that platform tooling can point
amends at external servers without knowing our prefix.

Secrets (passwords, connection strings with credentials, webhook secrets) can also come
from files: with ``AMENDS_SECRETS_DIR=/run/secrets/amends`` each setting may be a file of
that directory named like its variable (``amends_kafka_sasl_password``, ``mongodb_url``,
``amends_webhook_secrets``...), as Kubernetes and Docker mount secrets. The environment
wins over a file; nothing secret is ever read from the repository.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Connection and runtime settings common to all four services."""

    model_config = SettingsConfigDict(env_prefix="AMENDS_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        # The local broker's port (deploy/local/kafka.sh honours KAFKA_PORT too).
        default_factory=lambda: f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "AMENDS_KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers, comma separated.",
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str = Field(default="PLAIN", description="PLAIN, SCRAM-SHA-256/512.")
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle for Kafka TLS.")
    mongodb_url: SecretStr = Field(
        # The local server's port (deploy/local/mongo.sh honours MONGO_PORT too).
        default_factory=lambda: SecretStr(
            f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}/?retryWrites=false"
        ),
        validation_alias=AliasChoices("MONGODB_URL", "AMENDS_MONGODB_URL"),
        description="MongoDB connection string (may carry credentials and tls=true).",
    )
    mongodb_database: str = Field(default="amends", description="Database holding all state.")
    topic_prefix: str = Field(
        default="",
        description="Prefix for every topic name; lets tests and tenants share one cluster.",
    )
    create_topics: bool = Field(
        default=True, description="Create missing topics at start-up (off where Strimzi does)."
    )
    topic_partitions: int = Field(default=4, description="Partitions of topics amends creates.")
    topic_replication_factor: int = Field(default=1, description="Replicas of created topics.")
    consumer_group_prefix: str = Field(
        default="amends", description="Consumer groups are named <prefix>-<service>."
    )
    http_host: str = Field(default="127.0.0.1", description="Address of the HTTP endpoints.")
    http_port: int = Field(default=8000, description="Port of /healthz, /readyz, /metrics.")
    batch_max_records: int = Field(
        default=200, description="Most records a subscriber takes from Kafka in one batch."
    )
    # Not a wait to fill: a poll returns at once when records are there. An idle consumer
    # waits this long for one, then FastStream sleeps as long again before the next poll,
    # so a record arriving then waits up to this much at each of the four hops (at 20/s,
    # p99 ingest-to-assigned: 50 ms gave 104 and 150 ms, 10 ms 68 and 68 ms in one run of
    # bench/results/latency.json; idle CPU the same).
    batch_timeout_ms: int = Field(
        default=10, description="How long an idle consumer's poll waits for records (ms)."
    )
    max_attempts: int = Field(
        default=3,
        description="Attempts for a message whose handler fails (not counting outages) "
        "before it goes to the dead-letter topic.",
    )
    retry_backoff_seconds: float = Field(
        default=0.2, description="First backoff between attempts; doubles each time."
    )
    outage_backoff_max_seconds: float = Field(
        default=5.0,
        description="Longest wait between retries while Kafka or MongoDB is unreachable.",
    )
    startup_wait_seconds: float = Field(
        # Below the Kubernetes startupProbe's 120 s, so the pod exits with this message
        # rather than being killed without one.
        default=100.0,
        description="How long a starting service waits for Kafka and MongoDB to answer "
        "before it gives up and exits (0: fail at once).",
    )
    log_level: str = Field(default="INFO", description="Python log level.")
    log_json: bool = Field(default=True, description="Structured JSON logs on stderr.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read AMENDS_SECRETS_DIR when the settings are built (not at import), so a process
        # and its tests can point at mounted secret files.
        secrets_dir = os.environ.get("AMENDS_SECRETS_DIR")
        if secrets_dir and Path(secrets_dir).is_dir():
            file_secret_settings = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def group_id(self, service: str) -> str:
        return f"{self.consumer_group_prefix}-{service}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
