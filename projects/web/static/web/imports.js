// Import page: upload through the imports API (with upload progress), then poll the job and show
// its counts and row errors. User data is set with textContent only.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("import-config").textContent);
  const form = document.getElementById("import-form");
  const uploadBar = document.getElementById("upload-progress");
  const uploadStatus = document.getElementById("upload-status");
  const panel = document.getElementById("job");
  const jobBar = document.getElementById("job-progress");
  const FINISHED = ["succeeded", "failed", "cancelled"];

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function field(name) {
    return panel.querySelector(`[data-field="${name}"]`);
  }

  function show(job) {
    panel.hidden = false;
    ["id", "status", "file_name", "rows_read", "rows_created", "rows_updated", "rows_unchanged", "rows_failed",
      "tasks_created"].forEach((name) => { field(name).textContent = String(job[name] ?? ""); });
    const message = field("message");
    message.textContent = job.message || "";
    message.hidden = !job.message;
    field("errors_url").href = job.errors_url;
    if (FINISHED.includes(job.status)) {
      jobBar.max = 1;
      jobBar.value = 1;
    } else {
      jobBar.removeAttribute("value"); // indeterminate while it runs: the row count is not known ahead
    }
    const body = document.querySelector("#errors tbody");
    body.replaceChildren();
    const errors = job.errors || [];
    if (!errors.length) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.className = "empty";
      cell.textContent = "No row errors.";
    }
    errors.slice(0, 200).forEach((error) => {
      const row = body.insertRow();
      [error.line, error.file || "", error.message].forEach((value) => {
        row.insertCell().textContent = String(value);
      });
    });
    if (errors.length > 200 || job.errors_truncated) {
      const row = body.insertRow();
      const cell = row.insertCell();
      cell.colSpan = 3;
      cell.className = "empty";
      cell.textContent = "More errors in the CSV report.";
    }
  }

  async function poll(id) {
    try {
      const response = await fetch(`${config.api}${id}/`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const job = await response.json();
        show(job);
        if (FINISHED.includes(job.status)) return;
      }
    } catch (err) {
      // A missed poll is retried on the next tick.
    }
    window.setTimeout(() => poll(id), 1000);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    data.delete("csrfmiddlewaretoken");
    if (!data.get("format")) data.delete("format");
    ["skill", "skill_field"].forEach((name) => { if (!data.get(name)) data.delete(name); });
    const file = data.get("file");
    if (file && file.size > config.maxBytes) {
      uploadStatus.textContent = `The file is larger than the import limit (${config.maxBytes} bytes).`;
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", config.api);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    uploadBar.hidden = false;
    uploadBar.value = 0;
    uploadStatus.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) uploadBar.value = Math.round((100 * e.loaded) / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
      if (xhr.status === 202 && body) {
        uploadStatus.textContent = "Uploaded.";
        uploadBar.value = 100;
        window.history.replaceState(null, "", `${config.page}?job=${body.id}`);
        show(body);
        poll(body.id);
      } else {
        uploadStatus.textContent = body && body.error ? body.error.message : `Upload failed (${xhr.status}).`;
      }
    });
    xhr.addEventListener("error", () => { uploadStatus.textContent = "Upload failed: network error."; });
    xhr.send(data);
  });

  if (config.job) poll(config.job);
})();
