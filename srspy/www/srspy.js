/* srspy's pages: what the landing page, the player and the console share. No dependencies. */
(function () {
  'use strict';

  // Build an element: el('td', {class: 'x', onclick: f}, 'text', child, ...).
  function el(tag, attrs) {
    var node = document.createElement(tag);
    var a = attrs || {};
    Object.keys(a).forEach(function (k) {
      var v = a[k];
      if (v === undefined || v === null || v === false) return;
      if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v);
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : v);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === undefined || c === null) continue;
      node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return node;
  }

  // /srspy.json from the server that served this page; null when there is none.
  function info(root) {
    return fetch((root || '') + 'srspy.json', {cache: 'no-store', credentials: 'omit'})
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; });
  }

  // The host name the browser used, bracketed when it is an IPv6 address.
  function host() {
    var h = location.hostname || '127.0.0.1';
    return h.indexOf(':') >= 0 && h[0] !== '[' ? '[' + h + ']' : h;
  }

  function outputUrl(o, app, stream) {
    var path = o.template ? o.template.replace('[app]', app).replace('[stream]', stream) : o.path;
    return o.scheme + '://' + host() + ':' + o.port + path;
  }

  function copy(text, button) {
    function done() {
      if (!button) return;
      var old = button.textContent;
      button.textContent = 'Copied';
      setTimeout(function () { button.textContent = old; }, 1200);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var t = el('textarea', {style: 'position:fixed;left:-1000px;top:0'}, text);
    document.body.appendChild(t);
    t.select();
    try { document.execCommand('copy'); done(); } catch (e) { /* the text stays selectable */ }
    t.remove();
  }

  // A labelled read-only box with a Copy button.
  function copyRow(label, value, extra) {
    var input = value.length > 80 ? el('textarea', {readonly: true, rows: 2, spellcheck: 'false'}, value)
      : el('input', {type: 'text', readonly: true, value: value, spellcheck: 'false'});
    var button = el('button', {type: 'button'}, 'Copy');
    button.addEventListener('click', function () { copy(value, button); });
    return el('div', {class: 'copy-row'}, label ? el('span', {class: 'label'}, label) : null, input, button, extra || null);
  }

  function kbps(v) {
    if (v === undefined || v === null || isNaN(v)) return '-';
    return v >= 10000 ? (v / 1000).toFixed(1) + ' Mbps' : Math.round(v) + ' kbps';
  }

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return (h ? h + ':' + pad(m) : m) + ':' + pad(s % 60);
  }

  // A line chart of one or two series on a small canvas (newest sample on the right).
  function chart(canvas, series, colors) {
    var ratio = window.devicePixelRatio || 1;
    var w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
    var g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    var max = 1;
    series.forEach(function (s) { s.forEach(function (v) { if (v > max) max = v; }); });
    series.forEach(function (s, i) {
      if (s.length < 2) return;
      var n = Math.max(s.length, 30);
      g.beginPath();
      s.forEach(function (v, j) {
        var x = w - (s.length - 1 - j) * (w / (n - 1)), y = h - 2 - (v / max) * (h - 4);
        if (j === 0) g.moveTo(x, y); else g.lineTo(x, y);
      });
      g.strokeStyle = colors[i];
      g.lineWidth = 1.5;
      g.stroke();
    });
  }

  window.srspy = {el: el, info: info, host: host, outputUrl: outputUrl, copy: copy, copyRow: copyRow,
                  kbps: kbps, duration: duration, chart: chart};
})();
