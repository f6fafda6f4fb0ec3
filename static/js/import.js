// Import page: while the import waits or runs, poll its status URL; show the bytes read and the counts,
// and load the page again when its state changes (a worker took it; it ended: the server renders the report).
(function () {
  "use strict";
  const root = document.getElementById("import-job");
  if (!root || root.dataset.active !== "1") return;
  const bar = document.getElementById("import-progress-bar");
  const text = document.querySelector("#import-progress .progress-text");
  const counts = ["imported", "duplicates", "refused"];
  function mb(bytes) { return (bytes / 1048576).toFixed(1); }
  async function tick() {
    let data;
    try {
      const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    if (data.state !== root.dataset.state) { window.location.reload(); return; }
    bar.max = Math.max(data.total_bytes, 1);
    bar.value = data.bytes_done;
    // The sentence comes translated from the page (data-progress-text), with %(name)s slots.
    const values = { done: mb(data.bytes_done), total: mb(data.total_bytes) };
    text.textContent = root.dataset.progressText.replace(/%\((\w+)\)s/g, function (_m, name) { return values[name]; });
    counts.forEach(function (name) { document.getElementById("import-" + name).textContent = data[name]; });
  }
  setInterval(tick, 1500);
})();
