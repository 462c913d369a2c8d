"""Microsoft Entra credentials for identity-based connections (Azure only)."""
from __future__ import annotations

from functools import lru_cache
from typing import Optional


@lru_cache(maxsize=None)
def credential(client_id: Optional[str] = None):
    """One reused credential per managed identity; DefaultAzureCredential also covers a developer's az login."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
