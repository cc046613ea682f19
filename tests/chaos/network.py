"""Several phonesim networks behind one Twilio address, so that calls run side by side.

phonesim's driver runs all of a network's calls on one thread and posts their webhooks
one at a time. A survey call makes about 9 webhooks, each 20-50 ms on the loaded 2-core
machine the suite runs on, so one driver carries 2-5 calls a second however many
workers dial: it was busy 87-94% of the time in 100-150 request campaigns, with calls
queueing behind it. Twilio runs every call on its own.

`ShardedNetwork` runs `shards` networks, each with its own driver and REST server, and
serves them at one API address: a create goes to the shard that owns the number called
(so every call to a number is in one shard's journal and is checked against its other
calls), a fetch or update of a call or a recording to the shard that knows its SID.
Callees are chosen as one network seeded with `seed` would choose them, whatever the
number of shards. With one shard it is a plain PhoneNetwork behind a router.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable
from itertools import chain
from typing import Any
from urllib.parse import parse_qs

from phonesim import EagerClock, Persona, PersonaMix, PhoneNetwork, SimCall
from phonesim.errors import ApiError
from phonesim.rest import RestApi
from phonesim.wsgi import BackgroundServer

_CALL_PATH = re.compile(r"/Calls/(?P<sid>[^/]+)\.json$")
_RECORDING_PATH = re.compile(r"/Recordings/(?P<sid>[^/.]+)(\.\w+)?$")
# Far apart, so that no two shards draw the same call SIDs.
_SHARD_SEED_STEP = 1_000_003


class ShardedNetwork:
    """What the chaos tests use of a PhoneNetwork, over `shards` of them."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        shards: int = 1,
        seed: int = 0,
        persona_mix: PersonaMix | None = None,
    ) -> None:
        if shards < 1:
            raise ValueError(f"a network needs at least one shard, not {shards}")
        self.seed = seed
        self.persona_mix = persona_mix or PersonaMix.default()
        self.shards = [
            PhoneNetwork(
                account_sid,
                auth_token,
                clock=EagerClock(),
                seed=seed + index * _SHARD_SEED_STEP,
                persona_mix=self.persona_mix,
            )
            for index in range(shards)
        ]
        self._apis = [RestApi(shard) for shard in self.shards]
        self._server: BackgroundServer | None = None

    # -- running ------------------------------------------------------------------
    def start(self) -> None:
        """Every shard's REST server (recordings are served from it) and driver, then
        the shared address."""
        for shard in self.shards:
            shard.start()
            shard.start_driver()
        self._server = BackgroundServer(self, "127.0.0.1", 0).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        for shard in self.shards:
            shard.stop()

    @property
    def api_base(self) -> str:
        assert self._server is not None, "start() the network first"
        return self._server.base_url

    def busy(self) -> bool:
        """A call is live or an event is pending on some shard."""
        return any(shard._busy() for shard in self.shards)

    def run_until_idle(self, timeout: float = 30.0) -> None:
        for shard in self.shards:
            shard.run_until_idle(timeout=timeout)

    # -- what the tests read --------------------------------------------------------
    @property
    def calls(self) -> list[SimCall]:
        return list(chain.from_iterable(shard.calls for shard in self.shards))

    @property
    def journal(self) -> MergedJournal:
        return MergedJournal([shard.journal for shard in self.shards])

    # -- faults ---------------------------------------------------------------------
    def lose_final_callbacks(self, share: float | None = None, numbers: Iterable[str] = ()) -> None:
        numbers = list(numbers)
        for shard in self.shards:
            shard.lose_final_callbacks(share, numbers)

    def inject_fault(self, *args: Any, **kwargs: Any) -> None:
        self._only_shard("inject_fault").inject_fault(*args, **kwargs)

    def slow_down_creates(self, seconds: float, times: int = 1) -> None:
        self._only_shard("slow_down_creates").slow_down_creates(seconds, times)

    def _only_shard(self, what: str) -> PhoneNetwork:
        # A fault counts its `times` per shard, and each shard sees only its numbers.
        if len(self.shards) != 1:
            raise ValueError(f"{what} needs a network of one shard, not {len(self.shards)}")
        return self.shards[0]

    # -- routing --------------------------------------------------------------------
    def owner_of(self, number: str) -> PhoneNetwork:
        return self.shards[zlib.crc32(number.encode()) % len(self.shards)]

    def persona_for(self, number: str) -> Persona:
        return self.persona_mix.choose(self.seed, number)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        """The WSGI app at `api_base`: each request to the shard it belongs to."""
        path = environ.get("PATH_INFO", "")
        shard = self.shards[0]
        if path.endswith("/Calls.json") and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            to = parse_qs(body.decode()).get("To", [""])[-1]
            shard = self.owner_of(to)
            if to:
                shard.set_persona(to, self.persona_for(to))
        elif path.endswith("/Calls.json") and len(self.shards) > 1:
            start_response("501 Not Implemented", [("Content-Type", "text/plain")])
            return [b"phonesim shards: listing calls across shards is not supported"]
        elif match := _CALL_PATH.search(path):
            shard = self._knowing(match["sid"], lambda s, sid: s.call(sid))
        elif match := _RECORDING_PATH.search(path):
            shard = self._knowing(match["sid"], lambda s, sid: s.recording(sid))
        return self._apis[self.shards.index(shard)](environ, start_response)

    def _knowing(self, sid: str, look_up: Any) -> PhoneNetwork:
        """The shard that knows `sid`; the first one (which answers 404) if none does."""
        for shard in self.shards:
            try:
                if look_up(shard, sid) is not None:
                    return shard
            except ApiError:
                continue
        return self.shards[0]


class MergedJournal:
    """The shards' journals read as one, each list in the order things happened."""

    def __init__(self, journals: list[Any]) -> None:
        self._journals = journals

    def _merged(self, kind: str) -> list[Any]:
        entries = chain.from_iterable(getattr(journal, kind) for journal in self._journals)
        return sorted(entries, key=lambda entry: entry.at)

    @property
    def documents(self) -> list[Any]:
        return self._merged("documents")

    @property
    def callbacks(self) -> list[Any]:
        return self._merged("callbacks")

    @property
    def rest(self) -> list[Any]:
        return self._merged("rest")
