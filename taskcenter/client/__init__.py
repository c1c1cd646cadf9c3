"""taskcenter's HTTP client: a typed library for the OCP task API, the Jobs API, bulk
operations and HENGSHI's schedules and contexts, and the `taskcenter` command built on it
(taskcenter.client.cli). Imports nothing of Django: it talks to any taskcenter server
(and to OCP-compatible servers, for the OCP part) over HTTP. Manual: docs/cli.md.
"""

from taskcenter.client.api import AsyncClient, Client
from taskcenter.client.errors import ApiError, TaskcenterError, Unreachable

__all__ = ["ApiError", "AsyncClient", "Client", "TaskcenterError", "Unreachable"]
