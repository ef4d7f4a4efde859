"""The open-loop client: POST requests on a fixed schedule, whatever the latency.

Request ``i`` of a step is due at ``start + i / rate``; it is sent then even if
earlier ones have not been answered (each is its own task). The gap between the
due time and the moment the task actually starts sending is recorded as the
schedule lag: a large lag means the client, not the system, was the limit.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp


@dataclass
class Sent:
    index: int
    priority: str
    due: float  # monotonic
    lag: float  # seconds between due and the start of sending
    sent_wall: float  # time.time() at the start of sending (compared with database timestamps)
    latency: float = 0.0  # POST round trip, seconds
    status: int = 0  # HTTP status; 0: no response
    request_id: str = ""
    error: str = ""


async def _post(
    session: aiohttp.ClientSession, url: str, token: str, body: bytes, record: Sent, on_done: Callable[[Sent], None]
) -> None:
    started = time.monotonic()
    record.lag = started - record.due
    record.sent_wall = time.time()
    try:
        async with session.post(
            url, data=body, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}
        ) as response:
            record.status = response.status
            payload = await response.read()
            if response.status == 201:
                record.request_id = json.loads(payload)["id"]
            else:
                record.error = payload[:200].decode(errors="replace")
    except (aiohttp.ClientError, TimeoutError) as exc:
        record.error = repr(exc)
    record.latency = time.monotonic() - started
    on_done(record)


async def run_step(
    *,
    url: str,
    tokens: list[str],
    bodies: list[dict],
    rate: float,
    on_done: Callable[[Sent], None],
    timeout: float = 30.0,
) -> list[Sent]:
    """Send ``bodies`` at ``rate`` per second (round-robin over the hospitals' tokens); wait for every answer."""
    encoded = [json.dumps(body).encode() for body in bodies]  # before the clock starts
    connector = aiohttp.TCPConnector(limit=512, ttl_dns_cache=300)
    records: list[Sent] = []
    tasks = []
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        start = time.monotonic() + 0.05
        for index, body in enumerate(encoded):
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            record = Sent(index=index, priority=bodies[index]["priority"], due=due, lag=0.0, sent_wall=0.0)
            records.append(record)
            token = tokens[index % len(tokens)]
            tasks.append(asyncio.create_task(_post(session, url, token, body, record, on_done)))
        await asyncio.gather(*tasks)
    return records
