// Task manager: "select all" for the checkboxes of the current page. No user data touched.
(function () {
  "use strict";
  var all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="task_ids"]').forEach(function (box) {
      box.checked = all.checked;
    });
  });
})();
