/* The labeling page, generated from the project's label schema.
 *
 * Offsets: the server counts Unicode code points (Python string indices); JavaScript strings
 * count UTF-16 units. The text is put into the page with textContent from JSON (never parsed as
 * HTML, which would turn CRLF into LF), so DOM offsets are UTF-16 offsets into the exact stored
 * text; `Offsets` converts both ways. Selections snap to word boundaries with Intl.Segmenter, so
 * a span never splits a surrogate pair, a ZWJ emoji sequence or a combining mark from its base.
 *
 * Safety: every piece of user data goes into the DOM with textContent or attributes, never HTML.
 */
(function () {
  "use strict";

  const KEYSEQ = "1234567890qwertyuiopasdfghjklzxcvbnm".split("");
  const PAIR_CHOICES = [["a", "A is better"], ["b", "B is better"], ["tie", "Tie"], ["both_bad", "Both bad"]];
  const IDLE_MS = 60000;
  const DRAFT_DELAY_MS = 1200;

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  function kbd(key) {
    return el("kbd", { text: key });
  }

  /* Code points <-> UTF-16 units for one text. */
  function Offsets(text) {
    const n = text.length;
    const u2c = new Int32Array(n + 1);
    const c2u = [];
    let i = 0;
    let cp = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      const pair = c >= 0xd800 && c <= 0xdbff && i + 1 < n && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      c2u.push(i);
      u2c[i] = cp;
      if (pair) u2c[i + 1] = cp;
      i += pair ? 2 : 1;
      cp += 1;
    }
    u2c[n] = cp;
    c2u.push(n);
    return { u2c, c2u: Int32Array.from(c2u), length: cp, toCp: (u) => u2c[u], toU16: (c) => c2u[c] };
  }

  const wordSegmenter = typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "word" }) : null;
  const WORD_CHAR = /[\p{L}\p{N}\p{M}_\u200d\ufe0f\p{Extended_Pictographic}]/u;
  const SPACE = /\s/;

  /* Snap a UTF-16 range to whole words (whole segments) and trim white space. */
  function snapToWords(text, a, b) {
    if (wordSegmenter) {
      const segments = wordSegmenter.segment(text);
      const first = segments.containing(a);
      const last = segments.containing(b - 1);
      if (first) a = first.index;
      if (last) b = last.index + last.segment.length;
    } else {
      const at = (i) => String.fromCodePoint(text.codePointAt(i));
      while (a > 0 && WORD_CHAR.test(text[a - 1] || "") && WORD_CHAR.test(at(a) || "")) a -= 1;
      while (b < text.length && WORD_CHAR.test(at(b)) && WORD_CHAR.test(text[b - 1] || "")) b += 1;
      if ((text.charCodeAt(a) & 0xfc00) === 0xdc00) a -= 1;
      if ((text.charCodeAt(b) & 0xfc00) === 0xdc00) b += 1;
    }
    while (a < b && SPACE.test(text[a])) a += 1;
    while (b > a && SPACE.test(text[b - 1])) b -= 1;
    return [a, b];
  }

  /* Word-level diff (common prefix/suffix, then LCS on the middle). Returns [op, text] pairs. */
  function diffWords(before, after) {
    const A = before.match(/\s+|[^\s]+/g) || [];
    const B = after.match(/\s+|[^\s]+/g) || [];
    let p = 0;
    while (p < A.length && p < B.length && A[p] === B[p]) p += 1;
    let s = 0;
    while (s < A.length - p && s < B.length - p && A[A.length - 1 - s] === B[B.length - 1 - s]) s += 1;
    const a = A.slice(p, A.length - s);
    const b = B.slice(p, B.length - s);
    const out = [];
    if (p) out.push(["=", A.slice(0, p).join("")]);
    if (a.length * b.length > 400000) {
      if (a.length) out.push(["-", a.join("")]);
      if (b.length) out.push(["+", b.join("")]);
    } else {
      const w = b.length + 1;
      const L = new Uint32Array((a.length + 1) * w);
      for (let i = a.length - 1; i >= 0; i--)
        for (let j = b.length - 1; j >= 0; j--)
          L[i * w + j] = a[i] === b[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
      let i = 0;
      let j = 0;
      const push = (op, t) => {
        if (out.length && out[out.length - 1][0] === op) out[out.length - 1][1] += t;
        else out.push([op, t]);
      };
      while (i < a.length || j < b.length) {
        if (i < a.length && j < b.length && a[i] === b[j]) {
          push("=", a[i]);
          i += 1;
          j += 1;
        } else if (j < b.length && (i === a.length || L[i * w + j + 1] >= L[(i + 1) * w + j])) push("+", b[j++]);
        else push("-", a[i++]);
      }
    }
    if (s) out.push(["=", A.slice(A.length - s).join("")]);
    return out;
  }

  function keyMap(names, custom) {
    custom = custom || {};
    const used = new Set(Object.values(custom).map((k) => String(k).toLowerCase()));
    const free = KEYSEQ.filter((k) => !used.has(k));
    const out = {};
    for (const name of names) out[name] = custom[name] ? String(custom[name]).toLowerCase() : free.shift() || "";
    return out;
  }

  function ratingKeys(lo, hi) {
    const values = [];
    for (let v = lo; v <= hi; v++) values.push(v);
    const keys = {};
    if (lo >= 0 && hi <= 9) values.forEach((v) => (keys[v] = String(v)));
    else if (values.length <= KEYSEQ.length) values.forEach((v, i) => (keys[v] = KEYSEQ[i]));
    return { values, keys };
  }

  /* ---------------------------------------------------------------- the labeler */
  function mount(opts) {
    const data = opts.data;
    const preview = !!opts.preview;
    const text = data.task.text;
    const off = Offsets(text);
    const fields = data.schema.fields || [];
    const colors = data.colors || {};
    const S = { values: {}, undo: [], stops: [], active: 0, pending: null, predictionId: null, dirty: false };
    const ui = {};

    function setStatus(message, kind) {
      if (!opts.statusEl) return;
      opts.statusEl.textContent = message;
      opts.statusEl.className = "status" + (kind ? " " + kind : "");
    }

    /* ---- values */
    function cleanSpans(list) {
      const out = [];
      for (const s of Array.isArray(list) ? list : []) {
        if (!s || !Number.isInteger(s.start) || !Number.isInteger(s.end) || s.start < 0 || s.end > off.length || s.start >= s.end) continue;
        out.push({ start: s.start, end: s.end, label: s.label, text: text.slice(off.toU16(s.start), off.toU16(s.end)) });
      }
      return out;
    }

    function load(result) {
      result = result || {};
      for (const f of fields) {
        const v = result[f.name];
        if (f.type === "choice") S.values[f.name] = f.multiple ? (Array.isArray(v) ? v.filter((o) => f.options.includes(o)) : []) : f.options.includes(v) ? v : null;
        else if (f.type === "spans") S.values[f.name] = cleanSpans(v).filter((s) => f.labels.includes(s.label));
        else if (f.type === "text") S.values[f.name] = typeof v === "string" ? v : (data.prefill || {})[f.name] || "";
        else if (f.type === "rating") S.values[f.name] = v && typeof v === "object" ? Object.assign({}, v) : {};
        else if (f.type === "pairwise") S.values[f.name] = v && typeof v === "object" && v.choice ? { choice: v.choice, reason: v.reason || "" } : { choice: null, reason: "" };
      }
    }

    function result() {
      const out = {};
      for (const f of fields) {
        const v = S.values[f.name];
        if (f.type === "choice") {
          if (f.multiple ? v.length : v) out[f.name] = v;
        } else if (f.type === "spans") {
          if (v.length) out[f.name] = v.map((s) => ({ start: s.start, end: s.end, label: s.label, text: s.text }));
        } else if (f.type === "text") {
          if (v !== "") out[f.name] = v;
        } else if (f.type === "rating") {
          if (Object.keys(v).length) out[f.name] = v;
        } else if (f.type === "pairwise" && v.choice) {
          out[f.name] = v.reason ? { choice: v.choice, reason: v.reason } : { choice: v.choice };
        }
      }
      return out;
    }

    function snapshot() {
      S.undo.push(JSON.stringify(S.values));
      if (S.undo.length > 200) S.undo.shift();
    }

    function changed() {
      S.dirty = true;
      sync();
      if (opts.onChange) opts.onChange();
    }

    function undo() {
      if (!S.undo.length) return setStatus("Nothing to undo.");
      S.values = JSON.parse(S.undo.pop());
      changed();
      setStatus("Undone.");
    }

    /* ---- the article text with spans */
    const allSpans = () => {
      const out = [];
      for (const f of fields) if (f.type === "spans") for (const s of S.values[f.name]) out.push(Object.assign({ field: f.name }, s));
      return out;
    };

    function renderDoc() {
      const docEl = opts.docEl;
      const spans = allSpans().sort((x, y) => x.start - y.start || y.end - x.end);
      // Stable stacking level per span: the lowest level free over its whole range.
      const levelEnds = [];
      for (const s of spans) {
        let level = levelEnds.findIndex((end) => end <= s.start);
        if (level === -1) level = levelEnds.length;
        levelEnds[level] = s.end;
        s.level = level;
      }
      const cuts = new Set([0, off.length]);
      for (const s of spans) cuts.add(s.start).add(s.end);
      const points = [...cuts].sort((a, b) => a - b);
      const frag = document.createDocumentFragment();
      S.segments = [];
      // Sweep the cut points keeping the spans open at each one: O(segments x overlap depth).
      let next = 0;
      let open = [];
      for (let i = 0; i < points.length - 1; i++) {
        const a = points[i];
        const b = points[i + 1];
        const u = off.toU16(a);
        const seg = el("span", { class: "seg", "data-u": String(u) });
        seg.textContent = text.slice(u, off.toU16(b));
        open = open.filter((s) => s.end > a);
        while (next < spans.length && spans[next].start <= a) open.push(spans[next++]);
        const over = open.slice().sort((x, y) => x.level - y.level);
        if (over.length) {
          const c = (s) => ((colors[s.field] || {})[s.label] || { line: "#555555", tint: "#eeeeee", bg: "#777777", fg: "#ffffff" });
          seg.classList.add("hl");
          seg.style.backgroundColor = c(over[over.length - 1]).tint;
          const depth = over[over.length - 1].level + 1;
          seg.style.paddingBottom = 3 * depth + "px";
          seg.style.boxShadow = over.map((s) => `0 ${3 * (s.level + 1)}px 0 ${c(s).line}`).join(", ");
          seg.title = over.map((s) => `${s.label}: ${s.text}`).join("\n") + "\n(click to remove the innermost)";
          const starting = over.filter((s) => s.start === a);
          if (starting.length) {
            seg.classList.add("starts");
            seg.dataset.label = starting.map((s) => s.label).join(" · ");
            seg.style.setProperty("--chip-bg", c(starting[0]).bg);
            seg.style.setProperty("--chip-fg", c(starting[0]).fg);
          }
          seg.spans = over;
        }
        S.segments.push(seg);
        frag.append(seg);
      }
      docEl.replaceChildren(frag);
    }

    function segmentAt(u) {
      let lo = 0;
      let hi = S.segments.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (+S.segments[mid].dataset.u <= u) lo = mid;
        else hi = mid - 1;
      }
      return S.segments[lo];
    }

    function pointToU16(node, offset) {
      const docEl = opts.docEl;
      if (node.nodeType === Node.TEXT_NODE) return +node.parentElement.closest("[data-u]").dataset.u + offset;
      if (node === docEl) return offset >= docEl.childNodes.length ? text.length : +docEl.childNodes[offset].dataset.u;
      const seg = node.closest && node.closest("[data-u]");
      if (!seg) return null;
      return offset === 0 ? +seg.dataset.u : +seg.dataset.u + seg.textContent.length;
    }

    function selectionRange() {
      const sel = window.getSelection();
      if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
      const range = sel.getRangeAt(0);
      const docEl = opts.docEl;
      if (!range.intersectsNode(docEl)) return null;
      const whole = document.createRange();
      whole.selectNodeContents(docEl);
      let a = range.compareBoundaryPoints(Range.START_TO_START, whole) < 0 ? 0 : pointToU16(range.startContainer, range.startOffset);
      let b = range.compareBoundaryPoints(Range.END_TO_END, whole) > 0 ? text.length : pointToU16(range.endContainer, range.endOffset);
      if (a === null || b === null || a >= b) return null;
      [a, b] = snapToWords(text, a, b);
      return a < b ? [a, b] : null;
    }

    function showSelection(a, b) {
      const sa = segmentAt(a);
      const sb = segmentAt(b - 1);
      const range = document.createRange();
      range.setStart(sa.firstChild, a - +sa.dataset.u);
      range.setEnd(sb.firstChild, b - +sb.dataset.u);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }

    function spansField() {
      const active = S.stops[S.active] && S.stops[S.active].field;
      if (active && active.type === "spans") return active;
      return fields.find((f) => f.type === "spans");
    }

    function onDocMouseUp(event) {
      const range = selectionRange();
      if (range) {
        S.pending = { u: range, start: off.toCp(range[0]), end: off.toCp(range[1]) };
        showSelection(range[0], range[1]);
        const f = spansField();
        if (f) setStatus(`Selected “${text.slice(range[0], range[1])}”: press a label key or click a label.`);
        sync();
        return;
      }
      S.pending = null;
      const seg = event.target.closest && event.target.closest(".seg");
      if (seg && seg.spans && seg.spans.length) {
        const target = seg.spans.slice().sort((x, y) => x.end - x.start - (y.end - y.start))[0];
        removeSpan(target.field, target);
      }
      sync();
    }

    function addSpan(field, label) {
      if (!S.pending) return setStatus("Select some text first, then press the label key.", "error");
      const { start, end, u } = S.pending;
      const list = S.values[field.name];
      if (list.some((s) => s.start === start && s.end === end && s.label === label)) {
        setStatus("That span is already labelled " + label + ".");
      } else {
        snapshot();
        list.push({ start, end, label, text: text.slice(u[0], u[1]) });
        list.sort((x, y) => x.start - y.start || x.end - y.end || (x.label < y.label ? -1 : 1));
        setStatus(`Labelled “${text.slice(u[0], u[1])}” as ${label}.`);
      }
      S.pending = null;
      window.getSelection().removeAllRanges();
      changed();
    }

    function removeSpan(fieldName, span) {
      snapshot();
      S.values[fieldName] = S.values[fieldName].filter((s) => !(s.start === span.start && s.end === span.end && s.label === span.label));
      setStatus(`Removed ${span.label} “${span.text}”.`);
      changed();
    }

    /* ---- field widgets */
    const builders = {
      choice(f, box) {
        const keys = keyMap(f.options, f.hotkeys);
        const name = "f-" + f.name;
        const list = el("div", { class: "options", role: f.multiple ? "group" : "radiogroup", "aria-labelledby": box.titleId });
        const inputs = {};
        for (const option of f.options) {
          const input = el("input", { type: f.multiple ? "checkbox" : "radio", name, value: option, id: `${name}-${f.options.indexOf(option)}` });
          input.addEventListener("change", () => pick(option));
          inputs[option] = input;
          list.append(el("label", { class: "option", for: input.id }, [input, el("span", { text: option }), keys[option] ? kbd(keys[option]) : null]));
        }
        box.append(list);
        function pick(option) {
          snapshot();
          if (f.multiple) {
            const v = S.values[f.name];
            S.values[f.name] = v.includes(option) ? v.filter((o) => o !== option) : f.options.filter((o) => o === option || v.includes(o));
          } else {
            S.values[f.name] = S.values[f.name] === option ? null : option;
          }
          changed();
        }
        return {
          stops: [{}],
          onKey(stop, key) {
            const option = f.options.find((o) => keys[o] === key);
            if (option === undefined) return false;
            pick(option);
            if (!f.multiple && S.values[f.name]) moveActive(1, false);
            return true;
          },
          sync() {
            const v = S.values[f.name];
            for (const [option, input] of Object.entries(inputs)) input.checked = f.multiple ? v.includes(option) : v === option;
          },
        };
      },

      spans(f, box) {
        const keys = keyMap(f.labels, f.hotkeys);
        const palette = colors[f.name] || {};
        const bar = el("div", { class: "span-labels", role: "group", "aria-labelledby": box.titleId });
        for (const label of f.labels) {
          const c = palette[label] || { bg: "#555555", fg: "#ffffff" };
          const button = el("button", { type: "button", class: "chip", title: `Label the selection as ${label}`, onclick: () => addSpan(f, label) }, [
            el("span", { text: label }),
            keys[label] ? kbd(keys[label]) : null,
          ]);
          button.addEventListener("mousedown", (e) => e.preventDefault()); // keep the text selection
          button.style.backgroundColor = c.bg;
          button.style.color = c.fg;
          bar.append(button);
        }
        const hint = el("p", { class: "muted small" });
        const list = el("ul", { class: "span-list", "aria-label": `${f.title || f.name}: spans` });
        let listed = null;
        box.append(bar, hint, list);
        return {
          stops: [{}],
          onKey(stop, key) {
            const label = f.labels.find((l) => keys[l] === key);
            if (label === undefined) return false;
            addSpan(f, label);
            return true;
          },
          sync() {
            hint.textContent = S.pending ? `Selected: “${text.slice(S.pending.u[0], S.pending.u[1])}”` : "Select words in the text, then press a label key.";
            const key = JSON.stringify(S.values[f.name]);
            if (key === listed) return;
            listed = key;
            const items = S.values[f.name].map((s) => {
              const c = palette[s.label] || { bg: "#555555", fg: "#ffffff" };
              const chip = el("span", { class: "chip small", text: s.label });
              chip.style.backgroundColor = c.bg;
              chip.style.color = c.fg;
              return el("li", { "data-start": String(s.start), "data-end": String(s.end) }, [
                chip,
                el("span", { class: "span-text", dir: "auto", text: s.text }),
                el("span", { class: "muted small", text: `${s.start}–${s.end}` }),
                el("button", { type: "button", class: "linklike remove", "aria-label": `Remove ${s.label} ${s.text}`, text: "×", onclick: () => removeSpan(f.name, s) }),
              ]);
            });
            list.replaceChildren(...items);
          },
        };
      },

      text(f, box) {
        const id = "f-" + f.name;
        const area = el("textarea", { id, rows: "4", dir: "auto", "aria-labelledby": box.titleId });
        const original = (data.prefill || {})[f.name];
        const diff = el("div", { class: "diff", "aria-live": "off" });
        let typingSnapshot = 0;
        area.addEventListener("input", () => {
          if (Date.now() - typingSnapshot > 1500) snapshot();
          typingSnapshot = Date.now();
          S.values[f.name] = area.value;
          changed();
        });
        box.append(area);
        if (typeof original === "string" && original !== "") {
          const reset = el("button", { type: "button", class: "linklike small", text: "Reset to the original", onclick: () => { snapshot(); S.values[f.name] = original; changed(); } });
          box.append(el("div", { class: "diff-head" }, [el("span", { class: "muted small", text: "Changes from the original:" }), reset]), diff);
        }
        return {
          stops: [{ focus: area }],
          onKey: () => false,
          sync() {
            if (area.value !== S.values[f.name]) area.value = S.values[f.name];
            if (typeof original !== "string" || original === "") return;
            const parts = diffWords(original, S.values[f.name]);
            if (parts.every(([op]) => op === "=")) {
              diff.replaceChildren(el("span", { class: "muted small", text: "(unchanged)" }));
              return;
            }
            diff.replaceChildren(...parts.map(([op, t]) => el(op === "=" ? "span" : op === "+" ? "ins" : "del", { text: t })));
          },
        };
      },

      rating(f, box) {
        const [lo, hi] = f.scale || [1, 5];
        const { values, keys } = ratingKeys(lo, hi);
        const rows = [];
        const inputs = {};
        f.criteria.forEach((criterion, ci) => {
          const name = `f-${f.name}-${ci}`;
          const group = el("div", { class: "scale" });
          inputs[criterion] = {};
          for (const v of values) {
            const input = el("input", { type: "radio", name, value: String(v), id: `${name}-${v}` });
            input.addEventListener("change", () => set(criterion, v));
            inputs[criterion][v] = input;
            group.append(el("label", { class: "option compact", for: input.id, title: keys[v] ? `key ${keys[v]}` : null }, [input, el("span", { text: String(v) })]));
          }
          const row = el("fieldset", { class: "criterion" }, [el("legend", { text: criterion }), group]);
          rows.push(row);
          box.append(row);
        });
        if (Object.keys(keys).length) box.append(el("p", { class: "muted small", text: `Keys ${keys[lo]}–${keys[hi]} score the highlighted criterion (${lo} = poor, ${hi} = excellent).` }));
        function set(criterion, v) {
          snapshot();
          S.values[f.name] = Object.assign({}, S.values[f.name], { [criterion]: v });
          changed();
        }
        return {
          stops: f.criteria.map((criterion, ci) => ({ criterion, row: rows[ci] })),
          onKey(stop, key) {
            const v = values.find((x) => keys[x] === key);
            if (v === undefined) return false;
            set(stop.criterion, v);
            moveActive(1, false);
            return true;
          },
          sync() {
            const v = S.values[f.name];
            for (const criterion of f.criteria) for (const x of values) inputs[criterion][x].checked = v[criterion] === x;
          },
        };
      },

      pairwise(f, box) {
        const [ra, rb] = (data.pairs || {})[f.name] || ["", ""];
        const custom = f.hotkeys || {};
        const keys = {};
        PAIR_CHOICES.forEach(([value], i) => (keys[value] = (custom[value] || String(i + 1)).toLowerCase()));
        box.append(
          el("div", { class: "pair" }, [
            el("div", { class: "response" }, [el("h3", { text: "A" }), el("div", { class: "response-text", dir: "auto", text: ra })]),
            el("div", { class: "response" }, [el("h3", { text: "B" }), el("div", { class: "response-text", dir: "auto", text: rb })]),
          ]),
        );
        const name = "f-" + f.name;
        const group = el("div", { class: "options row", role: "radiogroup", "aria-labelledby": box.titleId });
        const inputs = {};
        for (const [value, title] of PAIR_CHOICES) {
          const input = el("input", { type: "radio", name, value, id: `${name}-${value}` });
          input.addEventListener("change", () => pick(value));
          inputs[value] = input;
          group.append(el("label", { class: "option", for: input.id }, [input, el("span", { text: title }), kbd(keys[value])]));
        }
        const reasonId = name + "-reason";
        const reason = el("input", { type: "text", id: reasonId, maxlength: "5000", placeholder: "optional", dir: "auto" });
        reason.addEventListener("input", () => {
          S.values[f.name] = Object.assign({}, S.values[f.name], { reason: reason.value });
          changed();
        });
        box.append(group, el("div", { class: "reason" }, [el("label", { for: reasonId, text: "Reason" }), reason]));
        function pick(value) {
          snapshot();
          S.values[f.name] = Object.assign({}, S.values[f.name], { choice: value });
          changed();
        }
        return {
          stops: [{}],
          onKey(stop, key) {
            const value = PAIR_CHOICES.map(([v]) => v).find((v) => keys[v] === key);
            if (value === undefined) return false;
            pick(value);
            return true;
          },
          sync() {
            const v = S.values[f.name];
            for (const [value, input] of Object.entries(inputs)) input.checked = v.choice === value;
            if (reason.value !== v.reason) reason.value = v.reason;
          },
        };
      },
    };

    /* ---- layout, active field, keys */
    const widgets = [];
    fields.forEach((f, index) => {
      const titleId = `title-${f.name}`;
      const box = el("section", { class: `field field-${f.type}`, id: `field-${f.name}`, "data-field": f.name, "aria-labelledby": titleId });
      box.titleId = titleId;
      box.append(el("h2", { class: "field-title", id: titleId }, [document.createTextNode(f.title || f.name), f.required ? el("span", { class: "req", text: " required" }) : null]));
      if (f.description) box.append(el("p", { class: "muted small", text: f.description }));
      const widget = builders[f.type](f, box);
      widget.box = box;
      widgets.push(widget);
      (f.type === "text" || f.type === "pairwise" ? opts.wideEl || opts.fieldsEl : opts.fieldsEl).append(box);
      for (const stop of widget.stops) S.stops.push(Object.assign(stop, { field: f, widget, index }));
      box.addEventListener("focusin", (e) => setActiveFromEvent(widget, e));
      box.addEventListener("mousedown", (e) => setActiveFromEvent(widget, e));
    });

    function setActiveFromEvent(widget, event) {
      const i = S.stops.findIndex((s) => s.widget === widget && (!s.row || s.row.contains(event.target)));
      if (i >= 0 && i !== S.active) {
        S.active = i;
        syncActive();
      }
    }

    function syncActive() {
      S.stops.forEach((stop, i) => {
        stop.widget.box.classList.toggle("active", stop.widget === S.stops[S.active].widget);
        if (stop.row) stop.row.classList.toggle("active", i === S.active);
      });
    }

    function moveActive(delta, focus) {
      if (!S.stops.length) return;
      S.active = Math.max(0, Math.min(S.stops.length - 1, S.active + delta));
      syncActive();
      const stop = S.stops[S.active];
      if (focus && stop.focus) stop.focus.focus();
      (stop.row || stop.widget.box).scrollIntoView({ block: "nearest" });
    }

    let drawn = null;
    function sync() {
      // Redraw the text only when spans changed: cheaper, and it keeps the user's selection.
      const key = JSON.stringify(fields.filter((f) => f.type === "spans").map((f) => S.values[f.name]));
      if (key !== drawn) {
        renderDoc();
        drawn = key;
      }
      widgets.forEach((w) => w.sync());
      if (S.stops.length) syncActive();
    }

    function onKey(e) {
      const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        moveActive(e.key === "ArrowDown" ? 1 : -1, true);
        return true;
      }
      if (e.key === "Escape") {
        S.pending = null;
        window.getSelection().removeAllRanges();
        sync();
        return true;
      }
      if (S.pending) {
        const f = spansField();
        const w = f && widgets[fields.indexOf(f)];
        if (w && w.onKey(null, key)) return true;
      }
      const stop = S.stops[S.active];
      return !!(stop && stop.widget.onKey(stop, key));
    }

    opts.docEl.addEventListener("mouseup", onDocMouseUp);
    opts.docEl.addEventListener("keyup", (e) => e.shiftKey && onDocMouseUp(e));

    return { S, load, result, sync, undo, onKey, setStatus, snapshot, changed, Offsets: off };
  }

  /* ---------------------------------------------------------------- the page */
  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function api(url, method, body, extra) {
    const response = await fetch(url, Object.assign({
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    }, extra || {}));
    let payload = null;
    try {
      payload = await response.json();
    } catch (err) {
      payload = null;
    }
    if (!response.ok) {
      const error = (payload && payload.error) || { message: `HTTP ${response.status}`, fields: {} };
      throw Object.assign(new Error(error.message), { status: response.status, fields: error.fields || {} });
    }
    return payload;
  }

  function page() {
    const data = JSON.parse(document.getElementById("label-data").textContent);
    const statusEl = document.getElementById("status");
    const submitBtn = document.getElementById("submit-btn");
    const predKey = `annotator:prediction:${data.task.id}`;
    let draftTimer = null;
    let draftInFlight = Promise.resolve();
    let submitting = false;
    let activeSeconds = 0;
    let lastInput = Date.now();

    const L = mount({
      data,
      docEl: document.getElementById("doc"),
      fieldsEl: document.getElementById("fields"),
      wideEl: document.getElementById("wide-fields"),
      statusEl,
      onChange: scheduleDraft,
    });

    // Start from: the autosaved draft, else your submission, else the newest model pre-label.
    let origin = "empty";
    if (data.draft) {
      L.load(data.draft);
      origin = "draft";
      L.S.predictionId = Number(localStorage.getItem(predKey)) || null;
    } else if (data.submitted) {
      L.load(data.submitted);
      origin = "submitted";
      L.S.predictionId = data.submitted_prediction;
    } else if (data.predictions.length) {
      usePrediction(data.predictions[0], false);
      origin = "prediction";
    } else {
      L.load({});
    }
    L.sync();
    if (origin === "draft") L.setStatus("Restored your autosaved draft.");
    else if (origin === "submitted") L.setStatus("You submitted this task before; changes update your submission.");
    prelabelBar();

    function usePrediction(prediction, record) {
      if (record) L.snapshot();
      L.load(prediction.result);
      L.S.predictionId = prediction.id;
      localStorage.setItem(predKey, String(prediction.id));
      if (record) L.changed();
    }

    function prelabelBar() {
      const bar = document.getElementById("prelabel-bar");
      if (!data.predictions.length) return;
      const p = data.predictions.find((x) => x.id === L.S.predictionId);
      const parts = [];
      if (p) {
        const score = typeof p.score === "number" ? ` (confidence ${Math.round(p.score * 100)}%)` : "";
        parts.push(el("span", { text: `Pre-labels from ${p.model_version}${score} are filled in; edit them freely.` }));
        parts.push(el("button", { type: "button", class: "primary", id: "accept-btn", onclick: accept }, [document.createTextNode("Accept as is "), kbd("Alt+A")]));
        parts.push(el("button", { type: "button", text: "Start from scratch", onclick: () => { L.snapshot(); L.S.predictionId = null; localStorage.removeItem(predKey); L.load({}); L.changed(); prelabelBar(); } }));
      } else {
        parts.push(el("span", { text: `${data.predictions.length} model pre-label${data.predictions.length > 1 ? "s" : ""} available.` }));
      }
      for (const x of data.predictions) {
        if (x === p) continue;
        parts.push(el("button", { type: "button", text: `Load ${x.model_version}`, onclick: () => { usePrediction(x, true); prelabelBar(); } }));
      }
      bar.replaceChildren(...parts);
      bar.hidden = false;
    }

    /* ---- active time: seconds with the tab visible and input within the last minute */
    for (const ev of ["keydown", "mousedown", "mousemove", "wheel", "input", "touchstart"]) window.addEventListener(ev, () => (lastInput = Date.now()), { passive: true, capture: true });
    // Elapsed time is added at each tick (and when a save takes it), so a task done in under a
    // second still records its time instead of rounding down to zero.
    let lastTick = performance.now();
    const tick = () => {
      const now = performance.now();
      if (document.visibilityState === "visible" && Date.now() - lastInput < IDLE_MS) activeSeconds += (now - lastTick) / 1000;
      lastTick = now;
    };
    setInterval(tick, 1000);
    const takeSeconds = () => {
      tick();
      const s = Math.round(activeSeconds * 1000) / 1000;
      activeSeconds = 0;
      return s;
    };

    /* ---- drafts */
    function scheduleDraft() {
      clearTimeout(draftTimer);
      draftTimer = setTimeout(saveDraft, DRAFT_DELAY_MS);
    }

    function saveDraft() {
      clearTimeout(draftTimer);
      if (!L.S.dirty || submitting) return draftInFlight;
      L.S.dirty = false;
      const seconds = takeSeconds();
      draftInFlight = api(data.urls.draft, "PUT", { result: L.result(), lead_time: seconds })
        .then(() => L.setStatus("Draft saved " + new Date().toLocaleTimeString() + "."))
        .catch((err) => {
          activeSeconds += seconds;
          L.S.dirty = true;
          L.setStatus("Draft not saved: " + err.message, "error");
        });
      return draftInFlight;
    }

    function flushDraft() {
      if (!L.S.dirty || submitting) return;
      L.S.dirty = false;
      fetch(data.urls.draft, {
        method: "PUT",
        keepalive: true,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ result: L.result(), lead_time: takeSeconds() }),
      }).catch(() => {});
    }
    document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flushDraft());
    window.addEventListener("pagehide", flushDraft);
    window.addEventListener("beforeunload", flushDraft);

    /* ---- submit, skip */
    async function submit() {
      if (submitting) return;
      submitting = true;
      submitBtn.disabled = true;
      clearTimeout(draftTimer);
      document.querySelectorAll(".field.invalid").forEach((box) => box.classList.remove("invalid"));
      L.setStatus("Submitting…");
      await draftInFlight;
      const body = { result: L.result(), lead_time: takeSeconds(), guideline_version: data.guideline_version };
      if (L.S.predictionId) body.prediction = L.S.predictionId;
      try {
        const saved = await api(data.urls.submit, "POST", body);
        L.S.dirty = false;
        localStorage.removeItem(predKey);
        data.submitted = saved.result;
        if (data.queue) {
          L.setStatus("Submitted. Loading the next task…", "ok");
          window.location.assign(data.urls.next);
          return;
        }
        L.setStatus(`Submitted${saved.submitted_at ? " at " + new Date(saved.submitted_at).toLocaleTimeString() : ""}.`, "ok");
      } catch (err) {
        activeSeconds += body.lead_time;
        L.S.dirty = true;
        for (const name of Object.keys(err.fields || {})) {
          const box = document.querySelector(`.field[data-field="${CSS.escape(name.split(/[[.]/)[0])}"]`);
          if (box) box.classList.add("invalid");
        }
        L.setStatus("Not submitted: " + err.message, "error");
      }
      submitting = false;
      submitBtn.disabled = false;
    }

    function accept() {
      submit();
    }

    async function skip() {
      if (submitting) return;
      if (!window.confirm("Skip this task? It leaves your queue.")) return;
      submitting = true;
      try {
        await api(data.urls.skip, "POST");
        L.S.dirty = false;
        window.location.assign(data.urls.next);
      } catch (err) {
        L.setStatus("Not skipped: " + err.message, "error");
        submitting = false;
      }
    }

    document.getElementById("label-form").addEventListener("submit", (e) => {
      e.preventDefault();
      submit();
    });
    document.getElementById("skip-btn").addEventListener("click", skip);
    document.getElementById("undo-btn").addEventListener("click", () => L.undo());

    document.addEventListener("keydown", (e) => {
      if (e.defaultPrevented || e.isComposing) return;
      const t = e.target;
      const typing = t.matches && t.matches("textarea, input[type=text], input:not([type]), select, [contenteditable]");
      const mod = e.ctrlKey || e.metaKey;
      let handled = true;
      if (mod && e.key === "Enter") submit();
      else if (typing) {
        if (e.key === "Escape") t.blur();
        else handled = false;
      } else if (mod && !e.shiftKey && !e.altKey && e.key.toLowerCase() === "z") L.undo();
      else if (e.altKey && !mod && e.code === "KeyS") skip();
      else if (e.altKey && !mod && e.code === "KeyA" && L.S.predictionId) accept();
      else if (e.altKey && !mod && e.code === "KeyG") document.getElementById("guidelines").toggleAttribute("open");
      else if (mod || e.altKey) handled = false;
      else if (e.key === "Enter") {
        if (t.matches && t.matches("button, a, summary")) handled = false;
        else submit();
      } else if (e.key === "?") document.getElementById("shortcuts").toggleAttribute("open");
      else handled = L.onKey(e);
      if (handled) e.preventDefault();
    });

    /* ---- comments */
    const commentList = document.getElementById("comment-list");
    function showComments(rows) {
      if (!rows.length) {
        commentList.replaceChildren(el("li", { class: "empty", text: "No comments yet." }));
        return;
      }
      commentList.replaceChildren(...rows.map((c) => el("li", {}, [
        el("strong", { text: c.username }),
        el("span", { class: "muted small", text: " " + new Date(c.created_at).toLocaleString() }),
        el("p", { dir: "auto", text: c.text }),
      ])));
    }
    const loadComments = () => api(data.urls.comments, "GET").then((body) => showComments(body.results || body)).catch(() => showComments([]));
    loadComments();
    document.getElementById("comment-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const box = document.getElementById("comment-text");
      if (!box.value.trim()) return;
      try {
        await api(data.urls.comments, "POST", { text: box.value });
        box.value = "";
        loadComments();
      } catch (err) {
        L.setStatus("Comment not posted: " + err.message, "error");
      }
    });

    window.annotatorLabeler = L; // for tests and debugging
  }

  window.Labeling = { mount, Offsets, snapToWords, diffWords };
  if (document.getElementById("label-data") && document.getElementById("label-form")) page();
})();
