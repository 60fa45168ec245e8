"""The HTTP fax upload API on the real app: 201 with OCR'd text in the inbox, 200 for a
retried upload, and 401/404/413/415/422 with reasons."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlmodel import select

from hub.app import create_app
from hub.db import make_engine, make_sessionmaker
from hub.settings import Settings
from models import Message
from tests.channels.fax.pages import (
    FINE,
    STANDARD,
    crafted_tiff,
    huge_page_pdf,
    page,
    slow_pdf,
    tiff,
)
from tests.support import require_tool, seed_test_demo

SECRET = {"x-fax-secret": "upload-s3cret"}


@pytest.fixture(params=["sqlite", "postgres"])
def upload_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        target = tmp_path / "hub.sqlite3"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), target)
        return f"sqlite+aiosqlite:///{target}"
    return request.getfixturevalue("migrated_postgres_url")


@pytest.fixture
async def client(
    upload_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncTestClient]:
    require_tool("tesseract")
    url = upload_database_url
    await seed_test_demo(url)
    monkeypatch.setenv("HUB_FAX_UPLOAD_SECRET", SECRET["x-fax-secret"])
    monkeypatch.setenv("HUB_FAX_MAX_BYTES", "400000")
    # Shortened from 30 s: a fax page renders in well under a second, the hostile PDF never.
    monkeypatch.setenv("HUB_FAX_RENDER_SECONDS", "3")
    settings = Settings(var_dir=tmp_path / "var", database_url=url, secret_key="k" * 32)
    async with AsyncTestClient(create_app(settings), timeout=60) as test_client:
        yield test_client


async def fax_messages(url: str, **where: str) -> list[Message]:
    """Read with our own engine: the app runs on the test client's loop, not this one."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as db:
            query = select(Message).where(Message.content_type == "fax")
            for name, value in where.items():
                query = query.where(getattr(Message, name) == value)
            return list((await db.exec(query)).all())
    finally:
        await engine.dispose()


def upload(data: bytes, name: str = "fax.tif", content_type: str = "image/tiff", **fields: str):
    return {"files": {"file": (name, data, content_type)}, "data": fields}


async def test_uploads_land_once_and_refusals_say_why(
    client: AsyncTestClient, upload_database_url: str
):
    """One app for every case: starting the hub is the slow part of this file."""
    document = tiff(
        [(page(["Quarterly report attached"]), FINE), (page(["Page two"], STANDARD), STANDARD)]
    )
    args = upload(document, **{"from": "+1 415 555 0190", "id": "gw-991"})
    response = await client.post("/webhooks/fax/Fax", headers=SECRET, **args)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["pages"] == 2 and body["duplicate"] is False

    again = await client.post("/webhooks/fax/Fax", headers=SECRET, **args)
    assert again.status_code == 200 and again.json()["message_id"] == body["message_id"]

    rows = await fax_messages(upload_database_url, source_id="upload:gw-991")
    assert len(rows) == 1
    assert "Quarterly report attached" in " ".join(rows[0].body.split())
    assert rows[0].meta["fax"]["pages"][1]["stretched"] is True
    await refusals_say_why(client, upload_database_url)


REFUSALS = [
    ({}, "/webhooks/fax/Fax", None, 401, "x-fax-secret"),
    ({"x-fax-secret": "wrong"}, "/webhooks/fax/Fax", None, 401, "wrong"),
    (SECRET, "/webhooks/fax/Nowhere", None, 404, "no active fax inbox"),
    (SECRET, "/webhooks/fax/Fax", upload(b"hello", "a.txt", "text/plain"), 415, "TIFF or a PDF"),
    (SECRET, "/webhooks/fax/Fax", upload(crafted_tiff(80_000, 80_000)), 413, "80000×80000"),
    (SECRET, "/webhooks/fax/Fax", upload(b"II*\x00" + bytes(500_000)), 413, "limit is 400000"),
    (SECRET, "/webhooks/fax/Fax", upload(b"II*\x00" + bytes(60)), 422, "refused"),
    (
        SECRET,
        "/webhooks/fax/Fax",
        upload(huge_page_pdf(), "plan.pdf", "application/pdf"),
        413,
        "40000×40000",
    ),
    (
        SECRET,
        "/webhooks/fax/Fax",
        upload(tiff([(page(["x"]), FINE)]), **{"from": "12"}),
        422,
        "phone",
    ),
]


async def refusals_say_why(client: AsyncTestClient, upload_database_url: str) -> None:
    before = len(await fax_messages(upload_database_url))
    for headers, path, args, status, words in REFUSALS:
        response = await client.post(path, headers=headers, **(args or upload(b"")))
        assert response.status_code == status, (words, response.text)
        assert words in response.json()["detail"]
    assert len(await fax_messages(upload_database_url)) == before  # nothing stored

    status = "/webhooks/fax/Fax/status"
    unknown = {"provider_id": "spool:msg999", "status": "delivered"}
    response = await client.post(status, headers=SECRET, json=unknown)
    assert response.status_code == 404 and "spool:msg999" in response.json()["detail"]
    response = await client.post(status, headers=SECRET, json={**unknown, "status": "maybe"})
    assert response.status_code == 422 and "delivered" in response.json()["detail"]
    response = await client.post(status, json=unknown)
    assert response.status_code == 401


async def test_a_pdf_that_renders_for_hours_is_stopped_and_the_next_fax_goes_on(
    client: AsyncTestClient, upload_database_url: str
):
    hostile = upload(slow_pdf(), "drawing.pdf", "application/pdf", **{"from": "+14155550101"})
    response = await client.post("/webhooks/fax/Fax", headers=SECRET, **hostile)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["pages"] == 0
    [note] = body["problems"]
    assert "stopped at the time limit (HUB_FAX_RENDER_SECONDS=3)" in note
    [kept] = await fax_messages(upload_database_url, id=body["message_id"])
    [problem] = kept.meta["problems"]
    assert "'drawing.pdf' was refused" in problem and "HUB_FAX_RENDER_SECONDS=3" in problem
    assert [a["filename"] for a in kept.attachments] == ["drawing.pdf"]  # as it came
    workers = client.app.state.services.extras["fax"].intake.workers
    assert workers.killed == 1

    # The worker was replaced: the fax behind it is read as usual.
    normal = upload(tiff([(page(["Invoice 5521 is attached"]), FINE)]), **{"from": "+14155550102"})
    response = await client.post("/webhooks/fax/Fax", headers=SECRET, **normal)
    assert response.status_code == 201, response.text
    [stored] = await fax_messages(upload_database_url, id=response.json()["message_id"])
    assert "Invoice 5521 is attached" in " ".join(stored.body.split())
    assert "problems" not in stored.meta

    # Resent, under another provider id: recognized by its bytes before any decoding.
    jobs = workers.jobs
    for resent, first in ((hostile, body), (normal, response.json())):
        again = await client.post(
            "/webhooks/fax/Fax", headers=SECRET, **{**resent, "data": {"id": "resend-1"}}
        )
        assert again.status_code == 200, again.text
        assert again.json() == {
            "message_id": first["message_id"],
            "interaction_id": first["interaction_id"],
            "duplicate": True,
        }
    assert workers.jobs == jobs and workers.killed == 1
    assert len(await fax_messages(upload_database_url)) == 2


BAD_INPUT = [
    ("/webhooks/fax/99999999999999999999", upload(b"II*\x00"), 404, "no active fax inbox"),
    ("/webhooks/fax/%C2%B2", upload(b"II*\x00"), 404, "no active fax inbox"),
    (
        "/webhooks/fax/Fax",
        upload(tiff([(page(["x"]), FINE)]), id="gw\x00991"),
        422,
        "'id'",
    ),
    ("/webhooks/fax/Fax", upload(tiff([(page(["x"]), FINE)]), id="g" * 400), 422, "'id'"),
    (
        "/webhooks/fax/Fax",
        {"content": b"--xyz\r\nnot a part", "headers": {"content-type": "multipart/form-data"}},
        400,
        "boundary",
    ),
    (
        "/webhooks/fax/Fax",
        {
            "content": b"--xyz\r\nContent-Disposition: form-data; name=file\r\n\r\n\x00\x01",
            "headers": {"content-type": "multipart/form-data; boundary=xyz"},
        },
        400,
        "multipart",
    ),
    ("/webhooks/fax/Fax/status", {"content": b"[" * 100_000}, 422, "JSON"),
    ("/webhooks/fax/Fax/status", {"content": b'{"provider_id": [1, 2]}'}, 422, "provider_id"),
    (
        "/webhooks/fax/Fax/status",
        {"json": {"provider_id": "spool:\x00msg1", "status": "delivered"}},
        422,
        "provider_id",
    ),
    (
        "/webhooks/fax/Fax/status",
        {"json": {"provider_id": "spool:msg1", "status": {"deep": [1]}}},
        422,
        "status",
    ),
]


async def test_bad_input_gets_a_4xx_with_its_reason_and_the_hub_keeps_serving(
    client: AsyncTestClient, upload_database_url: str
):
    for path, args, status, words in BAD_INPUT:
        headers = {**SECRET, **args.get("headers", {})}
        response = await client.post(path, **{**args, "headers": headers})
        assert response.status_code == status, (path, words, response.text)
        assert words in response.json()["detail"], (path, response.text)
    assert await fax_messages(upload_database_url) == []
    normal = upload(tiff([(page(["Still serving"]), FINE)]), **{"from": "+14155550103"})
    response = await client.post("/webhooks/fax/Fax", headers=SECRET, **normal)
    assert response.status_code == 201, response.text
