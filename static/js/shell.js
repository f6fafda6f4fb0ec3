// The app shell: the folder drawer on narrow screens and the menus (details.menu) closing like menus do.
(function () {
  "use strict";
  const body = document.body;

  // First sign-in with no time zone chosen: the browser's, once (the server checks it and keeps it).
  const script = document.currentScript;
  const zoneUrl = script && script.dataset.timeZoneUrl;
  const token = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (zoneUrl && token && window.Intl) {
    const data = new FormData();
    data.append("time_zone", Intl.DateTimeFormat().resolvedOptions().timeZone || "");
    fetch(zoneUrl, { method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRFToken": token.value } })
      .catch(function () {});
  }
  const toggle = document.getElementById("drawer-toggle");
  const sidebar = document.getElementById("sidebar");

  function setDrawer(open) {
    if (!toggle || !sidebar) return;
    body.classList.toggle("drawer-open", open);
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const first = sidebar.querySelector("a[aria-current], a");
      if (first) first.focus();
    }
  }
  if (toggle) toggle.addEventListener("click", function () { setDrawer(!body.classList.contains("drawer-open")); });

  function closeMenus(except) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) { if (menu !== except) menu.open = false; });
  }

  document.addEventListener("click", function (event) {
    const menu = event.target.closest("details.menu");
    closeMenus(menu);
    // A click on the dimmed page beside the open drawer closes it.
    if (body.classList.contains("drawer-open") && !event.target.closest("#sidebar, #drawer-toggle")) setDrawer(false);
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    const open = document.querySelector("details.menu[open]");
    if (open) {
      open.open = false;
      open.querySelector("summary").focus();
    } else if (body.classList.contains("drawer-open")) {
      setDrawer(false);
      toggle.focus();
    }
  });
})();
