"""The Procfile's processes run as written (copied into a shell, as honcho does)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from core import migrate

ROOT = Path(__file__).resolve().parent.parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_procfile_has_the_product_processes():
    assert {"web", "worker", "release", "cron"} <= set(procfile())
    assert "$PORT" in procfile()["web"] or "${PORT" in procfile()["web"]


def test_release_then_web_serve_health(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'procfile.db'}",
        "PORT": str(free_port()),
        "WEB_CONCURRENCY": "1",
    }
    subprocess.run(["bash", "-c", procfile()["release"]], env=env, check=True, cwd=tmp_path)
    assert migrate.current_revision(env["DATABASE_URL"]) is not None
    web = subprocess.Popen(
        ["bash", "-c", f"exec {procfile()['web']}"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{env['PORT']}/healthz") as reply:
                    assert reply.status == 200
                    break
            except OSError:
                if web.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"web did not start: {web.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=10)


def redis_url() -> str:
    url = os.environ.get("AFTERCALL_TEST_REDIS_URL", "")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must set AFTERCALL_TEST_REDIS_URL to a Redis server")
        pytest.skip("set AFTERCALL_TEST_REDIS_URL to run against Redis")
    return url


def test_worker_starts_and_listens_on_the_call_queue(tmp_path):
    from redis import Redis
    from rq import Worker

    url = redis_url()
    env = {**os.environ, "REDIS_URL": url, "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    worker = subprocess.Popen(
        ["bash", "-c", f"exec {procfile()['worker']}"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    connection = Redis.from_url(url)
    try:
        deadline = time.monotonic() + 30
        while not any(w.pid == worker.pid for w in Worker.all(connection=connection)):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not start: {worker.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        (registered,) = [w for w in Worker.all(connection=connection) if w.pid == worker.pid]
        assert registered.queue_names() == ["calls", "messages", "alerts"]
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=10)


def test_phonesim_command_serves_the_twilio_api(tmp_path):
    from twilio.rest import Client

    from core.telephony import RedirectingHttpClient

    port = free_port()
    env = {**os.environ, "TWILIO_ACCOUNT_SID": "AC" + "5" * 32, "TWILIO_AUTH_TOKEN": "secret"}
    sim = subprocess.Popen(
        ["aftercall", "phonesim", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        assert "phonesim listening on" in sim.stdout.readline().decode()
        client = Client(
            env["TWILIO_ACCOUNT_SID"], "secret",
            http_client=RedirectingHttpClient(f"http://127.0.0.1:{port}"),
        )  # fmt: skip
        call = client.calls.create(
            to="+14155550123", from_="+14155550100", url="http://127.0.0.1:9/x"
        )
        assert call.sid.startswith("CA")
        assert client.calls(call.sid).fetch().to == "+14155550123"
    finally:
        os.killpg(sim.pid, signal.SIGINT)
        sim.wait(timeout=10)


def test_cron_process_queues_reconciliation_and_rollup_compaction(tmp_path):
    from redis import Redis
    from rq import Queue

    url = redis_url()
    Redis.from_url(url).flushdb()
    env = {**os.environ, "REDIS_URL": url}
    cron = subprocess.Popen(
        ["bash", "-c", f"exec {procfile()['cron']}"], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    queue = Queue("calls", connection=Redis.from_url(url))
    try:
        deadline = time.monotonic() + 20
        wanted = {"dialer.jobs.reconcile", "scoring.jobs.compact_rollup"}
        while not wanted <= {job.func_name for job in queue.jobs}:
            if cron.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"cron queued nothing: {cron.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
    finally:
        os.killpg(cron.pid, signal.SIGTERM)
        cron.wait(timeout=10)
