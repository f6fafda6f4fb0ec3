// Unsubscribe page: while the request is on its way, poll its status and load the page again when it ends.
(function () {
  "use strict";
  const root = document.getElementById("unsubscribe");
  if (!root || root.dataset.working !== "1") return;
  async function tick() {
    try {
      const response = await fetch(root.dataset.statusUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      if (data.kind !== "working") window.location.reload();
    } catch (e) { /* offline for a moment: the next tick tries again */ }
  }
  setInterval(tick, 1500);
})();
