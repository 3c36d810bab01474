// qtask ui: live pool counts, sortable tables, task actions, the API token. Values are
// always put in the page as text (textContent), never as markup.
(function () {
  'use strict';
  var body = document.body;
  var TOKEN_KEY = 'qtask-ui-token';

  function token() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; } }

  // The token box: shown when the server wants a token for actions.
  function setupToken() {
    var form = document.getElementById('token-form');
    if (!form || body.dataset.token !== '1' || body.dataset.readOnly === '1') { return; }
    form.hidden = false;
    var input = document.getElementById('token-input');
    if (token()) { form.classList.add('set'); input.placeholder = 'token set'; }
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      try { sessionStorage.setItem(TOKEN_KEY, input.value.trim()); } catch (e) { /* private mode */ }
      input.value = '';
      input.placeholder = 'token set';
      form.classList.add('set');
    });
  }

  function fmtCount(n) { return Number(n || 0).toLocaleString('en-US'); }

  function fmtAge(s) {
    if (s < 10) { return s.toFixed(2) + ' s'; }
    if (s < 60) { return s.toFixed(1) + ' s'; }
    if (s < 3600) { var t = Math.round(s); return Math.floor(t / 60) + 'm ' + String(t % 60).padStart(2, '0') + 's'; }
    var m = Math.round(s / 60); return Math.floor(m / 60) + 'h ' + String(m % 60).padStart(2, '0') + 'm';
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  var SVG = 'http://www.w3.org/2000/svg';
  var STATUSES = ['waiting', 'running', 'part_done', 'done', 'failed'];

  function poolRow(p) {
    var href = '/pools/' + encodeURIComponent(p.pool);
    var tr = el('tr');
    tr.dataset.pool = p.pool;
    var name = el('td', 'name');
    var a = el('a', 'pool-link', p.pool);
    a.href = href;
    name.appendChild(a);
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'share');
    svg.setAttribute('width', '100%');
    svg.setAttribute('height', '8');
    var total = Math.max(p.total, 1), x = 0;
    STATUSES.forEach(function (s) {
      var w = (p.counts[s] || 0) * 100 / total;
      if (w > 0) {
        var r = document.createElementNS(SVG, 'rect');
        r.setAttribute('class', 's-' + s);
        r.setAttribute('x', x.toFixed(3) + '%');
        r.setAttribute('width', w.toFixed(3) + '%');
        r.setAttribute('height', '8');
        svg.appendChild(r);
      }
      x += w;
    });
    name.appendChild(svg);
    tr.appendChild(name);
    STATUSES.forEach(function (s) {
      var n = p.counts[s] || 0;
      var td = el('td', 'num' + (s === 'failed' && n > 0 ? ' bad' : (n === 0 ? ' zero' : '')));
      td.dataset.status = s;
      var l = el('a', '', fmtCount(n));
      l.href = href + '?status=' + s;
      td.appendChild(l);
      tr.appendChild(td);
    });
    tr.appendChild(el('td', 'num', fmtCount(p.total)));
    var rate = el('td', 'num', p.done_per_minute === null ? '–' : p.done_per_minute.toFixed(1));
    rate.dataset.field = 'rate';
    if (p.rate_seconds !== null) { rate.title = 'over the last ' + fmtAge(p.rate_seconds); }
    tr.appendChild(rate);
    var old = el('td', 'num');
    old.dataset.field = 'oldest';
    if (p.oldest_waiting) {
      var o = el('a', '', fmtAge(p.oldest_waiting.age_seconds));
      o.href = href + '/tasks/' + encodeURIComponent(p.oldest_waiting._id);
      o.title = 'task ' + p.oldest_waiting._id;
      old.appendChild(o);
    } else { old.textContent = '–'; }
    tr.appendChild(old);
    var exp = el('td', 'num ' + (p.expired_leases > 0 ? 'warn' : 'zero'), fmtCount(p.expired_leases));
    exp.dataset.field = 'expired';
    tr.appendChild(exp);
    return tr;
  }

  // The overview refreshes itself from /api/pools; a store that went away shows a banner
  // until it answers again.
  function setupLive() {
    var table = document.getElementById('pools-table');
    if (!table) { return; }
    var banner = document.getElementById('unreachable');
    var updated = document.getElementById('updated');
    function tick() {
      fetch(table.dataset.live, { headers: { 'Accept': 'application/json' }, cache: 'no-store' })
        .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (res) {
          if (!res.ok) { throw new Error(res.body.error || 'the server answered with an error'); }
          var tbody = table.tBodies[0];
          var rows = res.body.map(poolRow);
          tbody.replaceChildren.apply(tbody, rows);
          var none = document.getElementById('no-pools');
          if (none) { none.hidden = rows.length > 0; }
          banner.hidden = true;
          if (updated) { updated.textContent = new Date().toISOString().substring(11, 19); }
        })
        .catch(function (e) {
          banner.textContent = String(e.message || e) + ' (retrying)';
          banner.hidden = false;
        })
        .then(function () { setTimeout(tick, 3000); });
    }
    setTimeout(tick, 3000);
  }

  // Client-side sorting of tables marked "sortable" (cells may carry data-v).
  function setupSort() {
    document.querySelectorAll('table.sortable').forEach(function (table) {
      var heads = table.tHead ? table.tHead.rows[table.tHead.rows.length - 1].cells : [];
      Array.prototype.forEach.call(heads, function (th, col) {
        th.addEventListener('click', function () {
          var dir = th.dataset.dir === 'asc' ? 'desc' : 'asc';
          Array.prototype.forEach.call(heads, function (h) { delete h.dataset.dir; });
          th.dataset.dir = dir;
          var tbody = table.tBodies[0];
          var rows = Array.prototype.slice.call(tbody.rows);
          function key(r) {
            var c = r.cells[col];
            var v = c.dataset.v !== undefined ? c.dataset.v : c.textContent.trim();
            var n = parseFloat(v);
            return (v !== '' && !isNaN(n) && isFinite(v)) ? n : v.toLowerCase();
          }
          rows.sort(function (a, b) {
            var x = key(a), y = key(b);
            var empty = (x === '') - (y === '');
            if (empty) { return empty; }
            var c = (typeof x === typeof y) ? (x < y ? -1 : x > y ? 1 : 0) : (typeof x === 'number' ? -1 : 1);
            return dir === 'asc' ? c : -c;
          });
          rows.forEach(function (r) { tbody.appendChild(r); });
        });
      });
    });
  }

  // Task actions: POST with the token; the page reloads to show the task as it is now.
  function setupActions() {
    var out = document.getElementById('action-result');
    document.querySelectorAll('button[data-action]').forEach(function (b) {
      b.addEventListener('click', function () {
        var url = b.dataset.action;
        var payload = '';
        if (b.dataset.body === 'priority') {
          var v = document.getElementById('prio-value').value.trim();
          payload = JSON.stringify({ priority: v === '' ? null : Number(v) });
        }
        if (b.id === 'act-remove' && !window.confirm('Remove this task from the pool?')) { return; }
        var headers = { 'Content-Type': 'application/json', 'Accept': 'application/json' };
        if (token()) { headers['Authorization'] = 'Bearer ' + token(); }
        out.className = 'meta';
        out.textContent = 'working…';
        fetch(url, { method: 'POST', headers: headers, body: payload, credentials: 'same-origin' })
          .then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); })
          .then(function (res) {
            if (res.status === 200) {
              out.className = 'ok';
              if (b.id === 'act-remove') {
                out.textContent = 'removed';
                window.location.href = window.location.pathname.replace(/\/tasks\/[^/]*$/, '');
              } else {
                out.textContent = 'done: the task is ' + res.body.status;
                window.location.reload();
              }
              return;
            }
            out.className = 'bad';
            out.textContent = res.body.error || ('error ' + res.status);
            if (res.status === 401) {
              var input = document.getElementById('token-input');
              if (input) { input.focus(); }
            }
          })
          .catch(function (e) { out.className = 'bad'; out.textContent = String(e); });
      });
    });
  }

  // An "unreachable" page tries again by itself.
  function setupRetry() {
    var r = document.getElementById('retrying');
    if (r) { setTimeout(function () { window.location.reload(); }, Number(r.dataset.retry || 5) * 1000); }
  }

  setupToken();
  setupLive();
  setupSort();
  setupActions();
  setupRetry();
}());
