/* Account pages: confirmation dialogs opened by a button, and copy buttons for a new key.
   [data-open-dialog="id"] opens <dialog id>; [data-close-dialog] closes its dialog;
   a <dialog data-open> (a form sent back with errors) opens on load;
   [data-copy="id"] copies the text of element #id;
   ticking a checkbox [data-implies="value"] ticks its form's box of that value too (an
   operation on tasks needs viewing them; the server adds it anyway, this shows it). */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && !dialog.open) {
        dialog.showModal();
        var field = dialog.querySelector("input:not([type=hidden]), select, textarea");
        if (field) field.focus();
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) open.close();
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy) {
      var source = document.getElementById(copy.dataset.copy);
      if (!source) return;
      var text = source.textContent.trim();
      var done = function () {
        var label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
      } else {
        selectText(source);
        try { if (document.execCommand("copy")) done(); } catch (e) { /* selected for Ctrl+C */ }
      }
    }
  });

  document.addEventListener("change", function (event) {
    var box = event.target.closest("input[data-implies]");
    if (!box || !box.checked || !box.form) return;
    box.form.querySelectorAll('input[type=checkbox][value="' + box.dataset.implies + '"]')
      .forEach(function (implied) { implied.checked = true; });
  });

  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("dialog[data-open]").forEach(function (dialog) {
      if (!dialog.open) dialog.showModal();
    });
  });
})();
