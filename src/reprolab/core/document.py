"""A tiny document model rendered twice: markdown (figures as files beside it) and one
self-contained HTML page (figures inlined), so both always say the same thing."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: Path  # PNG written under the report's directory
    caption: str


@dataclass
class Document:
    title: str
    blocks: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def text(self, text: str) -> None:
        self.blocks.append(("p", text))

    def preformatted(self, text: str) -> None:
        """Text that is already markdown (e.g. `dvc metrics diff --md`): verbatim in the
        markdown, monospaced in the HTML."""
        self.blocks.append(("pre", text))

    def code(self, text: str) -> None:
        """Literal text (e.g. generated samples): a fenced block in markdown, <pre> in HTML."""
        self.blocks.append(("code", text))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", Table(header, rows)))

    def figure(self, path: Path, caption: str) -> None:
        self.blocks.append(("figure", Figure(path, caption)))

    def to_markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, block in self.blocks:
            if kind == "h2":
                out += [f"## {block}", ""]
            elif kind in ("p", "pre"):
                out += [str(block), ""]
            elif kind == "code":
                out += ["```text", str(block), "```", ""]
            elif kind == "table":
                out += [
                    "| " + " | ".join(block.header) + " |",
                    "|" + "|".join("---" for _ in block.header) + "|",
                    *("| " + " | ".join(row) + " |" for row in block.rows),
                    "",
                ]
            elif kind == "figure":
                out += [f"![{block.caption}]({block.path.relative_to(base).as_posix()})", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, block in self.blocks:
            if kind == "h2":
                parts.append(f"<h2>{html.escape(str(block))}</h2>")
            elif kind == "p":
                parts.append(f"<p>{_inline(str(block))}</p>")
            elif kind in ("pre", "code"):
                parts.append(f"<pre>{html.escape(str(block))}</pre>")
            elif kind == "table":
                head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>"
                    for row in block.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "figure":
                data = base64.b64encode(block.path.read_bytes()).decode("ascii")
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}' "
                    f"alt='{html.escape(block.caption)}'><figcaption>"
                    f"{html.escape(block.caption)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)


def _inline(text: str) -> str:
    """Markdown's **bold** and `code`, enough for our tables."""
    escaped = html.escape(text)
    for marker, tag in (("**", "strong"), ("`", "code")):
        pieces = escaped.split(marker)
        escaped = (
            "".join(f"<{tag}>{p}</{tag}>" if i % 2 else p for i, p in enumerate(pieces))
            if len(pieces) % 2
            else escaped
        )
    return escaped


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{max-width:100%}figcaption{color:#555;font-size:.9em}code{background:#f3f3f3}
"""
