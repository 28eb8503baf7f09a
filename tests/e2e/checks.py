# ruff: noqa: E501 (JavaScript source)
"""Page checks run inside the browser: structure and labels, text contrast,
and horizontal overflow. Each returns a list of problems (empty when fine)."""

STRUCTURE = """
() => {
  const problems = [];
  const h1s = document.querySelectorAll("h1");
  if (h1s.length !== 1) problems.push(`${h1s.length} h1 elements`);
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  if (!document.title.trim()) problems.push("no <title>");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (["hidden", "submit", "button", "reset", "image"].includes(el.type)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`no label: <${el.tagName.toLowerCase()} name="${el.name}">`);
    if (el.getAttribute("aria-hidden") === "true") {
      problems.push(`focusable but aria-hidden: ${el.name || el.id}`);
    }
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    const name = (el.innerText || el.getAttribute("aria-label") || el.title || "").trim();
    if (!name && !el.querySelector("img[alt]:not([alt=''])")) {
      problems.push(`no accessible name: ${el.outerHTML.slice(0, 80)}`);
    }
  }
  for (const img of document.querySelectorAll("img:not([alt])")) {
    problems.push(`img without alt: ${img.src}`);
  }
  const ids = {};
  for (const el of document.querySelectorAll("[id]")) ids[el.id] = (ids[el.id] || 0) + 1;
  for (const [id, n] of Object.entries(ids)) if (n > 1) problems.push(`duplicate id ${id}`);
  return problems;
}
"""

# WCAG 2.x contrast of every visible text against the colours behind it:
# 4.5:1, or 3:1 for large text. Disabled controls are exempt (as in WCAG).
CONTRAST = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const blend = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a),
    g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a),
  });
  const background = (el) => {
    const layers = [];
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let out = {r: 255, g: 255, b: 255};
    for (let i = layers.length - 1; i >= 0; i--) out = blend(layers[i], out);
    return out;
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const problems = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.textContent.trim();
    const el = walker.currentNode.parentElement;
    if (!text || seen.has(el)) continue;
    seen.add(el);
    if (el.closest("svg, [disabled], .is-disabled, .skip-link, option")) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || box.width === 0 || box.height === 0) continue;
    const bg = background(el);
    const fg = blend(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (parseInt(style.fontWeight, 10) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`${ratio.toFixed(2)}:1 "${text.slice(0, 30)}" (${style.color} on rgb(${Math.round(bg.r)}, ${Math.round(bg.g)}, ${Math.round(bg.b)}))`);
    }
  }
  return problems;
}
"""

# Nothing wider than the screen: wide tables scroll inside their own box.
OVERFLOW = """
() => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  if (document.documentElement.scrollWidth > width + 1) {
    problems.push(`page is ${document.documentElement.scrollWidth}px wide on a ${width}px screen`);
    for (const el of document.querySelectorAll("body *")) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 1 && !el.closest(".table-wrap, .skip-link")) {
        problems.push(`${el.tagName.toLowerCase()}.${[...el.classList].join(".")} ends at ${Math.round(box.right)}px`);
        if (problems.length > 6) break;
      }
    }
  }
  return problems;
}
"""


def run(page, check: str) -> list[str]:
    return page.evaluate(check)


# In Chinese, visible words in Latin letters other than names, codes and
# addresses hint at a string nobody translated.
LATIN_WORDS = """
() => {
  const words = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el.closest("script, style, code, [lang=en], .langswitch, .num, .money, svg")) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const text = walker.currentNode.textContent.replace(/\\S+@\\S+|https?:\\/\\/\\S+|\\/\\S+/g, " ");
    for (const word of text.match(/[A-Za-z]{3,}/g) || []) words.add(word);
  }
  return [...words];
}
"""
