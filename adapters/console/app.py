"""The console's web app: server-rendered pages over the read models, a login that sets a signed
cookie, and one POST that changes something (a dead letter's retry), guarded by the session and a
CSRF token. Database reads run in the thread pool: the read models are synchronous.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, quote

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from adapters.console import pages
from adapters.console.auth import Credentials
from adapters.dead_letters import RetryOutcome, SqlDeadLetterStore
from adapters.db.read_models.counters import counters

HERE = Path(__file__).resolve().parent
SESSION_HOURS = 8
MAX_FORM_BYTES = 4096
FAILED_LOGIN_DELAY_S = 0.5  # slows guessing down; scrypt slows it further for a users file
PUBLIC = ("/login", "/healthz", "/static/")
SECURITY_HEADERS = {
    # No inline script or style anywhere: what the page runs is /static/console.js.
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class ConsoleSettings:
    secret_key: str  # signs the session cookie
    https_only: bool = False  # set behind a TLS proxy: the cookie then never travels in clear


def create_console_app(engine: sa.Engine, credentials: Credentials, settings: ConsoleSettings,
                       retry: Callable[[int, str], RetryOutcome]) -> Starlette:
    """`retry(letter_id, operator)` replays a dead letter and records who asked."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["cny"] = _cny
    templates.env.globals["cst"] = pages.CST
    letters = SqlDeadLetterStore(engine)

    def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context.update(user=request.session.get("user"), csrf=_csrf(request), credential_kind=credentials.kind,
                       flash=request.session.pop("flash", None))
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    async def login_page(request: Request) -> Response:
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await _form(request)
        if form is None:
            return PlainTextResponse("bad form or CSRF token", status_code=403)
        name = await run_in_threadpool(credentials.verify, form.get("name", "").strip(), form.get("secret", ""))
        if name is None:
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)
            return render(request, "login.html", status_code=401, next=_safe_next(form.get("next")), name=form.get("name", "")[:64],
                          error="wrong name or " + ("password" if credentials.users is not None else "token"))
        request.session.clear()
        request.session.update(user=name, csrf=secrets.token_urlsafe(24))
        return RedirectResponse(_safe_next(form.get("next")), status_code=303)

    async def logout(request: Request) -> Response:
        if await _form(request) is None:
            return PlainTextResponse("bad form or CSRF token", status_code=403)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def cases(request: Request) -> Response:
        query = request.query_params.get("q", "").strip()
        case = await run_in_threadpool(pages.case, engine, query) if query else None
        return render(request, "cases.html", q=query, case=case, tab="cases")

    async def dead_letters(request: Request) -> Response:
        show_all = request.query_params.get("all") == "1"
        rows = await run_in_threadpool(pages.dead_letters, letters, show_all)
        return render(request, "dead_letters.html", letters=rows, show_all=show_all, tab="dead_letters")

    async def retry_letter(request: Request) -> Response:
        if await _form(request) is None:
            return PlainTextResponse("bad form or CSRF token", status_code=403)
        letter_id = int(request.path_params["letter_id"])
        if await run_in_threadpool(letters.get, letter_id) is None:
            return PlainTextResponse(f"no dead letter {letter_id}", status_code=404)
        outcome = await run_in_threadpool(retry, letter_id, request.session["user"])
        request.session["flash"] = pages.retry_message(outcome)
        return RedirectResponse("/dead-letters", status_code=303)

    async def ledger(request: Request) -> Response:
        month = request.query_params.get("month", "")
        if month and not MONTH.match(month):
            return render(request, "ledger.html", status_code=400, month=month, ledger=None, tab="ledger",
                          error=f"month {month!r}: expected YYYY-MM")
        view = await run_in_threadpool(pages.ledger, engine, month or None)
        return render(request, "ledger.html", month=view["month"], ledger=view, tab="ledger")

    async def counters_page(request: Request) -> Response:
        return render(request, "counters.html", tab="counters")

    async def counters_json(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(counters, engine))

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def home(request: Request) -> Response:
        return RedirectResponse("/cases", status_code=303)

    routes = [
        Route("/", home), Route("/healthz", healthz),
        Route("/login", login_page, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/cases", cases), Route("/dead-letters", dead_letters),
        Route("/dead-letters/{letter_id:int}/retry", retry_letter, methods=["POST"]),
        Route("/ledger", ledger), Route("/counters", counters_page), Route("/api/counters", counters_json),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="intercept_console",
                   max_age=SESSION_HOURS * 3600, same_site="strict", https_only=settings.https_only),
        Middleware(_Guard),
    ]
    return Starlette(routes=routes, middleware=middleware)


class _Guard:
    """Every path but the login, /healthz and the static files needs a signed-in operator; every
    answer carries the security headers."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)

        path = scope["path"]
        if not path.startswith(PUBLIC) and not scope.get("session", {}).get("user"):
            if path.startswith("/api/"):
                response: Response = JSONResponse({"error": "sign in first"}, status_code=401)
            elif scope["method"] == "GET":
                target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
                response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            else:
                response = PlainTextResponse("sign in first", status_code=401)
            return await response(scope, receive, with_headers)
        return await self.app(scope, receive, with_headers)


def _cny(fen: int | None) -> str:
    """Fen as yuan with two decimals, by integer arithmetic (docs/domain.md §2: no floats)."""
    if fen is None:
        return "–"
    sign, fen = ("-" if fen < 0 else ""), abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def _csrf(request: Request) -> str:
    """The session's CSRF token, made on first use (the login form has one before any user)."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(24)
    return request.session["csrf"]


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded form of a POST whose CSRF token is the session's, or None. (Parsed here:
    a form of three short fields needs no multipart parser.)"""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        return None
    expected = request.session.get("csrf")
    if not expected or not hmac.compare_digest(form.get("csrf", "").encode(), expected.encode()):
        return None
    return form


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never `//elsewhere` or a scheme): no open redirect after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    return target
