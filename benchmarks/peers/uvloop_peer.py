"""asyncio on uvloop: asyncio_peer's workloads on a uvloop event loop."""

from __future__ import annotations

import uvloop

from peers import asyncio_peer
from peers.asyncio_peer import NOTES, WORKLOADS  # noqa: F401  (the contract)

asyncio_peer.loop_factory = uvloop.new_event_loop
VERSION = "uvloop " + uvloop.__version__
