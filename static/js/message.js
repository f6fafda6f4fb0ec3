// A message's body (templates/mailbox/_body.html): wide HTML mail fitted to the frame, as a
// phone browser fits a wide page, and quoted text folded behind "…".
//
// The frame is sandboxed without scripts and has an opaque origin: nothing here reads its
// document. Its size comes from the browser's responsive iframe sizing, which the frame's
// document opts in to: the browser measures the content when the document loads (width and
// height) and applies one of the two to the frame (CSS frame-sizing). The frame normally takes
// its height; for a moment it takes its width instead, which tells whether the content is wider
// than the frame. A wide mail is then laid out at its own width and scaled down (a CSS
// transform, which leaves the frame's own pixel size alone), and loaded again at that width so
// that its height is measured there: the browser measures only on load. Whenever the width the
// frame should have changes (a rotated phone, a resized window), it is loaded again for the same
// reason; it names that width in its URL (?width=), and its document is laid out at least that
// wide even before the browser has given the frame its new size.
(function () {
  "use strict";
  const measurable = window.CSS && CSS.supports("frame-sizing", "content-width");
  const UNMEASURED_WIDTH = 300; // an embedded element's default size
  const UNMEASURED_HEIGHT = 150;

  function setUpBodies(scope) {
    scope.querySelectorAll("[data-mail-body]").forEach(function (root) {
      if (root.dataset.ready) return;
      root.dataset.ready = "1";
      root.querySelectorAll(".plain-fold").forEach(foldPlainText);
      const box = root.querySelector(".mail-frame-box");
      if (box) setUpFrame(root, box);
    });
  }
  setUpBodies(document);
  setUpConversation();

  function label(toggle, expanded) {
    const text = expanded ? toggle.dataset.hide : toggle.dataset.show;
    toggle.setAttribute("aria-expanded", String(expanded));
    toggle.setAttribute("aria-label", text);
    toggle.title = text;
  }

  // Plain text: the signature and trailing quotation show without script; here they fold.
  function foldPlainText(region) {
    const toggle = region.parentElement.querySelector(".fold-toggle[aria-controls='" + region.id + "']");
    if (!toggle) return;
    region.hidden = true;
    toggle.hidden = false;
    label(toggle, false);
    toggle.addEventListener("click", function () {
      region.hidden = !region.hidden;
      label(toggle, !region.hidden);
    });
  }

  function setUpFrame(root, box) {
    let frame = box.querySelector("iframe.mail-frame"); // replaced by a new element on each reload
    const fitToggle = root.querySelector(".fit-toggle");
    const foldToggle = root.querySelector(".fold-toggle");
    const src = new URL(frame.getAttribute("src"), location.href);
    let fit = true;
    let scale = 1;
    let loadedAt = 0; // the layout width (CSS px) the frame's document was loaded at
    let needs = 0; // the width the content needed when laid out at `overflowAt` or less
    let overflowAt = 0;
    let reloads = 0; // loads in a row without the reader asking: a guard against loops
    let pending = false;
    let retried = false; // loaded once more because the browser had not sized the frame
    let reloaded = false; // the frame's document was loaded by this script (at no height)
    let verifying = false; // waiting to see whether the browser sized the frame
    let awaitingMeasurement = null; // called when the frame's size changes while a measurement is awaited
    let measurementTimer = 0;
    let measurementPoll = 0;
    let unmeasuredLoads = 0; // loads in a row whose measurement did not come

    // The frame's layout width (a transform does not change it).
    function frameWidth() {
      return frame.getBoundingClientRect().width / scale;
    }

    // The width inside the box, with its fraction (clientWidth rounds it).
    function spaceInBox() {
      const style = getComputedStyle(box);
      return box.getBoundingClientRect().width - parseFloat(style.borderLeftWidth) - parseFloat(style.borderRightWidth);
    }

    // The width of the frame's content as the browser measured it at load: the frame takes
    // its content's width for a moment (nothing is drawn in between) and is put back.
    function contentWidth() {
      const style = frame.style;
      const saved = [style.width, style.height];
      style.height = frame.getBoundingClientRect().height / scale + "px";
      style.width = "auto";
      style.setProperty("frame-sizing", "content-width");
      const width = frameWidth();
      style.removeProperty("frame-sizing");
      style.width = saved[0];
      style.height = saved[1];
      return width;
    }

    // The layout width the frame should have for the space there is.
    function wanted(space) {
      return needs && space <= overflowAt + 1 ? Math.max(Math.ceil(needs), space) : space;
    }

    // A scaled frame keeps its layout size: the box takes the size it is drawn at.
    function fitBoxHeight() {
      box.style.height = scale === 1 ? "" : frame.getBoundingClientRect().height + "px";
    }

    function layout() {
      const space = spaceInBox();
      if (!space) return;
      const width = wanted(space);
      const wide = width > space + 1;
      scale = wide && fit ? Math.floor((space / width) * 1000) / 1000 : 1;
      frame.style.width = wide ? width + "px" : ""; // else the stylesheet's 100%
      frame.style.transform = scale === 1 ? "" : "scale(" + scale + ")";
      box.classList.toggle("fitted", scale !== 1);
      fitBoxHeight();
      if (fitToggle) {
        fitToggle.hidden = !wide;
        fitToggle.setAttribute("aria-pressed", String(fit));
      }
      if (loadedAt && Math.abs(width - loadedAt) > 1 && reloads < 3) {
        reloads += 1;
        reload();
      }
      box.dataset.state = pending || verifying ? "loading" : "ready";
    }

    function loaded() {
      pending = false;
      frame.style.height = frame.style.minHeight = "";
      box.style.minHeight = "";
      if (!measurable) {
        box.dataset.state = "ready";
        return;
      }
      box.dataset.state = "loading";
      whenMeasured(settle);
    }

    // The browser hands the page its measurement of the document as the document loads; on a busy
    // machine that can come after the frame's load event. Until then the frame has the default
    // size of an embedded element (300 px wide), less than the width its document was laid out at.
    function hasMeasurement() {
      const width = frameWidth();
      return width <= UNMEASURED_WIDTH + 1 || contentWidth() >= width - 1;
    }

    // `then` runs once the measurement is there. A document whose measurement does not come is
    // loaded again, with longer waits; one never measured after that gets a fixed height and
    // scrolls (as in a browser without frame-sizing) rather than being cut off.
    const WAITS = [2000, 3000, 5000];
    function whenMeasured(then) {
      function measured() {
        unmeasuredLoads = 0;
        box.classList.remove("unmeasured");
        then();
      }
      if (hasMeasurement()) {
        measured();
        return;
      }
      const element = frame;
      function check() {
        if (frame !== element || pending) return true; // a newer load took over
        if (!hasMeasurement()) return false;
        measured();
        return true;
      }
      function done() {
        awaitingMeasurement = null;
        clearTimeout(measurementTimer);
        clearInterval(measurementPoll);
      }
      awaitingMeasurement = function () {
        // Not inside the observer's callback: measuring changes the frame's size for a moment.
        setTimeout(function () {
          if (awaitingMeasurement && check()) done();
        }, 0);
      };
      // The frame's size may not change when the measurement comes (a mail exactly 150 px high).
      measurementPoll = setInterval(function () {
        if (awaitingMeasurement && check()) done();
      }, 250);
      measurementTimer = setTimeout(function () {
        const waiting = awaitingMeasurement;
        done();
        if (!waiting || check()) return;
        if (unmeasuredLoads < WAITS.length - 1) {
          unmeasuredLoads += 1;
          reload(true);
          return;
        }
        unmeasuredLoads = 0;
        frame.style.height = "75vh";
        box.classList.add("unmeasured");
        then();
      }, WAITS[Math.min(unmeasuredLoads, WAITS.length - 1)]);
    }

    // The browser measures a document's height as at least the frame's height while it loads. A
    // frame loaded by the page itself starts at the default 150 px: a short mail, or one measured
    // before its content was laid out (which a busy machine shows now and then), measures exactly
    // that. Such a frame is loaded once more, from no height, as every later load is.
    function settle() {
      if (!reloaded && Math.abs(frame.getBoundingClientRect().height - UNMEASURED_HEIGHT) < 0.5) {
        reload();
        return;
      }
      loadedAt = frameWidth();
      const content = contentWidth();
      if (content > loadedAt + 1) {
        overflowAt = Math.max(overflowAt, loadedAt);
        needs = Math.max(needs, content);
      }
      layout();
      if (!pending) verifySized();
    }

    // Now and then the browser misses a document's size at load and leaves the frame at its least
    // height, cutting the mail off. The frame counts as ready only once it has a height of its own;
    // one still at exactly its least height a moment after loading is loaded once more.
    function verifySized() {
      verifying = true;
      box.dataset.state = "loading";
      setTimeout(function () {
        verifying = false;
        if (pending || !frame.isConnected) return;
        const least = parseFloat(getComputedStyle(frame).minHeight) || 0;
        if (!retried && Math.abs(frame.getBoundingClientRect().height / scale - least) < 0.5) {
          reload(true);
          return;
        }
        box.dataset.state = "ready";
      }, 300);
    }

    // The frame loaded again: a new frame element in the old one's place, with the same
    // attributes and the new URL (no entry in the tab's history either way). A new document in
    // the old element now and then kept the old document's measured size. The browser measures
    // the new document's height as at least the frame's height while it loads, so the frame has
    // none for that time (its box keeps its size meanwhile, so the page does not move).
    function reload(again) {
      if (pending) return;
      pending = true;
      awaitingMeasurement = null;
      clearTimeout(measurementTimer);
      clearInterval(measurementPoll);
      retried = Boolean(again); // each load the page asks for may be retried once
      reloaded = true;
      box.dataset.state = "loading";
      box.style.minHeight = box.getBoundingClientRect().height + "px";
      src.searchParams.set("width", String(Math.floor(frameWidth())));
      loadedAt = 0;
      const next = frame.cloneNode(false);
      next.style.height = next.style.minHeight = "0";
      next.src = src.href;
      next.addEventListener("load", loaded);
      sizes.unobserve(frame);
      frame.replaceWith(next);
      frame = next;
      sizes.observe(frame);
    }

    // The frame's height follows its content (frame-sizing): a scaled frame's box follows it.
    const sizes = new ResizeObserver(function () {
      fitBoxHeight();
      if (awaitingMeasurement) awaitingMeasurement();
    });
    sizes.observe(frame);
    frame.addEventListener("load", loaded);
    // The frame may have loaded before this script ran; the page's load event comes after it.
    if (document.readyState === "complete") loaded();
    else window.addEventListener("load", function () { if (!loadedAt && !pending && !awaitingMeasurement) loaded(); });

    // Only a new width of the box matters (its height follows the frame's).
    let resizing = 0;
    let boxWidth = 0;
    new ResizeObserver(function () {
      const width = spaceInBox();
      if (Math.abs(width - boxWidth) < 0.5) return;
      boxWidth = width;
      clearTimeout(resizing);
      resizing = setTimeout(function () {
        reloads = 0;
        if (loadedAt) layout();
      }, 150);
    }).observe(box);

    if (fitToggle) {
      fitToggle.addEventListener("click", function () {
        fit = !fit;
        layout();
      });
    }

    // HTML mail: the quotation is hidden in the frame's document; show or hide it by loading
    // the frame again (the link does the same for the whole page without script).
    if (foldToggle) {
      foldToggle.addEventListener("click", function (event) {
        event.preventDefault();
        const show = foldToggle.getAttribute("aria-expanded") !== "true";
        if (show) src.searchParams.set("quoted", "1");
        else src.searchParams.delete("quoted");
        label(foldToggle, show);
        reloads = 0;
        reload();
      });
    }
  }

  // A conversation (templates/mailbox/message.html): each message is a <details>; one expanded for
  // the first time is fetched (a POST: it marks the message read) and shown in place. Without
  // script, or if that fails, the collapsed message offers a link to its own page.
  function setUpConversation() {
    const list = document.querySelector("[data-conversation]");
    if (!list) return;
    const items = Array.from(list.querySelectorAll("details.conv-message"));
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    let current = Math.max(0, items.findIndex((d) => d.closest("li").getAttribute("aria-current") === "true"));

    async function load(details) {
      if ("loaded" in details.dataset || details.dataset.loading) return;
      details.dataset.loading = "1";
      details.setAttribute("aria-busy", "true");
      try {
        const response = await fetch(details.dataset.partUrl, {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRFToken": token ? token.value : "" },
        });
        if (!response.ok) throw new Error("HTTP " + response.status);
        // Our own fragment, parsed inert; its nodes move into the page.
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const body = details.querySelector(".conv-body");
        body.replaceChildren(...Array.from(page.body.childNodes).map((node) => document.adoptNode(node)));
        // Parsed scripts never run: load the attachments' module (once per page, as modules are).
        body.querySelectorAll("script[src]").forEach(function (old) {
          const script = document.createElement("script");
          script.type = old.type;
          script.src = old.src;
          old.replaceWith(script);
        });
        details.dataset.loaded = "1";
        details.classList.remove("unread");
        const unread = details.querySelector(".conv-head .conv-unread");
        if (unread) unread.remove();
        setUpBodies(body);
      } catch (error) {
        // The link to the message's own page stays.
      } finally {
        delete details.dataset.loading;
        details.removeAttribute("aria-busy");
      }
    }

    items.forEach(function (details, index) {
      details.addEventListener("toggle", function () {
        if (details.open) load(details);
      });
      details.addEventListener("focusin", function () { current = index; });
    });

    // A long conversation opens at the opened message when it would start below the first screen.
    if (current > 0 && items[current].getBoundingClientRect().top > innerHeight * 0.75) {
      items[current].scrollIntoView({ block: "start" });
    }

    function move(step) {
      current = Math.max(0, Math.min(items.length - 1, current + step));
      const summary = items[current].querySelector("summary");
      summary.focus();
      summary.scrollIntoView({ block: "nearest" });
    }

    // r, a, f act on the message the reader is at, or else the last one shown expanded.
    function inMessage(selector) {
      const here = items[current] && items[current].open && items[current].querySelector(selector);
      if (here) return here;
      const shown = items.filter((d) => d.open && d.querySelector(selector));
      return shown.length ? shown[shown.length - 1].querySelector(selector) : null;
    }

    function typing(target) {
      return target.matches && target.matches("input:not([type=checkbox]):not([type=radio]), textarea, select, [contenteditable]");
    }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
      const help = document.getElementById("shortcut-help");
      let button = null;
      switch (event.key) {
        case "j": case "n": move(1); break;
        case "k": case "p": move(-1); break;
        case "o": items[current].open = !items[current].open; break;
        case "r": case "a": case "f": button = inMessage("[data-key='" + event.key + "']"); break;
        case "s": button = inMessage(".star-toggle"); break;
        case "e": case "#": case "u": button = document.querySelector(".message-actions [data-key='" + event.key + "']"); break;
        case "?": if (help) help.hidden = !help.hidden; break;
        case "Escape": if (help && !help.hidden) help.hidden = true; else return; break;
        default: return;
      }
      event.preventDefault();
      if (button) button.click();
    });
  }
})();
