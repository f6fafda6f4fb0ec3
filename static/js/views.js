// Shortcuts of the views and of snooze (templates/mailbox/_views_script.html names the views' URLs):
// "g" then i / s / b / u / a opens Inbox / Starred / Snoozed / Unread / All mail; "b" opens the snooze menu.
(function () {
  "use strict";
  const urls = document.currentScript.dataset;
  const GO_WAIT_MS = 1500;
  let goPressed = 0;

  function typing(target) {
    return target.matches && target.matches("input:not([type=checkbox]):not([type=radio]), textarea, select, [contenteditable]");
  }

  function openSnoozeMenu() {
    const menu = document.querySelector("details.snooze-menu");
    if (!menu) return false;
    // In a list, snooze the selected messages or else the one the cursor is on (as "e" and "#" do).
    const form = menu.closest("form");
    if (form && !form.querySelector("input[name=ids]:checked")) {
      const current = document.querySelector("#message-list > li.current input[name=ids]");
      if (current) current.checked = true;
    }
    menu.open = true;
    const first = menu.querySelector(".snooze-panel button");
    if (first) first.focus();
    return true;
  }

  // Capture on window: runs before the list's own shortcuts (mail.js), so the letter after "g" is not also
  // taken as "s" (star) or "u" (mark unread) there.
  window.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (goPressed && Date.now() - goPressed < GO_WAIT_MS) {
      goPressed = 0;
      event.stopPropagation();
      const url = urls["go" + event.key.toUpperCase()];
      if (url && event.key.length === 1) { event.preventDefault(); window.location.href = url; }
      return;
    }
    if (event.key === "g") { goPressed = Date.now(); event.stopPropagation(); return; }
    if (event.key === "b" && openSnoozeMenu()) { event.preventDefault(); event.stopPropagation(); return; }
    if (event.key === "Escape") {
      const open = document.querySelector("details.snooze-menu[open]");
      if (open) { open.open = false; open.querySelector("summary").focus(); event.stopPropagation(); }
    }
  }, true);

  // A click anywhere else closes an open menu, as menus do.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.snooze-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
})();
