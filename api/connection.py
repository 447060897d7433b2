"""Connecting the API to Temporal (local dev server, self-hosted cluster or Temporal Cloud)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.settings import ApiSettings


async def connect(settings: ApiSettings) -> Client:
    # The pydantic converter is what the workers use: HrEvent must round-trip identically.
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=settings.temporal_tls,
        data_converter=pydantic_data_converter,
        connect_timeout=timedelta(seconds=10),
    )


async def temporal_is_healthy(client: Client) -> bool:
    # GetSystemInfo rather than the gRPC health service: Temporal Cloud answers it too, and it
    # proves the API key is accepted, not just that a port is open.
    try:
        await client.workflow_service.get_system_info(
            GetSystemInfoRequest(), retry=False, timeout=timedelta(seconds=3)
        )
        return True
    except Exception:
        # Any failure to answer (refused, timeout, TLS, auth) means "not healthy" to a probe.
        return False
