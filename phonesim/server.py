"""Server mode: the simulator as a standalone Twilio stand-in for manual runs and load tests.

`serve()` starts the REST API and a background driver that runs calls as they are
created, then blocks until Ctrl-C. Point the product at it with
`TWILIO_API_BASE=http://host:port`. The project's CLI exposes it as
`aftercall phonesim --port N`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from phonesim.account import DEFAULT_NUMBERS
from phonesim.clock import Clock, SimClock, WallClock
from phonesim.network import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, PhoneNetwork
from phonesim.persona import PersonaMix
from phonesim.texter import TextPersonaMix


def serve(
    host: str = "127.0.0.1",
    port: int = 8099,
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
    seed: int = 0,
    persona_mix: PersonaMix | None = None,
    *,
    realtime: bool = False,
    text_persona_mix: TextPersonaMix | None = None,
    calls_per_second: float | None = None,
    numbers: Iterable[str] = DEFAULT_NUMBERS,
    caller_ids: Iterable[str] = (),
    account_status: str = "active",
    stop: threading.Event | None = None,
) -> None:
    """Runs a phone network until Ctrl-C (or until `stop` is set).

    `realtime=False` (the default) runs each call in simulated time, as fast as the
    app answers its webhooks: right for load tests. `realtime=True` waits out every
    ring, prompt and timeout on the wall clock, for watching a demo. `numbers` are the
    account's own (voice-capable) numbers, `caller_ids` its verified caller IDs: what
    `aftercall doctor` finds when it checks TWILIO_FROM_NUMBER. `text_persona_mix`
    makes customers text back (`TextPersonaMix.default()`); None: they never do.
    """
    clock: Clock = WallClock() if realtime else SimClock()
    network = PhoneNetwork(
        account_sid,
        auth_token,
        clock=clock,
        seed=seed,
        persona_mix=persona_mix,
        text_persona_mix=text_persona_mix,
        calls_per_second=calls_per_second,
        numbers=numbers,
        caller_ids=caller_ids,
        account_status=account_status,
        host=host,
        port=port,
    )
    network.start()
    network.start_driver()
    account = network.account
    print(
        f"phonesim listening on {network.api_base} (account {account_sid}, {account.status})",
        flush=True,
    )
    print("numbers: " + ", ".join(n.phone_number for n in account.numbers), flush=True)
    if account.caller_ids:
        print(
            "verified caller IDs: " + ", ".join(c.phone_number for c in account.caller_ids),
            flush=True,
        )
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
