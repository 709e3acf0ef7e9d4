// Review page keyboard shortcuts: a = accept, r = reject (focus the comment), f = fix (focus the
// corrected JSON); in a field, Ctrl/Cmd+Enter sends its form and Escape leaves the field.
(function () {
  const byId = (id) => document.getElementById(id);
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.closest && target.closest("textarea, input, select")) {
      if (event.key === "Escape") target.blur();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        target.form.requestSubmit();
      }
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "a" && byId("accept-form")) {
      event.preventDefault();
      byId("accept-form").requestSubmit();
    } else if (event.key === "r" && byId("reject-comment")) {
      event.preventDefault();
      byId("reject-comment").focus();
    } else if (event.key === "f" && byId("fix-result")) {
      event.preventDefault();
      byId("fix-result").focus();
    }
  });
})();
