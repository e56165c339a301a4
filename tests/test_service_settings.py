"""The service's secret: refused in production when it is the default, short or empty."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import SecretStr

from geo_protect.errors import ConfigError
from geo_protect.settings import DEV_SECRET, Settings

STRONG = "s" * 40


@pytest.mark.parametrize("secret", [DEV_SECRET, "", "short-but-not-default"])
def test_production_refuses_a_weak_secret(secret: str) -> None:
    settings = Settings(environment="production", secret_key=SecretStr(secret))
    with pytest.raises(ConfigError, match="GEO_PROTECT_SECRET_KEY"):
        settings.checked_secret()


def test_production_takes_a_strong_secret_and_development_the_default() -> None:
    assert Settings(environment="production", secret_key=SecretStr(STRONG)).checked_secret()
    assert Settings(environment="development").checked_secret() == DEV_SECRET


def test_serve_will_not_start_in_production_with_the_default_secret() -> None:
    env = {
        **os.environ,
        "GEO_PROTECT_ENVIRONMENT": "production",
        "GEO_PROTECT_STORE": "postgis",
        # the check comes first: no database is needed to be refused
        "GEO_PROTECT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
    }
    env.pop("GEO_PROTECT_SECRET_KEY", None)
    done = subprocess.run(
        [sys.executable, "-m", "geo_protect.cli", "serve", "--port", "1", "--no-mqtt"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "GEO_PROTECT_SECRET_KEY" in done.stderr
