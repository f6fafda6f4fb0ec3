// Message list: keyboard shortcuts, select all (the page, or the whole list in the background), stars in
// place, a background job's progress, and noticing new mail without a reload.
(function () {
  "use strict";
  const root = document.getElementById("mail");
  if (!root) return;
  const form = document.getElementById("bulk-form");
  const rows = () => Array.from(document.querySelectorAll("#message-list > li"));
  let current = -1;

  // Inbox tabs: on a narrow screen the strip scrolls sideways; show the open tab, not only the first ones.
  const tabStrip = document.querySelector(".inbox-tabs");
  const openTab = tabStrip && tabStrip.querySelector("[aria-current]");
  if (openTab && tabStrip.scrollWidth > tabStrip.clientWidth) {
    tabStrip.scrollLeft = openTab.offsetLeft - (tabStrip.clientWidth - openTab.offsetWidth) / 2;
  }

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

  // The row actions (archive, delete, read): one group, moved into the row pointed at or focused and
  // posting to that row's URL (its star's), shown there by CSS on hover and focus (never on phones).
  const rowActions = document.getElementById("row-actions");
  function moveActions(li) {
    if (!rowActions || !li || rowActions.parentNode === li) return;
    const url = li.querySelector(".row-star").getAttribute("formaction");
    rowActions.querySelectorAll("button").forEach((button) => button.setAttribute("formaction", url));
    li.appendChild(rowActions);
  }
  document.addEventListener("mouseover", function (event) {
    moveActions(event.target.closest && event.target.closest("#message-list > li"));
  });

  // A row focused or opened by pointer is the current one too (u, x, e act on it).
  document.addEventListener("focusin", function (event) {
    const li = event.target.closest && event.target.closest("#message-list > li");
    if (li) {
      moveActions(li);
      current = rows().indexOf(li);
      rows().forEach((row) => row.classList.toggle("current", row === li));
    }
  });

  // "Select all": the page's rows; when the list has more pages, a bar offers the whole list (the
  // server counts it), and the toolbar's actions then run on it in the background (scope=all).
  const selectAll = document.getElementById("select-all");
  const bar = document.getElementById("select-all-bar");
  const scope = document.getElementById("select-scope");
  function wholeList(on, data) {
    scope.value = on ? "all" : "";
    const button = document.getElementById("select-all-scope");
    bar.querySelector(".select-all-text").textContent = on ? data.chosen : bar.dataset.page;
    button.textContent = on ? bar.dataset.clear : data.offer;
    button.onclick = function () {
      if (on) { selectAll.checked = false; selectAll.dispatchEvent(new Event("change")); } else wholeList(true, data);
    };
  }
  async function offerWholeList() {
    let data;
    try {
      const response = await fetch(bar.dataset.countUrl, { credentials: "same-origin" });
      if (!response.ok) return;
      data = await response.json();
    } catch (e) { return; }
    if (!selectAll.checked || data.count <= rows().length) return;
    wholeList(false, data);
    bar.hidden = false;
  }
  if (selectAll) selectAll.addEventListener("change", function () {
    form.querySelectorAll("input[name=ids]").forEach((box) => { box.checked = selectAll.checked; });
    if (!bar) return;
    scope.value = "";
    bar.hidden = true;
    if (selectAll.checked) offerWholeList();
  });
  // Unticking a row leaves "all": the action is then on the rows still ticked.
  if (form) form.addEventListener("change", function (event) {
    if (event.target.name === "ids" && !event.target.checked && bar) {
      scope.value = ""; bar.hidden = true;
      if (selectAll) selectAll.checked = false;
    }
  });

  // A row's star: posted in the background and the row changed in place (without script the form posts it).
  const token = form && form.querySelector("input[name=csrfmiddlewaretoken]");
  async function star(button) {
    const body = new FormData();
    body.append("action", button.value);
    let data;
    try {
      const response = await fetch(button.formAction, {
        method: "POST", body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": token.value },
      });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
    } catch (e) { form.requestSubmit(button); return; }  // let the form post it
    const on = data.flagged;
    button.value = on ? "unstar" : "star";
    button.setAttribute("aria-pressed", String(on));
    const label = on ? root.dataset.unstarLabel : root.dataset.starLabel;
    button.setAttribute("aria-label", label);
    button.title = label;
    const use = button.querySelector("use");
    use.setAttribute("href", use.getAttribute("href").replace(/#.*$/, on ? "#star-filled" : "#star"));
    button.closest("li").classList.toggle("starred", on);
  }
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("#message-list .row-star");
    if (!button || !token) return;
    event.preventDefault();
    star(button);
  });

  // A job on a whole list: its progress until it is done, then the list as it is now.
  const job = document.getElementById("bulk-job");
  if (job && job.dataset.statusUrl) {
    const timer = setInterval(async function () {
      let data;
      try {
        const response = await fetch(job.dataset.statusUrl, { credentials: "same-origin" });
        if (!response.ok) return;
        data = await response.json();
      } catch (e) { return; }
      job.querySelector(".bulk-job-text").textContent = data.text;
      const bar = job.querySelector("progress");
      if (bar) { bar.max = data.total; bar.value = data.done; }
      if (!data.active) { clearInterval(timer); location.reload(); }
    }, 1000);
  }

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
      case "s": {
        // Nothing ticked: the current row's star, in place; else the ticked rows, as the toolbar does.
        const row = rows()[current];
        if (form && !form.querySelector("input[name=ids]:checked") && row && row.querySelector(".row-star")) star(row.querySelector(".row-star"));
        else act("star");
        break;
      }
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
      // Taken as seen only once the page came: a page that fails (the server busy or restarting, "back in
      // a moment") is fetched again at the next poll, not left out until more mail comes.
      let text;
      try {
        const response = await fetch(location.href, { credentials: "same-origin" });
        if (!response.ok) return;
        text = await response.text();
      } catch (e) { return; }
      newest = String(data.newest);
      const page = new DOMParser().parseFromString(text, "text/html");
      const fresh = page.getElementById("message-list");
      const list = document.getElementById("message-list");
      if (fresh && list && !form.querySelector("input[name=ids]:checked")) {
        if (rowActions) form.appendChild(rowActions);  // out of the rows being replaced
        list.replaceWith(fresh);
      }
      // Shown when notifications are on and not pushed (static/js/push.js).
      if (document.hidden && window.webpopNotify) {
        window.webpopNotify(root.dataset.newMail, root.dataset.unreadText.replace("%(count)s", unread));
      }
    }
  }
  setInterval(poll, 30000);
})();
