"""The annotator web page: server-rendered review queue (FastAPI + Jinja2, a little JavaScript)."""

from pipeline.review.web.app import create_app, load_secret_key, serve

__all__ = ["create_app", "load_secret_key", "serve"]
