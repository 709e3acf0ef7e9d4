"""Labeling page in headless Chromium: ms to build the form and draw the text, to redraw after one
more span, and to apply a choice key (no redraw), for texts of 20k-500k characters.

The text mixes scripts (Latin, Arabic, emoji ZWJ sequences, combining marks, CRLF); the spans
field holds one span every ~100 characters. Times include style and layout (the script reads
``offsetHeight``). Medians over ``--repeat`` runs. Needs Chromium and Playwright only (no database).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.util import median

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SIZES = (20_000, 100_000, 500_000)

BENCH_JS = """({chars, repeat}) => {
  const unit = "Elena Marchetti met 👩\\u200d👩\\u200d👧 Quantix in Lyon. " +
    "ذهبت سارة إلى القاهرة. Cafe\\u0301 Zoë!\\r\\n";
  let text = "";
  while (text.length < chars) text += unit;
  const off = window.Labeling.Offsets(text);
  const spans = [];
  for (let cp = 0; cp + 10 < off.length; cp += 100) {
    spans.push({start: cp, end: cp + 5, label: ["PER", "ORG", "LOC"][spans.length % 3]});
  }
  const schema = {fields: [
    {name: "topic", type: "choice", options: ["a", "b", "c"]},
    {name: "entities", type: "spans", labels: ["PER", "ORG", "LOC"]},
    {name: "quality", type: "rating", criteria: ["x", "y"], scale: [1, 5]},
  ]};
  const data = {task: {text, title: "bench"}, schema, colors: {}, prefill: {}, pairs: {}};
  const out = {plain: [], build: [], add_span: [], choice_key: [], spans: spans.length, code_points: off.length};
  for (let r = 0; r < repeat; r++) {
    const root = document.getElementById("root");
    const plain = document.createElement("div");
    plain.className = "doc";
    root.replaceChildren(plain);
    let t0 = performance.now();
    plain.textContent = text;
    plain.offsetHeight;
    out.plain.push(performance.now() - t0);
    const doc = document.createElement("div"), fields = document.createElement("div");
    doc.className = "doc";
    root.replaceChildren(doc, fields);
    let t = performance.now();
    const L = window.Labeling.mount({data, docEl: doc, fieldsEl: fields, preview: true});
    L.load({entities: spans});
    L.sync();
    doc.offsetHeight;
    out.build.push(performance.now() - t);
    t = performance.now();
    L.S.values.entities.push({start: 7, end: 15, label: "ORG", text: "x"});
    L.changed();
    doc.offsetHeight;
    out.add_span.push(performance.now() - t);
    t = performance.now();
    L.onKey({key: "2"});
    doc.offsetHeight;
    out.choice_key.push(performance.now() - t);
  }
  return out;
}"""


def run(options) -> list[dict]:
    if not Path(CHROMIUM).exists():
        return [{"skipped": f"needs Chromium at {CHROMIUM}"}]
    from playwright.sync_api import sync_playwright

    script = (ROOT / "projects/web/static/web/labeling.js").read_text()
    css = (ROOT / "projects/web/static/web/app.css").read_text()
    sizes = (options.n,) if options.n else SIZES
    figures = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_content("<main><div id='root'></div></main>")
        page.add_style_tag(content=css)
        page.add_script_tag(content=script)
        for chars in sizes:
            res = page.evaluate(BENCH_JS, {"chars": chars, "repeat": options.repeat})
            figures.append(
                {
                    "chars": chars,
                    "code_points": res["code_points"],
                    "spans": res["spans"],
                    "plain_text_layout_ms_median": round(median(res["plain"]), 1),
                    "build_ms_median": round(median(res["build"]), 1),
                    "add_span_ms_median": round(median(res["add_span"]), 1),
                    "choice_key_ms_median": round(median(res["choice_key"]), 2),
                }
            )
        browser.close()
    return figures
