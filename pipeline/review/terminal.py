"""``codeer review``: the review decisions of the web page, in the terminal, for one annotator."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import click

from pipeline.codebook import Codebook
from pipeline.errors import CodeerError, ReviewConflictError, ReviewInputError
from pipeline.records import Coding, Prediction, ReviewItem
from pipeline.review import queue as review
from pipeline.review.plan import batch_effect
from pipeline.store import Store

HELP = "a accept · c correct · s skip · u undo · j next · k previous · q quit"
_TOKEN = re.compile(r"^(?P<code>\d+|[a-z_]+)(?P<direction>[+\-0])?(?:/(?P<facet>provision|practice))?$")


def parse_codings(answer: str, numbered: Sequence[Prediction], codebook: Codebook) -> list[Coding]:
    """Codings from a typed answer such as ``1- 3+ analyse0 visie_op_leren+/provision``.

    A number picks the suggestion with that number; without a direction the suggestion's
    direction (or ``0``) is used; ``-`` or an empty answer means no code.

    Raises
    ------
    ReviewInputError
        A token is neither a suggestion number nor a code id with an optional direction.
    """
    answer = answer.strip()
    if answer in ("", "-"):
        return []
    codings: list[Coding] = []
    for token in answer.replace(",", " ").split():
        match = _TOKEN.match(token)
        if match is None:
            raise ReviewInputError(f"{token!r}: write a suggestion number or a code id, then +, - or 0, "
                                   "e.g. '1-' or 'analyse+'.")
        code, suggestion = match["code"], None
        if code.isdigit():
            index = int(code) - 1
            if not 0 <= index < len(numbered):
                raise ReviewInputError(f"{token!r}: there is no suggestion {code}; pick 1 to {len(numbered)}.")
            suggestion = numbered[index]
            code = suggestion.code
        codebook[code]  # raises UnknownCodeError with the valid ids
        direction = match["direction"] or (suggestion.direction if suggestion and suggestion.direction else "0")
        facet = match["facet"] or (suggestion.facet if suggestion else None)
        codings.append(Coding(code, direction, facet))
    return codings


def _show(echo: Callable[..., None], context: review.ReviewContext, codebook: Codebook, position: str,
          progress: review.Progress) -> list[Prediction]:
    item, utterance = context.item, context.utterance
    echo("")
    echo(click.style(f"[{position}] {utterance.respondent} · {utterance.municipality} · {utterance.role}"
                     f" · priority {item.priority:.3f} · {', '.join(item.reasons)}", bold=True))
    if item.effect:
        echo(f"effect op de oordelen: {item.effect}")
    if utterance.question:
        echo(click.style(f"Onderzoeker: {utterance.question}", italic=True))
    for neighbour in context.before:
        echo(click.style(f"  {neighbour.text}", dim=True))
    echo(click.style(f"> {utterance.text}", fg="blue", bold=True))
    for neighbour in context.after:
        echo(click.style(f"  {neighbour.text}", dim=True))
    if context.human is not None:
        echo("human label: " + (", ".join(f"{c.code}{c.direction}" for c in context.human) or "no code"))
    numbered = [p for p in context.suggestions if p.code in codebook][:9]
    for number, p in enumerate(numbered, 1):
        mark = "x" if p.predicted else " "
        direction = f" {p.direction} ({p.direction_p:.2f})" if p.direction and p.direction_p is not None else ""
        facet = f" {p.facet}" if p.facet else ""
        echo(f"  {number} [{mark}] {p.code:28s} p={p.probability:.2f}{direction}{facet}")
    echo(f"{progress.n_done} of {progress.n_total} today · {HELP}")
    return numbered


def run_terminal_review(
    store: Store,
    codebook: Codebook,
    user: str,
    *,
    batch: int = 10,
    prompt: Callable[..., str] = click.prompt,
    echo: Callable[..., None] = click.echo,
) -> int:
    """Claim items in batches and ask ``user`` for a decision on each until they quit.

    Returns the number of decisions made. Claims still held on quitting are given back.
    """
    n_decisions = 0
    items: list[ReviewItem] = review.claim_next(store, user, batch)
    index = 0
    try:
        while True:
            if index >= len(items):
                items, index = review.claim_next(store, user, batch), 0
                if not items:
                    echo("The queue is empty. Thank you!")
                    return n_decisions
            if index == 0:  # a new batch: what deciding it could do to the ratings (issue 18)
                echo(click.style(f"Deze reeks: {batch_effect(items)}", fg="magenta"))
            context = review.item_context(store, items[index].item_id)
            numbered = _show(echo, context, codebook, f"{index + 1}/{len(items)}", review.progress(store, user))
            choice = prompt("decision", default="a", show_default=True).strip().lower()
            version = context.item.version
            try:
                if choice == "q":
                    return n_decisions
                if choice == "j":
                    index = min(index + 1, len(items) - 1)
                    continue
                if choice == "k":
                    index = max(index - 1, 0)
                    continue
                if choice == "u":
                    undone = review.undo_last(store, user)
                    if undone is None:
                        echo("Nothing to undo.")
                        continue
                    echo(f"Undone: {undone.note}.")
                    n_decisions -= 1
                    items.insert(index, review.get_item(store, undone.item_id))
                    continue
                if choice == "a":
                    review.accept(store, context.item.item_id, user, version=version, codebook=codebook)
                elif choice == "s":
                    review.skip(store, context.item.item_id, user, version=version)
                elif choice == "c":
                    answer = prompt("codes (e.g. '1- 3+ analyse0'; '-' for no code)", default="-", show_default=False)
                    codings = parse_codings(answer, numbered, codebook)
                    review.correct(store, context.item.item_id, user, codings, version=version, codebook=codebook)
                else:
                    echo(f"Unknown choice {choice!r}. {HELP}")
                    continue
            except ReviewConflictError as err:
                echo(click.style(f"Conflict: {err}", fg="red"))
            except CodeerError as err:
                echo(click.style(str(err), fg="red"))
                continue
            else:
                n_decisions += 1
            items.pop(index)
    finally:
        store.release_review_claims(user)
