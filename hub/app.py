"""The Litestar app factory: one function that wires settings, plugins and routes."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.security.session_auth import SessionAuth
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.template.config import TemplateConfig

from hub.auth import PUBLIC_PATHS, CurrentUser, retrieve_user
from hub.events import make_backend, make_channels_plugin
from hub.services import Services
from hub.settings import Settings

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# Modules that contribute routes; each exposes ``route_handlers: list`` and may expose
# ``configure_templates(engine)`` (Jinja filters), ``async start(services)`` (start-up work)
# and ``async stop(services)`` (its undoing).
ROUTE_MODULES: tuple[str, ...] = (
    "web.routes",
    "channels.webchat.routes",
    "channels.webchat.embed",
    "channels.fax.routes",
    "channels.sms.routes",
    "channels.telegram.routes",
    "hub.demo_api",
)


@get("/health", exclude_from_auth=True, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def _session_store(settings: Settings) -> Store:
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        return RedisStore.with_client(url=settings.redis_url, namespace="contacthub-sessions")
    from litestar.stores.file import FileStore

    return FileStore(settings.var_dir / "sessions")


def _login_redirect(request: Request, exc: NotAuthorizedException) -> Response:
    """Browsers go to the login page; HTMX swaps get HX-Redirect; APIs get the 401."""
    if request.headers.get("hx-request"):
        return Response(content="", status_code=401, headers={"HX-Redirect": "/login"})
    if "text/html" in request.headers.get("accept", ""):
        return Redirect(f"/login?next={request.url.path}")
    return Response(content={"detail": exc.detail}, status_code=401)


ERROR_TITLES = {
    400: "That request was not understood",
    403: "Not for your role",
    404: "Not found",
    405: "Not allowed here",
    409: "That conflicts with what is there",
    413: "Too large",
    422: "Please check what you entered",
    429: "Too many requests",
}


def _wants_page(request: Request) -> bool:
    """A person's browser navigating (not htmx, not an API client asking for JSON)."""
    return not request.headers.get("hx-request") and "text/html" in request.headers.get(
        "accept", ""
    )


def _error_response(request: Request, exc: Exception) -> Response:
    """Errors as pages in the app's style for browsers, as JSON for everyone else (htmx
    shows the JSON ``detail`` in the page it came from). A 500 says nothing of its cause
    to the client; the log has the traceback."""
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        status, detail = 500, ""
    if status >= 500:
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = "Something went wrong on our side. It has been logged; please try again."
    headers = getattr(exc, "headers", None) or {}
    if not _wants_page(request):
        content: dict[str, object] = {"status_code": status, "detail": detail}
        if status < 500 and getattr(exc, "extra", None):
            content["extra"] = exc.extra  # type: ignore[attr-defined]
        return Response(content=content, status_code=status, headers=headers)
    user = request.user if "user" in request.scope else None
    logged_in = isinstance(user, CurrentUser)
    return Template(
        template_name="error.html",
        context={
            "user": user if logged_in else None,
            "status_code": status,
            "title": ERROR_TITLES.get(status, "Something went wrong" if status >= 500 else "Error"),
            "detail": detail,
            "request_path": request.url.path,
            # "/" sends each role home, or to the login page (unmatched paths run no
            # middleware, so they cannot tell who is asking)
            "back": "/",
        },
        status_code=status,
        headers=headers,
    )


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings()
    settings.ensure_dirs()
    channels = make_channels_plugin(make_backend(settings.redis_url))

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = Services.build(settings, channels)
        app.state.services = services
        app.state.sessionmaker = services.sessionmaker
        from hub.channel_runtime import start_channels, stop_channels

        await services.start()
        await start_channels(services)
        for module in modules:
            if hasattr(module, "start"):
                await module.start(services)
        try:
            yield
        finally:
            for module in reversed(modules):
                if hasattr(module, "stop"):
                    await module.stop(services)
            await stop_channels(services)
            await services.close()

    route_handlers: list = [health]
    modules = [importlib.import_module(name) for name in ROUTE_MODULES]
    for module in modules:
        route_handlers.extend(module.route_handlers)

    def configure_templates(engine: JinjaTemplateEngine) -> None:
        for module in modules:
            if hasattr(module, "configure_templates"):
                module.configure_templates(engine)

    static_dirs = [WEB_DIR / "static"] if (WEB_DIR / "static").is_dir() else []
    if static_dirs:
        route_handlers.append(
            create_static_files_router(path="/static", directories=static_dirs, name="static")
        )
    node_modules = WEB_DIR / "node_modules"
    route_handlers.append(
        create_static_files_router(
            path="/assets",
            directories=[
                node_modules / "htmx.org" / "dist",
                node_modules / "htmx-ext-sse" / "dist",
                node_modules / "chart.js" / "dist",  # chart.umd.min.js (staffing, reports)
                node_modules / ".build",  # bundled at set-up by esbuild: the dialog editor
                node_modules / "chartjs-chart-matrix" / "dist",
            ],
            name="assets",
            include_in_schema=False,
        )
    )

    session_auth = SessionAuth[CurrentUser, ServerSideSessionConfig](
        retrieve_user_handler=retrieve_user,
        session_backend_config=ServerSideSessionConfig(
            store="sessions", max_age=12 * 3600, httponly=True, samesite="lax"
        ),
        exclude=[f"^{p}" for p in PUBLIC_PATHS],
    )
    return Litestar(
        route_handlers=route_handlers,
        lifespan=[lifespan],
        plugins=[channels, HTMXPlugin()],
        on_app_init=[session_auth.on_app_init],
        stores={"sessions": _session_store(settings)},
        csrf_config=CSRFConfig(
            secret=settings.resolved_secret_key(),
            cookie_name="csrftoken",
            header_name="x-csrftoken",
            cookie_samesite="lax",
            # the widget sends its visitor token as a header and never reads a cookie there
            exclude=["/webhooks", "/health", "/chat/w/"],
        ),
        template_config=TemplateConfig(
            directory=WEB_DIR / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=configure_templates,
        ),
        exception_handlers={
            NotAuthorizedException: _login_redirect,
            HTTPException: _error_response,
            Exception: _error_response,
        },
        request_max_body_size=settings.max_request_bytes,
        debug=settings.debug,
    )
