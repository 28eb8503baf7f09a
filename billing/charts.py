"""Server-rendered SVG charts: no JavaScript, no CDN, CSP-friendly.

Each function returns a ``SafeString`` of inline SVG built from escaped text
and numbers. Charts stay readable without colour: every bar carries its
value as text, the two series of a stacked bar differ by pattern (solid vs
hatched) as well as colour, the heatmap prints each cell's count, and every
chart has a <title> and <desc> for screen readers. The pages also give each
chart's data as a table.

Only presentation attributes are used (``fill``, ``stroke`` …), never
``style``: the Content-Security-Policy forbids inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FONT = (
    "-apple-system, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', "
    "Arial, sans-serif"
)
INK = "#1f2430"
MUTED = "#6b7280"
GRID = "#e3e6ec"
SOLID = "#1d4ed8"  # answered / the main series
ACCENT = "#c8102e"  # missed: hatched as well as red
HEAT = ("#f5f6f9", "#dbe7fb", "#a9c5f5", "#5b8def", "#1d4ed8", "#12307a")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[int | float]
    hatched: bool = False


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value: 1, 2, 5 × 10^k."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _open(uid: str, width: int, height: int, title: str, desc: str) -> list[str]:
    uid = escape(uid)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{uid}-title {uid}-desc" font-family="{escape(FONT)}">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(desc)}</desc>',
    ]


def _hatch_def(uid: str, colour: str) -> str:
    return (
        f'<defs><pattern id="{escape(uid)}-hatch" width="6" height="6" '
        f'patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#fff"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" stroke-width="3"/>'
        f"</pattern></defs>"
    )


def _fill(uid: str, series: Series, colour: str) -> str:
    return f"url(#{escape(uid)}-hatch)" if series.hatched else colour


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    desc: str,
    uid: str,
    width: int = 760,
    height: int = 280,
) -> SafeString:
    """Vertical bars, one per label, each stacking the series; totals on top."""
    left, right, top, bottom = 44, 8, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(labels), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    axis_max = _nice_max(max(totals, default=0))
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    colours = [SOLID, ACCENT, "#137a3f", "#8a5a00"]
    out = _open(uid, width, height, title, desc)
    out.append(_hatch_def(uid, ACCENT))
    for k in range(5):
        value = axis_max * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{MUTED}">{_fmt(value)}</text>'
        )
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        parts = []
        for s_index, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / axis_max
            y -= h
            colour = colours[s_index % len(colours)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_fill(uid, s, colour)}" stroke="{colour}" stroke-width="1">'
                f"<title>{escape(label)} · {escape(s.label)}: {_fmt(value)}</title>"
                f"</rect>"
            )
        out.extend(parts)
        if totals[i] > 0:
            out.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                f'font-size="{9 if n > 20 else 11}" fill="{INK}">'
                f"{_fmt(totals[i])}</text>"
            )
        out.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" '
            f'text-anchor="middle" font-size="10" fill="{MUTED}">'
            f"{escape(label)}</text>"
        )
    # Legend: a swatch with the pattern and the series name, in words.
    lx = left
    for s_index, s in enumerate(series):
        colour = colours[s_index % len(colours)]
        out.append(
            f'<rect x="{lx}" y="{height - 16}" width="14" height="12" '
            f'fill="{_fill(uid, s, colour)}" stroke="{colour}"/>'
            f'<text x="{lx + 20}" y="{height - 6}" font-size="12" fill="{INK}">'
            f"{escape(s.label)}</text>"
        )
        lx += 40 + 13 * len(s.label)
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


def hbars(
    items: Sequence[tuple[str, int | float]],
    *,
    title: str,
    desc: str,
    uid: str,
    unit: str = "",
    width: int = 760,
) -> SafeString:
    """Horizontal bars with the label on the left and the value on the bar."""
    row_h, label_w, pad = 26, 170, 8
    height = max(1, len(items)) * row_h + 2 * pad
    axis_max = _nice_max(max((v for _l, v in items), default=0))
    plot_w = width - label_w - 90
    out = _open(uid, width, height, title, desc)
    for i, (label, value) in enumerate(items):
        y = pad + i * row_h
        w = plot_w * value / axis_max if axis_max else 0
        text = _fmt(value) + (f" {unit}" if unit else "")
        out.append(
            f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" font-size="12" '
            f'fill="{INK}">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{SOLID}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" font-size="12" '
            f'fill="{INK}">{escape(text)}</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped


def heatmap(
    grid: Sequence[Sequence[int]],
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    desc: str,
    uid: str,
    width: int = 760,
) -> SafeString:
    """Rows × columns of counts: shade by count, and the count in each cell."""
    label_w, top = 56, 22
    cols = max(len(col_labels), 1)
    cell_w = (width - label_w - 4) / cols
    cell_h = 26
    height = top + cell_h * len(row_labels) + 4
    peak = max((max(r) for r in grid), default=0)
    out = _open(uid, width, height, title, desc)
    for c, label in enumerate(col_labels):
        out.append(
            f'<text x="{label_w + cell_w * c + cell_w / 2:.1f}" y="{top - 8}" '
            f'text-anchor="middle" font-size="10" fill="{MUTED}">'
            f"{escape(label)}</text>"
        )
    for r, label in enumerate(row_labels):
        y = top + r * cell_h
        out.append(
            f'<text x="{label_w - 6}" y="{y + 17}" text-anchor="end" font-size="12" '
            f'fill="{INK}">{escape(label)}</text>'
        )
        for c in range(cols):
            value = grid[r][c]
            level = 0 if not value else 1 + int(4 * value / peak) if peak else 0
            level = min(level, len(HEAT) - 1)
            x = label_w + c * cell_w
            text_colour = "#fff" if level >= 4 else INK
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{cell_w - 1:.1f}" '
                f'height="{cell_h - 1}" fill="{HEAT[level]}">'
                f"<title>{escape(label)} {escape(col_labels[c])}: {value:,}</title>"
                f"</rect>"
            )
            if value:
                out.append(
                    f'<text x="{x + cell_w / 2:.1f}" y="{y + 17}" text-anchor="middle" '
                    f'font-size="{9 if value >= 1000 else 10}" fill="{text_colour}">'
                    f"{_fmt(value)}</text>"
                )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every text above is escaped
