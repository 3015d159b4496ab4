// Polls the import job's JSON until it finishes, moving the bar; reloads for the report.
(function () {
  const box = document.getElementById("job");
  if (!box || box.dataset.finished === "1") return;
  const url = box.dataset.progressUrl;
  const bar = document.querySelector("#job-progress .bar");
  const meter = document.getElementById("job-progress");
  function show(state) {
    bar.style.width = state.percent + "%";
    bar.textContent = state.percent + "%";
    meter.setAttribute("aria-valuenow", state.percent);
    document.getElementById("job-status").textContent = state.status_label;
    document.getElementById("job-rows").textContent =
      state.rows_checked + " of " + state.rows_total + " rows checked, " + state.rows_written + " written";
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .then((state) => {
        show(state);
        if (state.finished) {
          window.location.reload();
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(() => setTimeout(poll, 3000));
  }
  setTimeout(poll, 500);
})();
