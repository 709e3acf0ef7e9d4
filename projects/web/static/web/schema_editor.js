/* Schema editor: validates the JSON on the server as you type and re-draws the labeling form
   preview (labeling.js in preview mode); converts Label Studio configs into the editor. */
(function () {
  "use strict";
  const editor = document.getElementById("schema-json");
  const status = document.getElementById("schema-status");
  const errors = document.getElementById("schema-errors");
  const previewBox = document.getElementById("preview");
  const base = window.location.pathname.replace(/\/$/, "");
  let timer = null;
  let seq = 0;

  function csrfToken() {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    });
    return response.json();
  }

  function showErrors(message, fields) {
    status.textContent = message;
    status.className = "status error";
    errors.replaceChildren(...Object.entries(fields || {}).map(([k, v]) => {
      const li = document.createElement("li");
      li.textContent = `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`;
      return li;
    }));
  }

  function render(preview) {
    const doc = document.createElement("div");
    doc.className = "doc";
    doc.dir = "auto";
    const title = document.createElement("h3");
    title.textContent = preview.task.title;
    const wide = document.createElement("div");
    const fields = document.createElement("div");
    previewBox.replaceChildren(title, doc, wide, fields);
    const L = window.Labeling.mount({ data: preview, preview: true, docEl: doc, fieldsEl: fields, wideEl: wide });
    L.load({});
    L.sync();
  }

  async function check() {
    const mine = ++seq;
    let schema;
    try {
      schema = JSON.parse(editor.value);
    } catch (err) {
      showErrors("Not valid JSON: " + err.message, {});
      return;
    }
    const answer = await post(base + "/check/", { schema });
    if (mine !== seq) return; // a newer edit is on its way
    if (!answer.ok) return showErrors(answer.message, answer.fields);
    status.textContent = "Valid: " + answer.schema.fields.length + " field(s).";
    status.className = "status ok";
    errors.replaceChildren();
    render(answer.preview);
  }

  editor.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(check, 400);
  });

  document.getElementById("ls-file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) file.text().then((t) => (document.getElementById("ls-config").value = t));
  });

  document.getElementById("ls-convert").addEventListener("click", async () => {
    const list = document.getElementById("ls-warnings");
    clearTimeout(timer);
    const mine = ++seq; // answers to earlier checks must not redraw over the import
    const answer = await post(base + "/import-labelstudio/", { config: document.getElementById("ls-config").value });
    if (mine !== seq) return;
    if (!answer.ok) {
      list.replaceChildren();
      return showErrors(answer.message, answer.fields);
    }
    editor.value = JSON.stringify(answer.schema, null, 2);
    list.replaceChildren(...answer.warnings.map((w) => {
      const li = document.createElement("li");
      li.textContent = "Note: " + w;
      return li;
    }));
    status.textContent = "Converted; review it and press Save.";
    status.className = "status ok";
    errors.replaceChildren();
    render(answer.preview);
  });

  render(JSON.parse(document.getElementById("preview-data").textContent));
})();
