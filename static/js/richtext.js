// Rich text fields: a text field marked with data-rich-html gets the Trix editor (static/vendor/trix) and a switch
// between rich and plain text. The form's format field says "plain" until the editor has started here, so without
// this script (or without Trix) the text field is what is saved and sent.
(function () {
  "use strict";
  const template = document.getElementById("rich-editor-template");
  if (!template || !window.Trix) return;
  // Pictures show without Trix's file name and size under them (those would not be sent anyway).
  Trix.config.attachments.preview.caption = { name: false, size: false };
  // The selection kept visible while the link dialog is open: an element styled by richtext.css, not an inline
  // style (which the Content-Security-Policy refuses when Trix copies the element).
  Trix.config.textAttributes.frozen = { tagName: "mark" };
  const PICTURES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
  let count = 0;

  document.querySelectorAll("textarea[data-rich-html]").forEach(setUp);

  // HTML pasted from a word processor, a web page or other mail keeps only what the editor has: bold and italic
  // written as styles become <strong> and <em>; styles, classes and blocks of style or script go (the page's
  // Content-Security-Policy would refuse them, and in mail they mean nothing), and so do pictures from other
  // sites (they would load from there). Parsed in a document of its own, where nothing loads or runs.
  function cleanPaste(html) {
    // Style blocks dropped and style attributes renamed before parsing: the policy covers this document too,
    // and would report each.
    html = html.replace(/<style\b[\s\S]*?(?:<\/style\s*>|$)/gi, "")
      .replace(/(<[^>]*?\s)style(\s*=)/gi, "$1data-paste-style$2");
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.body.querySelectorAll("script, link, meta, title, iframe, object, embed, template").forEach(function (el) {
      el.remove();
    });
    doc.body.querySelectorAll("img").forEach(function (img) {
      if (!ownPicture(img.getAttribute("src"))) img.remove();
    });
    doc.body.querySelectorAll("[data-paste-style]").forEach(function (element) {
      const style = element.getAttribute("data-paste-style");
      const weight = ((/(?:^|;)\s*font-weight\s*:\s*([^;!]+)/i.exec(style) || [])[1] || "").trim().toLowerCase();
      const bold = weight === "bold" || weight === "bolder" || parseInt(weight, 10) >= 600;
      const italic = /(?:^|;)\s*font-style\s*:\s*(?:italic|oblique)/i.test(style);
      element.removeAttribute("data-paste-style");
      const tag = element.tagName.toLowerCase();
      if ((tag === "b" || tag === "strong") && weight && !bold) {
        element.replaceWith.apply(element, Array.from(element.childNodes));  // Google Docs wraps all in <b>
        return;
      }
      [[bold && tag !== "b" && tag !== "strong", "strong"], [italic && tag !== "i" && tag !== "em", "em"]]
        .forEach(function (wanted) {
          if (!wanted[0]) return;
          const wrapper = doc.createElement(wanted[1]);
          wrapper.append.apply(wrapper, Array.from(element.childNodes));
          element.append(wrapper);
        });
    });
    doc.body.querySelectorAll("[class]").forEach(function (el) { el.removeAttribute("class"); });
    return doc.body.innerHTML;
  }

  function ownPicture(src) {
    try {
      return Boolean(src) && new URL(src, location.href).origin === location.origin;  // blob: URLs included
    } catch (error) {
      return false;
    }
  }

  function setUp(textarea) {
    const form = textarea.form;
    const htmlInput = document.getElementById(textarea.dataset.richHtml);
    const formatInput = document.getElementById(textarea.dataset.richFormat);
    if (!form || !htmlInput || !formatInput) return;
    const number = ++count;
    const parts = template.content.cloneNode(true);
    const bar = parts.querySelector(".rich-format");
    const toolbar = parts.querySelector("trix-toolbar");
    const pictures = "richImages" in textarea.dataset;
    toolbar.id = "rich-toolbar-" + number;
    if (!pictures) toolbar.querySelector("[data-trix-button-group=file-tools]").remove();
    const editor = document.createElement("trix-editor");
    editor.id = "rich-editor-" + number;
    editor.className = "trix-content rich-editor";
    editor.setAttribute("input", htmlInput.id);
    editor.setAttribute("toolbar", toolbar.id);
    const label = form.querySelector('label[for="' + textarea.id + '"]');
    if (label) {
      label.id = label.id || textarea.id + "-label";
      editor.setAttribute("aria-labelledby", label.id);
    }
    const box = document.createElement("div");
    box.className = "rich-box";
    box.append(toolbar, editor);
    if (label) {  // the label, and the switch at the end of its line
      const head = document.createElement("div");
      head.className = "rich-head";
      label.before(head);
      head.append(label, bar);
    } else {
      textarea.before(bar);
    }
    textarea.after(box);
    const note = document.createElement("div");
    note.className = "error rich-note";
    note.setAttribute("role", "alert");
    note.hidden = true;
    box.after(note);

    function show(rich) {
      box.hidden = !rich;
      textarea.hidden = rich;
      formatInput.value = rich ? "rich" : "plain";
      bar.querySelectorAll("[data-rich-switch]").forEach(function (button) {
        button.setAttribute("aria-pressed", String((button.dataset.richSwitch === "rich") === rich));
      });
    }
    function say(text) {
      note.textContent = text;
      note.hidden = !text;
    }
    show(textarea.dataset.richStart === "rich");

    // Switching converts on the server (one converter for the text version sent and this):
    // rich → plain keeps list markers, quotations and links as text; plain → rich keeps lines and quotations.
    bar.addEventListener("click", async function (event) {
      const button = event.target.closest("[data-rich-switch]");
      if (!button) return;
      const rich = button.dataset.richSwitch === "rich";
      if (rich === (formatInput.value === "rich")) return;
      const data = new FormData();
      data.set("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      if (rich) data.set("text", textarea.value);
      else data.set("html", htmlInput.value);
      try {
        const response = await fetch(template.dataset.convertUrl, {
          method: "POST", body: data, credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
        });
        if (!response.ok) throw new Error(String(response.status));
        const answer = await response.json();
        if (rich) {
          editor.editor.loadHTML(answer.html);
        } else {
          textarea.value = answer.text;
          htmlInput.value = "";
        }
        show(rich);
        say("");
        (rich ? editor : textarea).focus();
        textarea.dispatchEvent(new Event("input", { bubbles: true }));  // a change to save
      } catch (error) {
        say(template.dataset.switchFailed);
      }
    });

    // The toolbar is one tab stop; the arrow keys, Home and End move between its buttons (the ARIA toolbar
    // pattern). Trix's buttons act on mousedown only: Enter and Space on a focused button do the same.
    const buttons = Array.from(toolbar.querySelectorAll(".trix-button-row button"));
    buttons.forEach(function (button, index) { button.tabIndex = index === 0 ? 0 : -1; });
    toolbar.addEventListener("keydown", function (event) {
      const button = event.target.closest(".trix-button-row button");
      if (!button) return;
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -buttons.length, End: buttons.length };
      if (event.key in moves) {
        event.preventDefault();
        const step = getComputedStyle(toolbar).direction === "rtl" && event.key.startsWith("Arrow") ? -1 : 1;
        const index = Math.max(0, Math.min(buttons.length - 1, buttons.indexOf(button) + moves[event.key] * step));
        buttons.forEach(function (other) { other.tabIndex = -1; });
        buttons[index].tabIndex = 0;
        buttons[index].focus();
      } else if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        button.dispatchEvent(new MouseEvent("mousedown", { bubbles: true, cancelable: true }));
      }
    });
    // Screen readers hear which styles are on where the cursor is.
    function pressed() {
      requestAnimationFrame(function () {
        toolbar.querySelectorAll("button[data-trix-attribute]").forEach(function (button) {
          button.setAttribute("aria-pressed", button.hasAttribute("data-trix-active") ? "true" : "false");
        });
      });
    }
    editor.addEventListener("trix-selection-change", pressed);
    editor.addEventListener("trix-change", pressed);

    // HTML pasted: cleaned here before Trix sees it (Trix would parse it as it came, and the policy report each
    // style attribute in it). Text, files and links are Trix's to paste.
    box.addEventListener("beforeinput", function (event) {
      const data = event.inputType === "insertFromPaste" && event.dataTransfer;
      const html = data && !data.files.length && !data.getData("URL") && data.getData("text/html");
      if (!html || !editor.editor) return;
      event.preventDefault();
      event.stopPropagation();
      editor.editor.recordUndoEntry("Paste");
      editor.editor.insertHTML(cleanPaste(html));
    }, true);
    editor.addEventListener("trix-before-paste", function (event) {  // any other way HTML comes in
      if (event.paste.type === "text/html" && event.paste.html) event.paste.html = cleanPaste(event.paste.html);
    });

    // Files dropped or pasted: pictures where the page takes them (the draft stores them), nothing else.
    editor.addEventListener("trix-file-accept", function (event) {
      if (!pictures || !PICTURES.includes(event.file.type)) {
        event.preventDefault();
        if (pictures) say(template.dataset.pictureRefused);
      }
    });
  }
})();
