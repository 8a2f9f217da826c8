"""The review web app: routes are thin; every action is one call into :mod:`pipeline.review.queue`.

Security: every page except the login form needs a session; every POST carries the
session's CSRF token; the session cookie is signed, HttpOnly, SameSite=Strict and Secure
unless the app is served on the loopback address; failed logins are rate-limited; Jinja2
escapes all text; responses forbid framing, sniffing, caching and inline scripts.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.middleware.sessions import SessionMiddleware

from pipeline.codebook import Codebook
from pipeline.errors import AuthenticationError, CodeerError, ReviewConflictError
from pipeline.records import Coding, ReviewStatus, User, UserRole
from pipeline.review import queue as review
from pipeline.review.users import authenticate
from pipeline.review.web.security import CSRF_FIELD, LoginLimiter, csrf_matches, new_csrf_token
from pipeline.store import Store

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
BATCH_SIZE = 10
SESSION_HOURS = 8
PUBLIC_PATHS = ("/login",)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """Raised by the guard when a request has no valid session."""


def load_secret_key(home: Path) -> str:
    """The key that signs session cookies: ``<home>/review-secret.key``, created (mode 600) if missing."""
    path = home / "review-secret.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def create_app(
    store: Store,
    codebook: Codebook,
    *,
    secret_key: str,
    secure_cookies: bool = True,
    limiter: LoginLimiter | None = None,
    batch_size: int = BATCH_SIZE,
) -> FastAPI:
    """Build the review app over one store and codebook.

    Parameters
    ----------
    store : Store
    codebook : Codebook
        Codes offered for corrections, and the version recorded with decisions.
    secret_key : str
        Signs the session cookie (see :func:`load_secret_key`).
    secure_cookies : bool
        Send the cookie over HTTPS only; :func:`serve` turns this off on the loopback address.
    limiter : LoginLimiter or None
        Failed-login limiter (default: 5 failures per 5 minutes per address and per name).
    batch_size : int
        Items claimed at a time.
    """
    app = FastAPI(title="codeer review", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(_guard)])
    app.state.store = store
    app.state.codebook = codebook
    app.state.limiter = limiter or LoginLimiter()
    app.state.batch_size = batch_size
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    templates = Jinja2Templates(env=env)
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie="codeer_review",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=secure_cookies)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return HTMLResponse("Not logged in. Open /login first.", status_code=401)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session = request.session
        if "csrf" not in session:
            session["csrf"] = new_csrf_token()
        user: User | None = getattr(request.state, "user", None)
        context.update(user=user, csrf_token=session["csrf"], flash=session.pop("flash", None),
                       is_admin=user is not None and user.role == UserRole.ADMIN)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def flash(request: Request, message: str) -> None:
        request.session["flash"] = message

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/queue") -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next))

    @app.post("/login")
    def login(request: Request) -> Response:
        form = request.state.form
        name, password = str(form.get("name", "")), str(form.get("password", ""))
        keys = (f"addr:{request.client.host if request.client else '?'}", f"name:{name}")
        wait = app.state.limiter.retry_after(*keys)
        if wait > 0:
            return render(request, "login.html", status_code=429, next=_safe_next(str(form.get("next", ""))),
                          error=f"Too many failed logins. Try again in {int(wait // 60) + 1} minute(s).")
        try:
            user = authenticate(store, name, password)
        except AuthenticationError as err:
            app.state.limiter.failed(*keys)
            logger.warning("failed login for %r from %s", name, keys[0])
            return render(request, "login.html", status_code=401, next=_safe_next(str(form.get("next", ""))),
                          error=str(err).capitalize())
        app.state.limiter.succeeded(*keys)
        request.session.clear()
        request.session.update(user=user.name, csrf=new_csrf_token())
        return RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)

    @app.post("/logout")
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        user: User = request.state.user
        mine = store.list_review_items([ReviewStatus.CLAIMED], claimed_by=user.name)
        waiting = store.list_review_items([ReviewStatus.PENDING], limit=20)
        texts = store.utterances_by_id([i.utterance_id for i in [*mine, *waiting]])
        return render(request, "queue.html", mine=mine, waiting=waiting, texts=texts,
                      progress=review.progress(store, user.name), counts=store.review_status_counts())

    @app.post("/claim")
    def claim(request: Request) -> Response:
        return _next_item(request, None)

    @app.get("/item/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: str) -> HTMLResponse:
        user: User = request.state.user
        try:
            context = review.item_context(store, item_id)
        except CodeerError as err:
            raise HTTPException(404, str(err)) from err
        mine = [i.item_id for i in store.list_review_items([ReviewStatus.CLAIMED], claimed_by=user.name)]
        position = mine.index(item_id) if item_id in mine else -1
        previous_id = mine[position - 1] if position > 0 else None
        next_id = mine[position + 1] if 0 <= position < len(mine) - 1 else None
        suggested = {p.code: p for p in context.suggestions}
        ordered = [p.code for p in context.suggestions if p.code in codebook and codebook[p.code].codable]
        others = [c for c in codebook.codable if c not in suggested]
        chosen = {c.code: c for c in review.suggested_codings(context.suggestions)}
        can_decide = context.item.status == ReviewStatus.PENDING or (
            context.item.status == ReviewStatus.CLAIMED and context.item.claimed_by == user.name)
        return render(request, "item.html", ctx=context, codebook=codebook, suggested=suggested,
                      numbered=ordered[:9], ordered=ordered, others=others, chosen=chosen, can_decide=can_decide,
                      claimed_by_me=context.item.claimed_by == user.name, previous_id=previous_id, next_id=next_id,
                      progress=review.progress(store, user.name))

    @app.post("/item/{item_id}/claim")
    def claim_item(request: Request, item_id: str) -> Response:
        user: User = request.state.user
        claimed = review.claim_one(store, item_id, user.name)
        if claimed is None:
            flash(request, f"Item {item_id[:12]} is taken or decided; here is another one.")
            return _next_item(request, None)
        return RedirectResponse(f"/item/{item_id}", status_code=303)

    def decide(request: Request, item_id: str, action: str) -> Response:
        user: User = request.state.user
        form = request.state.form
        try:
            version = int(str(form.get("version", "")))
        except ValueError:
            raise HTTPException(400, "the form lacks the item version; reload the page") from None
        try:
            if action == "accept":
                review.accept(store, item_id, user.name, version=version, codebook=codebook)
            elif action == "skip":
                review.skip(store, item_id, user.name, version=version)
            else:
                codings = [Coding(code, str(form.get(f"direction-{code}", "0")),
                                  str(form.get(f"facet-{code}", "")) or None) for code in form.getlist("code")]
                review.correct(store, item_id, user.name, codings, version=version, codebook=codebook)
        except ReviewConflictError as err:
            flash(request, str(err))
            return RedirectResponse("/queue", status_code=303)
        except (CodeerError, ValueError) as err:
            flash(request, str(err))
            return RedirectResponse(f"/item/{item_id}", status_code=303)
        return _next_item(request, item_id)

    @app.post("/item/{item_id}/accept")
    def accept_item(request: Request, item_id: str) -> Response:
        return decide(request, item_id, "accept")

    @app.post("/item/{item_id}/correct")
    def correct_item(request: Request, item_id: str) -> Response:
        return decide(request, item_id, "correct")

    @app.post("/item/{item_id}/skip")
    def skip_item(request: Request, item_id: str) -> Response:
        return decide(request, item_id, "skip")

    @app.post("/undo")
    def undo(request: Request) -> Response:
        user: User = request.state.user
        try:
            undone = review.undo_last(store, user.name)
        except ReviewConflictError as err:
            flash(request, str(err))
            return RedirectResponse("/queue", status_code=303)
        if undone is None:
            flash(request, "Nothing to undo.")
            return RedirectResponse("/queue", status_code=303)
        flash(request, f"Undone: {undone.note}.")
        return RedirectResponse(f"/item/{undone.item_id}", status_code=303)

    def _next_item(request: Request, after: str | None) -> Response:
        user: User = request.state.user
        mine = [i for i in store.list_review_items([ReviewStatus.CLAIMED], claimed_by=user.name) if i.item_id != after]
        if not mine:
            mine = review.claim_next(store, user.name, app.state.batch_size)
        if not mine:
            flash(request, "The queue is empty. Thank you!")
            return RedirectResponse("/queue", status_code=303)
        return RedirectResponse(f"/item/{mine[0].item_id}", status_code=303)

    @app.get("/admin/users", response_class=HTMLResponse)
    def users_page(request: Request) -> HTMLResponse:
        _require_admin(request)
        return render(request, "users.html", users=store.list_users())

    @app.get("/admin/audit", response_class=HTMLResponse)
    def audit_page(request: Request, user: str | None = None) -> HTMLResponse:
        _require_admin(request)
        return render(request, "audit.html", decisions=store.list_review_decisions(user=user or None, limit=500),
                      filter_user=user or "")

    return app


async def _guard(request: Request) -> None:
    """Every request: a session for all but the login page, and the CSRF token on every POST."""
    path = request.url.path
    if path not in PUBLIC_PATHS:
        name = request.session.get("user")
        found = request.app.state.store.user_with_hash(name) if isinstance(name, str) else None
        if found is None or not found[0].active:
            request.session.pop("user", None)
            raise LoginRequired()
        request.state.user = found[0]
    if request.method == "POST":
        form = await request.form()
        if not csrf_matches(request.session.get("csrf"), form.get(CSRF_FIELD)):
            raise HTTPException(403, "The form's security token is missing or out of date. Reload the page and try again.")
        request.state.form = form


def _require_admin(request: Request) -> None:
    if request.state.user.role != UserRole.ADMIN:
        raise HTTPException(403, "Only admins may see this page.")


def _safe_next(target: str) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative URL."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and target != "/login":
        return target
    return "/queue"


def serve(store: Store, codebook: Codebook, *, home: Path, host: str = "127.0.0.1", port: int = 8000,
          ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None) -> None:
    """Run the review page with uvicorn until interrupted.

    Cookies are marked Secure unless ``host`` is the loopback address; on any other address
    serve over HTTPS (``ssl_certfile``/``ssl_keyfile``, or a TLS proxy in front).
    """
    import uvicorn

    app = create_app(store, codebook, secret_key=load_secret_key(home), secure_cookies=host not in LOCAL_HOSTS)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
