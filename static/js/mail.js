// Message list: keyboard shortcuts, select all, and noticing new mail without a reload.
(function () {
  "use strict";
  const root = document.getElementById("mail");
  if (!root) return;
  const form = document.getElementById("bulk-form");
  const rows = () => Array.from(document.querySelectorAll("#message-list > li"));
  let current = -1;

  function focusRow(index) {
    const list = rows();
    if (!list.length) return;
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach((li, i) => li.classList.toggle("current", i === current));
    list[current].querySelector("a").focus();
  }

  function act(action) {
    if (!form) return;
    const list = rows();
    const checked = form.querySelectorAll("input[name=ids]:checked");
    if (!checked.length && list[current]) list[current].querySelector("input[name=ids]").checked = true;
    const button = document.createElement("input");
    button.type = "hidden"; button.name = "action"; button.value = action;
    form.appendChild(button);
    form.submit();
  }

  const selectAll = document.getElementById("select-all");
  if (selectAll) selectAll.addEventListener("change", function () {
    form.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = selectAll.checked; });
  });

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.matches("input[type=search], input[type=text], textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const help = document.getElementById("shortcut-help");
    switch (event.key) {
      case "j": focusRow(current + 1); break;
      case "k": focusRow(current - 1); break;
      case "o": if (rows()[current]) rows()[current].querySelector("a").click(); break;
      case "x": if (rows()[current]) { const box = rows()[current].querySelector("input[name=ids]"); box.checked = !box.checked; } break;
      case "e": act("archive"); break;
      case "#": act("trash"); break;
      case "s": act("star"); break;
      case "u": act("unread"); break;
      case "/": event.preventDefault(); document.getElementById("q").focus(); break;
      case "?": if (help) help.hidden = !help.hidden; break;
      case "Escape": if (help) help.hidden = true; break;
      default: return;
    }
  });

  // New mail: poll the counts; when the newest inbox message changes, refresh the list in place.
  const countsUrl = root.dataset.countsUrl;
  let newest = root.dataset.newest;
  async function poll() {
    let data;
    try {
      const response = await fetch(countsUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    // Counts stop above the cap the page names; show them as the page does ("999+").
    const cap = Number(root.dataset.unreadCap);
    const unread = data.unread > cap ? cap + "+" : String(data.unread || "");
    document.title = document.title.replace(/^\(\d+\+?\) /, "");
    if (data.unread) document.title = "(" + unread + ") " + document.title;
    const badge = document.getElementById("unread-badge");
    if (badge) badge.textContent = unread;
    if (data.newest && String(data.newest) !== newest && root.dataset.folder === "inbox" && !location.search) {
      newest = String(data.newest);
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("message-list");
      const list = document.getElementById("message-list");
      if (fresh && list && !form.querySelector("input[name=ids]:checked")) list.replaceWith(fresh);
      if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
        new Notification(root.dataset.newMail, { body: root.dataset.unreadText.replace("%(count)s", unread) });
      }
    }
  }
  setInterval(poll, 30000);
})();
