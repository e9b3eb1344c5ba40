"""Configuration, read once from the environment (and a .env file if present)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL; without it an embedded server runs in the data folder",
    )
    data_dir: Path = Path(".imaging-bridge")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    mllp_port: int = Field(default=2575, ge=1, le=65535)
    jwt_private_key: SecretStr | None = Field(
        default=None, description="PEM Ed25519 private key that signs access tokens"
    )
    jwt_key_id: str = "k1"
    event_cipher_key: SecretStr | None = Field(
        default=None,
        description="base64 AES-256 key that encrypts every stored event (AES-GCM)",
    )
    reset_link: str = Field(
        default="http://127.0.0.1:8000/reset-password#token={token}",
        description="where password reset links point; {token} is replaced",
    )
    access_token_minutes: int = Field(default=15, ge=1, le=15)
    refresh_token_days: int = Field(default=14, ge=1, le=90)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_level: str = "INFO"
    log_json: bool = True
