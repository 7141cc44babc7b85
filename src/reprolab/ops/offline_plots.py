"""An HTML template for `dvc plots show` / `dvc plots diff` with Vega, Vega-Lite and
Vega-Embed inlined (bundled by vl-convert), so the plots page renders with no network: DVC's
default page loads them from a CDN and stays blank offline. `.dvc/config` names the template
(`plots.html_template = plots/offline.html`, relative to `.dvc/`); `make setup` writes it,
and `python -m reprolab.ops.offline_plots` writes it again."""

from __future__ import annotations

import sys
from pathlib import Path

TEMPLATE = Path(".dvc/plots/offline.html")
VEGA_LITE = "5.21"  # DVC writes Vega-Lite 5 specs

PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
    <script>
__BUNDLE__
    </script>
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def page() -> str:
    """The template: DVC's page with the libraries inline instead of its `{scripts}` (CDN
    script tags), keeping the `{plot_divs}` and `{refresh_tag}` placeholders DVC fills."""
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=VEGA_LITE).replace("</script", "<\\/script")
    return PAGE.replace("__BUNDLE__", bundle)


def write(root: Path = Path(".")) -> Path:
    """Write the template under `root` (only when it changed: the bundle takes ~2 s)."""
    path = root / TEMPLATE
    text = page()
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")))
