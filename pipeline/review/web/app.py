"""The review web app: routes are thin; every action is one call into :mod:`pipeline.review.queue`.

Security: every page except the login form needs a live server-side session (ended by logout,
a password change, or its idle and absolute timeouts: issue 20); every POST carries the
session's CSRF token; the session cookie is signed, HttpOnly, SameSite=Strict and Secure
unless the app is served on the loopback address; failed logins are throttled per (user name,
client address), persisted in the store; Jinja2 escapes all text; responses forbid framing,
sniffing, caching and inline scripts.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Sequence
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
from pipeline.errors import AuthenticationError, CodeerError, NotFoundError, ReviewConflictError
from pipeline.records import MANUAL_MODEL_ID, Coding, ReviewItem, ReviewStatus, User, UserRole
from pipeline.review import evidence
from pipeline.review import queue as review
from pipeline.review.wording import DIRECTION_TEXT, FACET_TEXT, progress_text, reasons_text
from pipeline.review.users import authenticate
from pipeline.review.web.security import (
    CSRF_FIELD,
    LoginLimiter,
    SessionPolicy,
    client_address,
    csrf_matches,
    new_csrf_token,
)
from pipeline.store import Store

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
BATCH_SIZE = 10
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
    review_budget: int | None = None,
    model_id: str | None = None,
    sessions: SessionPolicy | None = None,
    trusted_proxies: Sequence[str] = (),
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
        Failed-login throttle per (user name, address) (default: 5 failures in a row lock the
        pair for a minute, doubling with each further failure up to 15 minutes).
    batch_size : int
        Items claimed at a time.
    review_budget : int or None
        Tonight's goal of decisions per annotator (setting ``review_budget``); the progress line
        counts against it. None: against the open items.
    model_id : str or None
        The model whose codes the transcript and fragments pages show; None: per page, the
        model with the newest predictions there.
    sessions : SessionPolicy or None
        Idle and absolute session timeouts (default: 1 hour unused, 8 hours after login).
    trusted_proxies : sequence of str
        Addresses of reverse proxies whose ``X-Forwarded-For`` header names the client; the
        header of any other peer is ignored (default: none).
    """
    app = FastAPI(title="codeer review", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(_guard)])
    app.state.store = store
    app.state.codebook = codebook
    app.state.limiter = limiter or LoginLimiter()
    app.state.sessions = sessions or SessionPolicy()
    app.state.trusted_proxies = tuple(trusted_proxies)
    app.state.batch_size = batch_size
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.globals.update(codebook=codebook, direction_text=DIRECTION_TEXT, facet_text=FACET_TEXT,
                       reasons_text=reasons_text)
    templates = Jinja2Templates(env=env)
    app.add_middleware(SessionMiddleware, secret_key=secret_key, session_cookie="codeer_review",
                       max_age=int(app.state.sessions.max_s), same_site="strict", https_only=secure_cookies)
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

    def progress_line(user: User) -> str:
        done = review.progress(store, user.name)
        return progress_text(done.n_done, done.n_open, review_budget)

    def queue_filter(request: Request) -> review.ReviewFilter:
        """The annotator's queue filter, kept in the session so claiming and moving on honour it."""
        return review.ReviewFilter(**{k: v for k, v in request.session.get("queue_filter", {}).items()
                                      if k in ("municipality", "respondent", "code")})

    def mine_of(user: User, after: str | None = None, only: review.ReviewFilter | None = None) -> list[ReviewItem]:
        """The model items ``user`` holds, within ``only`` (hand-coding items live on the transcript page)."""
        only = only or review.ReviewFilter()
        return [i for i in store.list_review_items([ReviewStatus.CLAIMED], claimed_by=user.name, municipality=only.municipality,
                                                   respondent=only.respondent, code=only.code)
                if i.model_id != MANUAL_MODEL_ID and i.item_id != after]

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/queue") -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next))

    @app.post("/login")
    def login(request: Request) -> Response:
        form = request.state.form
        name, password = str(form.get("name", ""))[:120], str(form.get("password", ""))
        address = _address(request)
        wait = app.state.limiter.retry_after(store, name, address)
        if wait > 0:
            return render(request, "login.html", status_code=429, next=_safe_next(str(form.get("next", ""))),
                          error=f"Too many failed logins. Try again in {int(wait // 60) + 1} minute(s).")
        try:
            user = authenticate(store, name, password)
        except AuthenticationError as err:
            app.state.limiter.failed(store, name, address)
            logger.warning("failed login for %r from %s", name, address)
            return render(request, "login.html", status_code=401, next=_safe_next(str(form.get("next", ""))),
                          error=str(err).capitalize())
        app.state.limiter.succeeded(store, name, address)
        request.session.clear()
        token = app.state.sessions.start(store, user.name, address)
        request.session.update(sid=token, csrf=new_csrf_token())
        return RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)

    @app.post("/logout")
    def logout(request: Request) -> Response:
        app.state.sessions.end(store, request.session.get("sid"))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request) -> HTMLResponse:
        user: User = request.state.user
        if "filter" in request.query_params:  # the filter form was sent: it replaces the session's filter
            wanted = {k: request.query_params.get(k, "") for k in ("municipality", "respondent", "code")}
            wanted["code"] = _code_id(codebook, wanted["code"])
            request.session["queue_filter"] = review.ReviewFilter(**wanted).as_kwargs()
        only = queue_filter(request)
        mine = mine_of(user)
        waiting = store.list_review_items([ReviewStatus.PENDING], limit=20, **only.as_kwargs())
        texts = store.utterances_by_id([i.utterance_id for i in [*mine, *waiting]])
        return render(request, "queue.html", mine=mine, waiting=waiting, texts=texts, only=only,
                      suggestions=_suggestions(store, waiting), progress=progress_line(user),
                      counts=store.review_status_counts(), municipalities=store.municipality_names(),
                      respondents=store.respondent_names())

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
        mine = [i.item_id for i in mine_of(user)]
        position = mine.index(item_id) if item_id in mine else -1
        previous_id = mine[position - 1] if position > 0 else None
        next_id = mine[position + 1] if 0 <= position < len(mine) - 1 else None
        suggested = {p.code: p for p in context.suggestions}
        ordered = [p.code for p in context.suggestions if p.code in codebook and codebook[p.code].codable]
        others = [c for c in codebook.codable if c not in suggested]
        chosen = {c.code: c for c in review.suggested_codings(context.suggestions)}
        can_decide = context.item.status == ReviewStatus.PENDING or (
            context.item.status == ReviewStatus.CLAIMED and context.item.claimed_by == user.name)
        return render(request, "item.html", ctx=context, suggested=suggested,
                      numbered=ordered[:9], ordered=ordered, others=codebook.grouped(others), chosen=chosen,
                      can_decide=can_decide, claimed_by_me=context.item.claimed_by == user.name,
                      previous_id=previous_id, next_id=next_id, progress=progress_line(user))

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
        item = store.review_items_by_id([undone.item_id]).get(undone.item_id)
        if item is not None and item.model_id == MANUAL_MODEL_ID:  # a hand coding: back to its transcript
            utterance = store.utterances_by_id([item.utterance_id]).get(item.utterance_id)
            if utterance is not None:
                return RedirectResponse(f"/transcripts/{utterance.transcript_id}#u{utterance.utterance_id}",
                                        status_code=303)
        return RedirectResponse(f"/item/{undone.item_id}", status_code=303)

    def _next_item(request: Request, after: str | None) -> Response:
        user: User = request.state.user
        only = queue_filter(request)
        mine = mine_of(user, after, only)
        if not mine:
            mine = review.claim_next(store, user.name, app.state.batch_size, only=only)
        if not mine:
            flash(request, "Nothing left in this part of the queue; clear the filter for the rest."
                  if only.active else "The queue is empty. Thank you!")
            return RedirectResponse("/queue", status_code=303)
        return RedirectResponse(f"/item/{mine[0].item_id}", status_code=303)

    @app.get("/transcripts", response_class=HTMLResponse)
    def transcripts_page(request: Request) -> HTMLResponse:
        # by respondent code and municipality only: the file name may carry a name
        listed = sorted(store.list_transcripts(), key=lambda t: (t.municipality, t.role, t.respondent))
        return render(request, "transcripts.html", transcripts=listed)

    @app.get("/transcripts/{transcript_id}", response_class=HTMLResponse)
    def transcript_page(request: Request, transcript_id: str) -> HTMLResponse:
        try:
            view = evidence.transcript_view(store, transcript_id, model_id=model_id)
        except NotFoundError as err:
            raise HTTPException(404, str(err)) from err
        return render(request, "transcript.html", view=view, groups=codebook.grouped(codebook.codable))

    @app.post("/transcripts/{transcript_id}/code")
    def code_in_transcript(request: Request, transcript_id: str) -> Response:
        user: User = request.state.user
        form = request.state.form
        utterance_id = str(form.get("utterance_id", ""))
        back = f"/transcripts/{transcript_id}#u{utterance_id}"
        try:
            span = _span(form.get("span_start"), form.get("span_end"))
            coding = Coding(str(form.get("code", "")), str(form.get("direction", "0")),
                            str(form.get("facet", "")) or None)
            review.code_fragment(store, utterance_id, user.name, coding, codebook=codebook, span=span,
                                 remove=form.get("remove") == "1")
        except (CodeerError, ValueError) as err:
            flash(request, str(err))
            return RedirectResponse(back, status_code=303)
        flash(request, f"Opgeslagen: {codebook[coding.code].label_nl} "
                       f"{'verwijderd' if form.get('remove') == '1' else coding.direction}. Ongedaan maken: u.")
        return RedirectResponse(back, status_code=303)

    @app.get("/fragments", response_class=HTMLResponse)
    def fragments_page(request: Request, code: str = "", municipality: str = "") -> HTMLResponse:
        code = _code_id(codebook, code)
        found: list[evidence.Fragment] = []
        error = ""
        if code and municipality:
            try:
                found = evidence.code_fragments(store, codebook, code, municipality, model_id=model_id)
            except CodeerError as err:
                error = str(err)
        return render(request, "fragments.html", fragments=found, code=code, municipality=municipality,
                      error=error, municipalities=store.municipality_names(),
                      groups=codebook.grouped(codebook.codable))

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
        store = request.app.state.store
        name = request.app.state.sessions.user_of(store, request.session.get("sid"))
        found = store.user_with_hash(name) if name is not None else None
        if found is None or not found[0].active:
            request.session.pop("sid", None)
            raise LoginRequired()
        request.state.user = found[0]
    if request.method == "POST":
        form = await request.form()
        if not csrf_matches(request.session.get("csrf"), form.get(CSRF_FIELD)):
            raise HTTPException(403, "The form's security token is missing or out of date. Reload the page and try again.")
        request.state.form = form


def _code_id(codebook: Codebook, typed: str) -> str:
    """A code id from what an annotator typed: the id itself or its Dutch label (any case)."""
    typed = typed.strip()
    if not typed or typed in codebook:
        return typed
    by_label = {code.label_nl.casefold(): code.id for code in codebook.codes}
    return by_label.get(typed.casefold(), typed)


def _span(start: object, end: object) -> tuple[int, int] | None:
    """The selected characters of an utterance from the form, or None for the whole utterance."""
    if not start and not end:
        return None
    try:
        return int(str(start)), int(str(end))
    except ValueError:
        raise ValueError("the selection's position is not a number; select the text again.") from None


def _suggestions(store: Store, items: list[ReviewItem]) -> dict[str, list[tuple[str, float]]]:
    """Per item: the model's predicted codes with their probability, or its most probable code."""
    by_model: dict[str, list[str]] = {}
    for item in items:
        by_model.setdefault(item.model_id, []).append(item.utterance_id)
    found: dict[str, list[tuple[str, float]]] = {}
    for item_model, ids in by_model.items():
        predictions = store.predictions_by_utterance(item_model, ids)
        for item in items:
            rows = predictions.get(item.utterance_id, []) if item.model_id == item_model else []
            if item.model_id == item_model:
                chosen = [p for p in rows if p.predicted] or rows[:1]
                found[item.item_id] = [(p.code, p.probability) for p in chosen]
    return found
def _address(request: Request) -> str:
    """The client's address; ``X-Forwarded-For`` counts only from a configured trusted proxy."""
    return client_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"), request.app.state.trusted_proxies)


def _require_admin(request: Request) -> None:
    if request.state.user.role != UserRole.ADMIN:
        raise HTTPException(403, "Only admins may see this page.")


def _safe_next(target: str) -> str:
    """Only same-site paths: no scheme, no host, no protocol-relative URL."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and target != "/login":
        return target
    return "/queue"


def serve(store: Store, codebook: Codebook, *, home: Path, host: str = "127.0.0.1", port: int = 8000,
          ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None, review_budget: int | None = None,
          sessions: SessionPolicy | None = None, trusted_proxies: Sequence[str] = ()) -> None:
    """Run the review page with uvicorn until interrupted.

    Cookies are marked Secure unless ``host`` is the loopback address; on any other address
    serve over HTTPS (``ssl_certfile``/``ssl_keyfile``, or a TLS proxy in front, named in
    ``trusted_proxies`` so that logins are throttled per client and not per proxy).
    """
    import uvicorn

    app = create_app(store, codebook, secret_key=load_secret_key(home), secure_cookies=host not in LOCAL_HOSTS,
                     review_budget=review_budget, sessions=sessions, trusted_proxies=trusted_proxies)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False,
                ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
