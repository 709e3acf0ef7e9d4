// Pre-labeling page: poll active runs and move their progress bars; confirm before cancelling.
(function () {
  "use strict";
  document.querySelectorAll("form.confirm").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  const urls = JSON.parse(document.getElementById("run-urls").textContent);
  const active = new Map(Object.entries(urls));
  function update(id, run) {
    const row = document.querySelector(`tr[data-run="${id}"]`);
    if (!row) return;
    row.querySelector('[data-field="status"]').textContent = run.status;
    const bar = row.querySelector('[data-field="progress"]');
    bar.value = run.progress;
    bar.textContent = `${run.progress}%`;
    row.querySelector('[data-field="counts"]').textContent =
      `${run.done} done · ${run.failed} failed · ${run.total} tasks`;
    if (run.status !== "queued" && run.status !== "running") {
      active.delete(id);
      const form = row.querySelector("form");
      if (form) form.remove();
      if (document.getElementById("errors") && run.failed) window.location.reload();
    }
  }
  async function poll() {
    for (const [id, url] of active) {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) update(id, await response.json());
      } catch (err) {
        // A missed poll is retried on the next tick.
      }
    }
    if (active.size) window.setTimeout(poll, 2000);
  }
  if (active.size) window.setTimeout(poll, 1000);
})();
