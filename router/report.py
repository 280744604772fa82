"""The replay report: one self-contained HTML file, matplotlib PNGs embedded as base64.

Plots: quality vs thinking share, quality vs cost per request, tokens saved against the
all-thinking policy; then the table with how many requests each estimate rests on.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

from switchyard.router.replay import Estimate

_COLUMNS = ("policy", "thinking_share", "quality", "tokens", "cost", "apgr", "cpt50", "method",
            "n_requests", "n_direct", "n_ipw", "n_ipw_matched")


def _png(fig: object) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(estimates: Sequence[Estimate]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")  # no display; set here, not at import
    import matplotlib.pyplot as plt

    rows = [(e, e.quality) for e in estimates if e.quality is not None]
    out = []
    for title, x_of, xlabel in (
        ("Quality vs thinking share", lambda e: e.thinking_share * 100, "thinking calls (%)"),
        ("Quality vs cost", lambda e: e.cost or 0.0, "cost per request (USD)"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4))
        for e, quality in rows:
            ax.scatter([x_of(e)], [quality], s=40)
            ax.annotate(e.policy, (x_of(e), quality), fontsize=7, xytext=(4, 4),
                        textcoords="offset points")
        ax.set(title=title, xlabel=xlabel, ylabel="estimated quality")
        ax.grid(alpha=0.3)
        out.append((title, _png(fig)))
        plt.close(fig)
    ceiling = max((e.tokens or 0.0 for e in estimates), default=0.0)
    fig, ax = plt.subplots(figsize=(6, 4))
    named = [e for e in estimates if e.tokens is not None]
    ax.barh([e.policy for e in named], [ceiling - (e.tokens or 0.0) for e in named])
    ax.set(title="Tokens saved per request vs the dearest policy", xlabel="tokens")
    out.append(("Tokens saved", _png(fig)))
    plt.close(fig)
    return out


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(estimates: Sequence[Estimate], *, title: str = "Switchyard replay",
                notes: Sequence[str] = ()) -> str:
    figures = "".join(f'<figure><img alt="{html.escape(t)}" src="data:image/png;base64,{b}">'
                      f"<figcaption>{html.escape(t)}</figcaption></figure>"
                      for t, b in _plots(estimates))
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{_cell(e.to_dict()[c])}</td>" for c in _COLUMNS)
                   + "</tr>" for e in estimates)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:"
            "collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            "figure{display:inline-block;margin:1em}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><ul>{items}</ul>{figures}"
            f"<table><tr>{head}</tr>{body}</table></body></html>")


def write_html(estimates: Sequence[Estimate], path: Path, **kwargs: object) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(estimates, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path
