/* keyadmin's own script. htmx comes from django-htmx; CSP forbids inline script, hx-on and eval,
   so every behaviour is a delegated listener here. Translated texts come from data-msg-* attributes.
   Without this file every action still works as a plain form post. */
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  /* The one redirect that opens a staff session behind an identity-aware proxy marks its URL
     with ?session-check= (keyadmin/sso/cookie_check.py). The server ignores it once the cookie
     came back; out of the address bar it goes too, so it is neither bookmarked nor shared. */
  if (window.URLSearchParams && window.history.replaceState) {
    var here = new URL(window.location.href);
    if (here.searchParams.has('session-check')) {
      here.searchParams.delete('session-check');
      window.history.replaceState(window.history.state, '', here.pathname + here.search + here.hash);
    }
  }

  if (window.htmx) {
    // No inline styles here (CSP style-src 'self'), so htmx must never copy a style attribute
    // from an old element to its replacement: that setAttribute would be a CSP violation.
    window.htmx.config.attributesToSettle = ['class', 'width', 'height'];
  }

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function text(el, name) { return (el && el.getAttribute('data-msg-' + name)) || ''; }
  function rows() { return $$('#key-rows > tr.key-row'); }

  /* Screen-reader announcements go to #live: "Copied" and the like, never a secret. */
  function announce(message) {
    var live = $('#live');
    if (!live) { return; }
    live.textContent = '';
    window.setTimeout(function () { live.textContent = message; }, 60);
  }

  function notify(message, level) {
    var box = $('#notices');
    if (!box) { return; }
    var notice = document.createElement('div');
    var p = document.createElement('p');
    var close = document.createElement('button');
    notice.className = 'notice notice-' + level;
    p.textContent = message;
    close.type = 'button';
    close.className = 'notice-close';
    close.setAttribute('data-dismiss-notice', '');
    close.setAttribute('aria-label', text(box, 'dismiss') || 'Dismiss');
    close.textContent = '\u00d7';
    notice.appendChild(p);
    notice.appendChild(close);
    box.replaceChildren(notice);
  }

  function focusMarked() {
    var marked = $('[data-ka-focus]');
    if (!marked) { return false; }
    marked.removeAttribute('data-ka-focus');
    marked.focus();
    return true;
  }

  /* --- The table: count, empty states and the filter, all from the rows in the page --- */

  function applyFilter() {
    var form = $('#key-filter');
    var noMatch = $('#keys-nomatch');
    if (!form || !noMatch) { return; }
    var query = form.elements.q.value.trim().toLowerCase();
    var status = form.elements.status.value;
    var review = form.elements.review ? form.elements.review.value : '';
    var all = rows();
    var shown = 0;
    all.forEach(function (row) {
      var due = row.getAttribute('data-review') || '';
      var hide = (query && (row.getAttribute('data-name') || '').toLowerCase().indexOf(query) < 0) ||
        (status && row.getAttribute('data-status') !== status) ||
        (review === 'overdue' && due !== 'overdue') || (review === 'due' && !due);
      row.hidden = !!hide;
      if (!hide) { shown += 1; }
    });
    noMatch.hidden = !(all.length && !shown);
  }

  /* The header's review count, from the rows: a note saved or "Reviewed" changes one row only. */
  function countReviews() {
    var box = $('#review-count');
    if (!box) { return; }
    var total = 0;
    $$('[data-review-count]', box).forEach(function (out) {
      var kind = out.getAttribute('data-review-count');
      var n = rows().filter(function (row) { return row.getAttribute('data-review') === kind; }).length;
      out.textContent = String(n);
      out.parentNode.hidden = n === 0;
      total += n;
    });
    box.hidden = total === 0;
  }

  function refresh() {
    // A lost-create notice leaves with its key's row (deleted from the notice or from the row).
    if ($('#key-rows')) {
      $$('[data-lost-key]').forEach(function (notice) {
        if (!document.getElementById('key-' + notice.getAttribute('data-lost-key'))) { notice.remove(); }
      });
    }
    var count = $('#key-count');
    if (!count) { return; }
    var n = rows().length;
    count.textContent = String(n);
    ['#keys-wrap', '#key-filter'].forEach(function (sel) { var el = $(sel); if (el) { el.hidden = n === 0; } });
    var empty = $('#keys-empty');
    if (empty) { empty.hidden = n > 0; }
    countReviews();
    applyFilter();
  }

  /* --- Create: live name checks against the names already in the table (no request) --- */

  function checkName(form, submitting) {
    var input = form.elements.name;
    var out = $('#name-check', form);
    var value = input.value;
    var table = $('#key-table');
    var max = parseInt(input.getAttribute('maxlength'), 10) || 64;
    var limit = table ? parseInt(table.getAttribute('data-max-keys'), 10) : 0;
    var problem = '';
    if (!value) {
      problem = submitting ? text(form, 'required') : '';
    } else if (value.length > max) {
      problem = text(form, 'long');
    } else if (input.validity.patternMismatch) {
      // The rule is the input's own pattern attribute, rendered from the server's.
      var allowed = new RegExp('^(?:' + input.getAttribute('pattern') + ')$');
      var bad = [];
      Array.from(value).forEach(function (c) {
        var shown = c === ' ' ? text(form, 'space') : c;
        if (!allowed.test(c) && bad.indexOf(shown) < 0) { bad.push(shown); }
      });
      problem = text(form, 'chars') + ' \u201c' + bad.join('\u201d, \u201c') + '\u201d';
    } else if (rows().some(function (row) { return row.getAttribute('data-name') === value; })) {
      problem = text(form, 'taken');
    } else if (limit && $('#key-rows') && rows().length >= limit) {
      problem = text(form, 'limit');
    }
    var message = problem || (value ? text(form, 'ok') : '');
    if (out && out.textContent !== message) { out.textContent = message; }
    if (out) { out.className = 'check' + (problem ? ' is-bad' : (value ? ' is-ok' : '')); }
    if (problem) { input.setAttribute('aria-invalid', 'true'); } else if (value) { input.removeAttribute('aria-invalid'); }
    return !problem;
  }

  document.addEventListener('input', function (event) {
    var form = event.target.form;
    if (event.target.name === 'name' && form && form.hasAttribute('data-name-check')) {
      checkName(form, false);
    } else if (form && form.id === 'key-filter') {
      applyFilter();
    } else if (event.target.name === 'new_name') {
      event.target.setAttribute('data-edited', '');
    }
  });
  document.addEventListener('change', function (event) {
    if (event.target.form && event.target.form.id === 'key-filter') { applyFilter(); }
  });

  /* Rotate: the proposed successor name was free when the row was rendered; a key added since
     (a create, another rotation) may have taken it, so move it on as the server would. */
  function nextName(name) {
    var found = /^(.*\D)-(\d{1,6})$/.exec(name);
    var stem = found ? found[1] : name;
    var number = found ? parseInt(found[2], 10) : 1;
    var suffix = '-' + (number + 1);
    return stem.slice(0, 64 - suffix.length) + suffix;
  }

  /* A rotate form fetched into a row proposes a name free among the rows shown now: a key made
     since the list came may have taken the one its link carried. */
  function freeSuggestedNames() {
    $$('input[data-suggested]').forEach(function (input) {
      input.removeAttribute('data-suggested');
      if (input.hasAttribute('data-edited') || !input.value) { return; }
      var taken = rows().map(function (row) { return row.getAttribute('data-name'); });
      var value = input.value;
      while (taken.indexOf(value) >= 0) { value = nextName(value); }
      input.value = value;
    });
  }
  document.addEventListener('htmx:afterSwap', freeSuggestedNames);

  /* A row's fetched form (Edit note, Rotate): Cancel or Escape closes it and gives the focus back
     to the button that opened it. */
  function closeRowForm(form) {
    var row = form.closest('tr');
    var opener = row && $('[data-opens-form="' + form.getAttribute('data-row-form') + '"]', row);
    form.remove();
    if (opener) {
      opener.hidden = false;
      opener.focus();
    }
  }
  document.addEventListener('click', function (event) {
    var cancel = event.target.closest && event.target.closest('[data-cancel-form]');
    if (cancel && cancel.form) { closeRowForm(cancel.form); }
  });
  document.addEventListener('keydown', function (event) {
    if (event.key !== 'Escape') { return; }
    var form = event.target.closest && event.target.closest('form[data-row-form]');
    if (!form) { return; }
    event.preventDefault();
    closeRowForm(form);
  });

  /* htmx asks before every request: stop a create whose name we already know is refused. */
  document.addEventListener('htmx:confirm', function (event) {
    var form = event.detail.elt;
    if (form.hasAttribute && form.hasAttribute('data-name-check') && !checkName(form, true)) {
      event.preventDefault();
      form.elements.name.focus();
    }
  });

  /* --- Delete: our own <dialog>; the row's form has hx-trigger="confirmed" --- */

  var pendingDelete = null;

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.id === 'key-filter') {
      event.preventDefault();
      applyFilter();
      return;
    }
    var dialog = $('#delete-dialog');
    // Without htmx or <dialog>, the form posts and the server asks on a confirmation page.
    if (!form.hasAttribute('data-confirm-delete') || !window.htmx || !dialog || !dialog.showModal) { return; }
    event.preventDefault();
    pendingDelete = form;
    $('[data-dialog-key-name]', dialog).textContent = form.getAttribute('data-key-name');
    dialog.returnValue = '';
    dialog.showModal();
  });

  document.addEventListener('close', function (event) {
    if (event.target.id !== 'delete-dialog') { return; }
    // "close" is queued as a task: after Escape and a quick reopen, the first close arrives while
    // the dialog is open again and must not take the new pending delete with it.
    if (event.target.open) { return; }
    var form = pendingDelete;
    pendingDelete = null;
    if (form && event.target.returnValue === 'delete' && document.body.contains(form)) {
      window.htmx.trigger(form, 'confirmed');
    }
  }, true);

  /* A key row that arrives out of band (after a create) replaces one already shown for that key. */
  document.addEventListener('htmx:oobBeforeSwap', function (event) {
    var fragment = event.detail.fragment;
    if (!fragment || !fragment.querySelectorAll) { return; }
    $$('tr.key-row[id]', fragment).forEach(function (row) {
      var shown = document.getElementById(row.id);
      if (shown) { shown.remove(); }
    });
  });

  /* --- Focus after swaps: where the server marked it, else the next row after a row left --- */

  var leaving = null;

  document.addEventListener('htmx:beforeSwap', function (event) {
    var target = event.detail.target;
    leaving = null;
    if (target && target.matches && target.matches('tr.key-row')) {
      var next = target.nextElementSibling;
      while (next && next.hidden) { next = next.nextElementSibling; }
      if (!next) {
        next = target.previousElementSibling;
        while (next && next.hidden) { next = next.previousElementSibling; }
      }
      leaving = { id: target.id, next: next && next.id };
    }
  });

  document.addEventListener('htmx:afterRequest', function () {
    refresh();
    var gone = leaving;
    leaving = null;
    if (focusMarked() || !gone || document.getElementById(gone.id)) { return; }
    var next = gone.next && document.getElementById(gone.next);
    var target = (next && $('a, button', next)) || $('#keys-heading');
    if (target) { target.focus(); }
  });

  document.addEventListener('htmx:sendError', function () {
    notify(text($('#notices'), 'offline'), 'error');
  });
  document.addEventListener('htmx:responseError', function () {
    notify(text($('#notices'), 'failed'), 'error');
  });

  /* --- Copy buttons and the secret panel --- */

  function selectContents(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copy(value) {
    if (!navigator.clipboard || !window.isSecureContext) {
      return Promise.reject(new Error('clipboard unavailable'));
    }
    return navigator.clipboard.writeText(value);
  }

  function copied(button) {
    announce(text($('#live'), 'copied'));
    button.classList.add('is-copied');
    window.setTimeout(function () { button.classList.remove('is-copied'); }, 2000);
  }

  function removeSecret(panel) {
    var note = document.createElement('p');
    note.className = 'hint';
    note.textContent = text($('#live'), 'removed');
    panel.replaceWith(note);
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button, a');
    if (!button) { return; }

    if (button.hasAttribute('data-copy')) {
      copy(button.getAttribute('data-copy')).then(function () { copied(button); }, function () {
        var code = $('code', button.parentNode);
        if (code) {
          code.classList.add('is-full');
          selectContents(code);
        }
        announce(text($('#live'), 'copy-failed'));
      });
    } else if (button.hasAttribute('data-copy-secret')) {
      var value = document.getElementById(button.getAttribute('data-copy-secret'));
      var panel = button.closest('[data-secret-panel]');
      if (!value || !panel) { return; }
      copy(value.textContent.trim()).then(function () { copied(button); }, function () {
        // Clipboard refused (permission, insecure context): show, select, and say what to press.
        $('details', panel).open = true;
        selectContents(value);
        $('[data-copy-fallback]', panel).hidden = false;
        announce(text($('#live'), 'copy-failed'));
      });
    } else if (button.hasAttribute('data-dismiss-secret')) {
      var stored = button.closest('[data-secret-panel]');
      if (stored) { stored.remove(); }
      announce(text($('#live'), 'removed'));
      var next = $('#id_name') || $('#main');
      if (next) { next.focus(); }
    } else if (button.hasAttribute('data-dismiss-notice')) {
      button.closest('.notice').remove();
    } else if (button.hasAttribute('data-clear-filter')) {
      var filter = $('#key-filter');
      if (!filter) { return; }
      event.preventDefault();
      filter.elements.q.value = '';
      filter.elements.status.value = '';
      if (filter.elements.review) { filter.elements.review.value = ''; }
      applyFilter();
      filter.elements.q.focus();
    }
  });

  /* --- Snippets in the secret panel (templates/keyadmin/secret-snippets.html) ---
     The server renders each snippet with an empty [data-secret-slot]; the secret is read here from
     the panel's one .secret-value, so it still comes in exactly one place of one response. Slots
     are filled only while the secret is shown; copy and download build their text from a detached
     copy. Everything lives inside the panel, so the panel's removal (above and below) takes it all. */

  var SLOT_ENCODINGS = {
    raw: function (secret) { return secret; },
    // The inside of a JSON (and JavaScript) string literal written between double quotes.
    js: function (secret) { return JSON.stringify(secret).slice(1, -1); },
    // The same, inside a shell argument written between single quotes.
    'shell-json': function (secret) { return JSON.stringify(secret).slice(1, -1).replace(/'/g, "'\\''"); }
  };

  function panelSecret(panel) {
    var value = $('.secret-value', panel);
    return value ? value.textContent.trim() : '';
  }

  function fillSlots(root, secret) {
    $$('[data-secret-slot]', root).forEach(function (slot) {
      var encode = SLOT_ENCODINGS[slot.getAttribute('data-secret-slot')];
      slot.textContent = secret && encode ? encode(secret) : '';
    });
  }

  function snippetText(code, secret) {
    var filled = code.cloneNode(true);
    $$('.snippet-mask', filled).forEach(function (mask) { mask.remove(); });
    fillSlots(filled, secret);
    return filled.textContent;
  }

  function showSnippets(panel, shown) {
    fillSlots(panel, shown ? panelSecret(panel) : '');
    $$('[data-snippet]', panel).forEach(function (code) { code.classList.toggle('is-filled', shown); });
  }

  function downloadEnv(button, panel) {
    var code = document.getElementById(button.getAttribute('data-download-env'));
    var secret = panelSecret(panel);
    if (!code || !secret) { return; }
    var url = URL.createObjectURL(new Blob([snippetText(code, secret) + '\n'], { type: 'text/plain' }));
    var link = document.createElement('a');
    link.href = url;
    link.download = button.getAttribute('data-filename') || '.env';
    link.hidden = true;
    panel.appendChild(link);
    try {
      link.click();
    } finally {
      // The click has taken its own hold of the blob: the URL can go at once, never to be reused.
      link.remove();
      URL.revokeObjectURL(url);
    }
    announce(text(button.closest('[data-secret-snippets]'), 'downloaded'));
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('button');
    var panel = button && button.closest('[data-secret-panel]');
    if (!panel) { return; }
    if (button.hasAttribute('data-copy-snippet')) {
      var code = document.getElementById(button.getAttribute('data-copy-snippet'));
      var secret = panelSecret(panel);
      if (!code || !secret) { return; }
      copy(snippetText(code, secret)).then(function () { copied(button); }, function () {
        // As for the secret itself: show it (here, in the snippet too), select, say what to press.
        $('.secret-reveal', panel).open = true;
        showSnippets(panel, true);
        selectContents(code);
        $('[data-copy-fallback]', panel).hidden = false;
        announce(text($('#live'), 'copy-failed'));
      });
    } else if (button.hasAttribute('data-download-env')) {
      downloadEnv(button, panel);
    }
  });

  /* "Show secret" shows it in the snippets as well; "Hide secret" empties them again. */
  document.addEventListener('toggle', function (event) {
    var details = event.target;
    if (!details.matches || !details.matches('.secret-reveal')) { return; }
    var panel = details.closest('[data-secret-panel]');
    if (panel) { showSnippets(panel, details.open); }
  }, true);

  /* --- Bulk actions and the lock-down: the selection, its count, progress, changed rows --- */

  function selectBoxes() { return $$('#key-rows > tr.key-row input[data-select-key]'); }

  function showSelection() {
    var boxes = selectBoxes();
    var shown = boxes.filter(function (box) { return !box.closest('tr').hidden; });
    var picked = boxes.filter(function (box) { return box.checked; }).length;
    var all = $('[data-select-all]');
    if (all) {
      var shownPicked = shown.filter(function (box) { return box.checked; }).length;
      all.checked = shown.length > 0 && shownPicked === shown.length;
      all.indeterminate = shownPicked > 0 && shownPicked < shown.length;
    }
    var counter = $('[data-bulk-count]');
    if (counter) {
      var message = picked === 0 ? text(counter, 'none') :
        picked === 1 ? text(counter, 'one') : text(counter, 'many').replace('{count}', String(picked));
      if (counter.textContent !== message) { counter.textContent = message; }
    }
    var toolbar = $('#bulk-form');
    if (toolbar && $('#key-rows')) { toolbar.hidden = rows().length === 0; }
  }

  /* A row the filter hides leaves the selection: an action never touches a key not shown. */
  function dropHidden() {
    selectBoxes().forEach(function (box) { if (box.closest('tr').hidden) { box.checked = false; } });
    showSelection();
  }

  document.addEventListener('change', function (event) {
    var box = event.target;
    if (box.hasAttribute && box.hasAttribute('data-select-all')) {
      // "Select all shown": the rows the filter shows, never the hidden ones.
      selectBoxes().forEach(function (each) { each.checked = box.checked && !each.closest('tr').hidden; });
      showSelection();
    } else if (box.hasAttribute && box.hasAttribute('data-select-key')) {
      showSelection();
    } else if (box.form && box.form.id === 'key-filter') {
      dropHidden();
    }
  });
  document.addEventListener('input', function (event) {
    if (event.target.form && event.target.form.id === 'key-filter') { dropHidden(); }
  });

  /* While a batch works (one request per key, up to its deadline), say so in its live region. */
  document.addEventListener('htmx:beforeRequest', function (event) {
    var form = event.detail.elt;
    if (!form.hasAttribute || !form.hasAttribute('data-batch-form')) { return; }
    var live = $('[data-batch-progress]', form.parentNode);
    if (live) { live.textContent = text(form, 'working'); }
  });

  /* The rows a bulk action changed take the place of the shown ones; rows of keys now gone leave. */
  document.addEventListener('htmx:afterSwap', function () {
    var panel = $('#bulk-panel[data-batch-done]');
    if (!panel) { return; }
    panel.removeAttribute('data-batch-done');
    var changed = $('template[data-batch-rows]', panel);
    if (changed) {
      $$('tr.key-row[id]', changed.content).forEach(function (fresh) {
        var shown = document.getElementById(fresh.id);
        if (!shown) { return; }
        var row = document.importNode(fresh, true);
        row.hidden = shown.hidden;
        shown.replaceWith(row);
        if (window.htmx) { window.htmx.process(row); }
      });
      changed.remove();
    }
    (panel.getAttribute('data-gone-ids') || '').split(' ').forEach(function (id) {
      var gone = id && document.getElementById('key-' + id);
      if (gone) { gone.remove(); }
    });
  });

  document.addEventListener('htmx:afterRequest', showSelection);

  document.addEventListener('click', function (event) {
    var close = event.target.closest('[data-bulk-close]');
    var panel = close && close.closest('#bulk-panel');
    if (!panel || !$('#key-table')) { return; }
    event.preventDefault();
    var empty = document.createElement('div');
    empty.id = 'bulk-panel';
    panel.replaceWith(empty);
    var back = $('#bulk-form button');
    if (back) { back.focus(); }
  });

  /* The secret must not outlive the page: not in the back/forward cache, not on return. */
  window.addEventListener('pagehide', function () { $$('[data-secret-panel]').forEach(removeSecret); });
  window.addEventListener('pageshow', function (event) {
    if (event.persisted) { $$('[data-secret-panel]').forEach(removeSecret); }
  });

  refresh();
  showSelection();
  focusMarked();
}());
