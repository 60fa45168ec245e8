"""`contacthub run | migrate | seed`: start the hub with its embedded defaults."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict

import click

from hub.settings import Settings


def _migrate(settings: Settings) -> None:
    from hub.db import migrate as run_migrations

    settings.ensure_dirs()
    run_migrations(settings.resolved_database_url)


async def _seed(settings: Settings) -> list[dict[str, str]]:
    """Seed once; the logins are kept (0600) so every later start can print them again."""
    from hub.db import make_engine, make_sessionmaker
    from hub.seed import seed_demo

    engine = make_engine(settings.resolved_database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            created = await seed_demo(db)
    finally:
        await engine.dispose()
    path = settings.var_dir / "demo-logins.json"
    if created:
        path.write_text(json.dumps([asdict(login) for login in created], indent=1))
        path.chmod(0o600)
    return json.loads(path.read_text()) if path.exists() else []


def _print_banner(settings: Settings, logins: list[dict[str, str]]) -> None:
    scheme = "https" if settings.tls_certfile and settings.tls_keyfile else "http"
    base = settings.public_url or f"{scheme}://{settings.host}:{settings.port}"
    click.secho("Contact Hub is starting", bold=True)
    click.echo(f"  database   {settings.resolved_database_url}")
    click.echo(f"  pub/sub    {settings.redis_url or 'in-memory'}")
    click.echo(f"  console    {base}/console      (agents)")
    click.echo(f"  supervisor {base}/supervisor")
    click.echo(f"  admin      {base}/admin")
    click.echo(f"  web chat   {base}/chat         (customers, no login)")
    voice = os.environ.get("HUB_VOICE_ENABLED", "1").lower() not in ("0", "false", "no")
    if voice:
        from hub.seed import DEMO_DID

        sip_host = os.environ.get("HUB_VOICE_BIND_HOST", "127.0.0.1")
        sip_port = os.environ.get("HUB_VOICE_BIND_PORT", "5060")
        transports = os.environ.get("HUB_VOICE_TRANSPORTS", "udp,tcp")
        click.echo(f"  SIP        sip:{sip_host}:{sip_port} ({transports}); demo DID {DEMO_DID}")
    if logins:
        click.secho("Demo logins (also in var/demo-logins.json):", bold=True)
        for login in logins:
            line = f"  {login['role']:<10} {login['username']:<8} {login['password']}"
            if login.get("sip_extension"):
                line += f"   SIP {login['sip_extension']} / {login['sip_password']}"
            click.echo(line)


@click.command()
@click.option("--host", default=None, help="Bind address (HUB_HOST).")
@click.option("--port", type=int, default=None, help="Port (HUB_PORT).")
@click.option("--no-seed", is_flag=True, help="Do not create demo data.")
def run(host: str | None, port: int | None, no_seed: bool) -> None:
    """Migrate, seed demo data on first start, print logins and URLs, and serve."""
    import uvicorn

    settings = Settings()
    if host:
        settings.host = host
        os.environ["HUB_HOST"] = host
    if port:
        settings.port = port
        os.environ["HUB_PORT"] = str(port)
    if bool(settings.tls_certfile) != bool(settings.tls_keyfile):
        raise click.UsageError("HTTPS needs both HUB_TLS_CERTFILE and HUB_TLS_KEYFILE.")
    for path in (settings.tls_certfile, settings.tls_keyfile):
        if path and not os.path.isfile(path):
            raise click.UsageError(f"TLS file not found: {path}")
    _migrate(settings)
    logins = [] if no_seed or not settings.seed_demo else asyncio.run(_seed(settings))
    _print_banner(settings, logins)
    uvicorn.run(
        "hub.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=True,
        # The stdlib loop: the one the voice code (SIP, RTP, the media clock) is tested
        # and measured on (bench/voice.py).
        loop="asyncio",
        # HTTPS when a certificate and key are set: browsers allow the softphone's
        # microphone only on a secure origin (HTTPS, or http://localhost)
        ssl_certfile=settings.tls_certfile or None,
        ssl_keyfile=settings.tls_keyfile or None,
    )


@click.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    _migrate(Settings())
    click.echo("database is up to date")


@click.command()
def seed() -> None:
    """Create demo data (only into an empty database) and print the logins."""
    settings = Settings()
    _migrate(settings)
    for login in asyncio.run(_seed(settings)):
        click.echo(f"{login['role']:<10} {login['username']:<8} {login['password']}")
