"""The dashboard's Queues page over HTTP, on a real Redis whose failed registry a real
`rq worker` process filled: who may see it, who may act, CSRF, bad input, Redis down."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from aftercall.web import create_app
from aftercall.web.dashboard.views import SECURITY_HEADERS
from core.apikeys import INTAKE, REPORTS_FULL, create_key
from core.users import create_user
from tests.aftercall.rq_processes import PHONE, call_customer, run_burst_worker
from tests.dashboard.conftest import PASSWORD, csrf_from, sign_in
from tests.dashboard.dom import parse
from tests.test_procfile import free_port

pytestmark = pytest.mark.redis

MASKED = "+1 415 ••• ••23"


@pytest.fixture
def queue_runtime(runtime, redis_url):
    return replace(runtime, settings=runtime.settings.with_overrides(redis_url=redis_url))


@pytest.fixture
def redis(redis_url):
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def failed_job(redis, redis_url, tmp_path) -> str:
    """A call job that a real worker process ran and failed."""
    job = Queue("calls", connection=redis).enqueue(call_customer, PHONE, str(tmp_path / "up"))
    run_burst_worker(redis_url, "calls")
    assert job.get_status(refresh=True) == JobStatus.FAILED
    return job.id


@pytest.fixture
def signed_in_as(queue_runtime):
    app = create_app(runtime=queue_runtime)
    app.config["TESTING"] = True

    def client_for(role: str):
        with queue_runtime.db.session() as session:
            create_user(session, role, PASSWORD, role)
        client = app.test_client()
        assert sign_in(client, role).status_code == 302
        return client

    return client_for


def failed_ids(redis) -> list[str]:
    return Queue("calls", connection=redis).failed_job_registry.get_job_ids(cleanup=False)


def action_url(job_id: str, action: str = "requeue", queue: str = "calls") -> str:
    return f"/dashboard/queues/{queue}/failed/{job_id}/{action}"


def test_admin_sees_queues_and_the_failed_job_masked(signed_in_as, failed_job):
    response = signed_in_as("admin").get("/dashboard/queues")
    assert response.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert response.headers["Cache-Control"] == "no-store"
    page = parse(response.text)

    rows = {row.get("data-queue"): row for row in page.find_all("tr") if row.get("data-queue")}
    assert list(rows) == ["calls", "messages", "alerts"]
    failed_cell = rows["calls"].find("td", data_key="failed")
    assert failed_cell is not None and failed_cell.text == "1"
    scheduler = rows["calls"].find("td", data_key="scheduler")
    assert scheduler is not None and scheduler.get("data-alive") == "no"
    workers = rows["calls"].find("td", data_key="workers")
    assert workers is not None and workers.text == "0"
    assert page.find(id="no-cron") is not None
    assert page.find(id="no-workers") is not None

    (job,) = page.find_all("tr", data_job=failed_job)
    call = job.find("td", data_key="call")
    assert call is not None and f"call_customer('{MASKED}'" in call.text
    error = job.find("td", data_key="error")
    assert (
        error is not None and error.text == f"ConnectionError: no line to {MASKED} for request 42"
    )
    assert "5550123" not in response.text
    forms = job.find_all("form")
    assert [f.get("action") for f in forms] == [
        action_url(failed_job, "requeue"),
        action_url(failed_job, "delete"),
    ]
    assert page.find("a", id="nav-queues") is not None


def test_supervisor_reads_but_cannot_act(signed_in_as, failed_job, redis):
    client = signed_in_as("supervisor")
    response = client.get("/dashboard/queues")
    assert response.status_code == 200
    page = parse(response.text)
    assert page.find_all("tr", data_job=failed_job)
    assert not page.find_all("form", class_="requeue") and not page.find_all(
        "form", class_="delete"
    )
    assert page.find("a", id="nav-queues") is not None

    token = csrf_from(response.text)  # the sign-out form's: a valid token for this session
    for action in ("requeue", "delete"):
        forged = client.post(action_url(failed_job, action), data={"csrf_token": token})
        assert forged.status_code == 403
    assert failed_ids(redis) == [failed_job]


def test_analyst_gets_403_and_no_link(signed_in_as, failed_job, redis):
    client = signed_in_as("analyst")
    assert client.get("/dashboard/queues").status_code == 403
    token = csrf_from(client.get("/dashboard").text)
    assert client.post(action_url(failed_job), data={"csrf_token": token}).status_code == 403
    assert parse(client.get("/dashboard").text).find("a", id="nav-queues") is None
    assert failed_ids(redis) == [failed_job]


def test_signed_out_and_api_keys_get_the_sign_in_page(queue_runtime, failed_job, redis):
    client = create_app(runtime=queue_runtime).test_client()
    with queue_runtime.db.session() as session:
        key = create_key(session, "ops", (INTAKE, REPORTS_FULL))  # the most a key can hold
    for headers in ({}, {"Authorization": f"Bearer {key}"}):
        page = client.get("/dashboard/queues", headers=headers)
        assert page.status_code == 302
        assert page.headers["Location"].startswith("/dashboard/login")
        post = client.post(action_url(failed_job), headers=headers)
        assert post.status_code == 302
        assert post.headers["Location"] == "/dashboard/login"
    assert failed_ids(redis) == [failed_job]


@pytest.mark.parametrize("token", [None, "", "not-the-token"], ids=["no token", "empty", "another"])
def test_actions_need_the_sessions_csrf_token(signed_in_as, failed_job, redis, token):
    client = signed_in_as("admin")
    client.get("/dashboard/queues")
    data = {} if token is None else {"csrf_token": token}
    for action in ("requeue", "delete"):
        assert client.post(action_url(failed_job, action), data=data).status_code == 400
    assert failed_ids(redis) == [failed_job]


def test_admin_requeues_then_the_job_runs(signed_in_as, failed_job, redis, redis_url, tmp_path):
    client = signed_in_as("admin")
    token = csrf_from(client.get("/dashboard/queues").text)
    (tmp_path / "up").touch()  # the cause is fixed

    response = client.post(action_url(failed_job), data={"csrf_token": token, "page": "1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/dashboard/queues?queue=calls&page=1"
    page = parse(client.get(response.headers["Location"]).text)
    (flash,) = page.find_all("p", data_category="done")
    assert failed_job in flash.text
    assert failed_ids(redis) == []

    run_burst_worker(redis_url, "calls")
    assert Job.fetch(failed_job, connection=redis).get_status() == JobStatus.FINISHED

    # Twice (a double click, or another admin): nothing done, and said so.
    again = client.post(action_url(failed_job), data={"csrf_token": token})
    assert again.status_code == 303
    page = parse(client.get(again.headers["Location"]).text)
    (flash,) = page.find_all("p", data_category="error")
    assert "not among the failed jobs" in flash.text


def test_admin_deletes(signed_in_as, failed_job, redis):
    client = signed_in_as("admin")
    token = csrf_from(client.get("/dashboard/queues").text)
    response = client.post(action_url(failed_job, "delete"), data={"csrf_token": token})
    assert response.status_code == 303
    assert failed_ids(redis) == []
    assert not redis.exists(Job.key_for(failed_job))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("page=0", "page: expected a number from 1"),
        ("page=x", "page: expected a number"),
        ("page=99999999", "page: expected a number from 1 to"),
        ("queue=nope", "queue: expected one of calls, messages, alerts"),
    ],
)
def test_bad_query_strings_are_400(signed_in_as, query, message):
    response = signed_in_as("supervisor").get(f"/dashboard/queues?{query}")
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.parametrize(
    ("queue", "job_id", "status"),
    [("nope", "x", 404), ("calls", "no-such-job", 303), ("alerts", "FAILED", 303)],
)
def test_actions_on_what_is_not_failed_do_nothing(
    signed_in_as, failed_job, redis, queue, job_id, status
):
    client = signed_in_as("admin")
    token = csrf_from(client.get("/dashboard/queues").text)
    job_id = failed_job if job_id == "FAILED" else job_id
    response = client.post(action_url(job_id, queue=queue), data={"csrf_token": token})
    assert response.status_code == status
    assert failed_ids(redis) == [failed_job]


def test_paging_the_failed_jobs(signed_in_as, redis, redis_url, tmp_path):
    queue = Queue("calls", connection=redis)
    ids = [queue.enqueue(call_customer, PHONE, str(tmp_path / "up")).id for _ in range(23)]
    run_burst_worker(redis_url, "calls")
    client = signed_in_as("supervisor")

    first = parse(client.get("/dashboard/queues?queue=calls").text)
    second = parse(client.get("/dashboard/queues?queue=calls&page=2").text)
    shown = [
        row.get("data-job")
        for page in (first, second)
        for row in page.find_all("tr")
        if row.get("data-job")
    ]
    assert sorted(shown) == sorted(ids) and len(shown) == 23
    assert first.find(id="failed-older") is not None and first.find(id="failed-newer") is None
    assert second.find(id="failed-newer") is not None and second.find(id="failed-older") is None


def test_redis_down_is_a_clear_503(runtime):
    down = replace(
        runtime,
        settings=runtime.settings.with_overrides(redis_url=f"redis://127.0.0.1:{free_port()}/0"),
    )
    app = create_app(runtime=down)
    with down.db.session() as session:
        create_user(session, "ada", PASSWORD, "admin")
    client = app.test_client()
    assert sign_in(client, "ada").status_code == 302
    response = client.get("/dashboard/queues")
    assert response.status_code == 503
    assert parse(response.text).find(id="queues-error") is not None
    assert "Traceback" not in response.text
    token = csrf_from(response.text)
    post = client.post(action_url("some-job"), data={"csrf_token": token})
    assert post.status_code == 503
    assert "Redis does not answer" in post.text
