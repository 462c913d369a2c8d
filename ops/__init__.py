"""Operations commands for the app's data (seeding, rebuilding projections): `python -m ops --help`."""
from __future__ import annotations

import os
from typing import Mapping

from shared import settings


def app_settings(env: Mapping[str, str] = os.environ) -> settings.Settings:
    """The app's settings: local.settings.json (or its sample) under the environment."""
    from local.config import ROOT
    from local.stack import local_settings

    return settings.load({**local_settings(ROOT), **{k: v for k, v in env.items() if v}})
