// Account page: while a sync runs, poll the status URL and update the progress bar.
(function () {
  "use strict";
  const root = document.getElementById("account");
  const box = document.getElementById("sync-progress");
  if (!root || !box) return;
  const bar = box.querySelector("progress");
  const text = box.querySelector(".progress-text");
  let idleRounds = 0;
  async function tick() {
    let data;
    try {
      const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    box.hidden = !data.syncing;
    bar.max = Math.max(data.progress_total, 1);
    bar.value = data.progress_done;
    // The sentence comes translated from the page (data-progress-text), with %(name)s slots.
    const values = { done: data.progress_done, total: data.progress_total, size: (data.progress_bytes / 1048576).toFixed(1) };
    text.textContent = box.dataset.progressText.replace(/%\((\w+)\)s/g, function (_m, name) { return values[name]; });
    idleRounds = data.syncing ? 0 : idleRounds + 1;
  }
  setInterval(function () { if (idleRounds < 30) tick(); }, 2000);
  tick();
})();
