// Restore Desk: small enhancements. Every page works without this file.
//  - the request form picks the browser's time zone and checks the request
//    as you type (UTC equivalent, restorable or not, and why);
//  - ticket pages follow the restore's progress live;
//  - deadline countdowns stay current;
//  - text typed into a ticket's boxes is kept in this browser until sent.
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------ request form

  function setupRequestForm(form) {
    var zone = form.querySelector("#time_zone");
    if (zone && zone.hasAttribute("data-browser-zone")) {
      try {
        var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
        var known = Array.prototype.some.call(zone.options, function (o) {
          return o.value === browserZone;
        });
        if (browserZone && known) zone.value = browserZone;
      } catch (e) { /* keep the account's zone */ }
    }

    var url = form.getAttribute("data-preview-url");
    var panel = document.getElementById("preview");
    var offsetField = document.getElementById("offset-field");
    var offset = document.getElementById("utc_offset");
    if (!url || !panel) return;
    var timer = null;
    var seq = 0;

    function params() {
      var data = new FormData(form);
      var query = new URLSearchParams();
      data.forEach(function (value, key) {
        if (key !== "csrf" && key !== "intent" && key !== "description") query.append(key, value);
      });
      return query.toString();
    }

    function showOffsets(offsets) {
      if (!offsetField || !offset) return;
      var chosen = offset.value;
      if (!offsets.length) {
        if (!chosen) offsetField.hidden = true;
        return;
      }
      while (offset.options.length > 1) offset.remove(1);
      offsets.forEach(function (o, i) {
        var option = el("option", "", (i === 0 ? "The first one, at UTC" : "The second one, at UTC") + o);
        option.value = o;
        if (o === chosen) option.selected = true;
        offset.appendChild(option);
      });
      offsetField.hidden = false;
    }

    // What the server said about the last submit is stale once anything changes.
    var stale = true;
    function clearServerErrors() {
      if (!stale) return;
      stale = false;
      form.querySelectorAll(".field-error").forEach(function (n) { n.remove(); });
      form.querySelectorAll(".invalid").forEach(function (n) { n.classList.remove("invalid"); });
      form.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
      var alert = document.querySelector("main > .alert[role=alert]");
      if (alert) alert.remove();
    }

    function moveMarker(p) {
      var section = document.querySelector("[data-timeline-of]");
      if (!section) return;
      var cluster = form.querySelector("#cluster_id");
      var same = cluster && cluster.value === section.getAttribute("data-timeline-of");
      section.hidden = !same;
      var marker = section.querySelector("[data-target-marker]");
      if (!marker) return;
      var m = p.target_marker;
      if (!same || !m) {
        marker.setAttribute("display", "none");
        return;
      }
      var line = marker.querySelector("line");
      var text = marker.querySelector("text");
      line.setAttribute("x1", m.x);
      line.setAttribute("x2", m.x);
      text.setAttribute("x", m.x);
      text.setAttribute("dx", m.anchor_end ? "-5" : "5");
      text.setAttribute("text-anchor", m.anchor_end ? "end" : "start");
      text.textContent = m.label;
      marker.classList.toggle("tl-target-outside", !m.inside);
      marker.removeAttribute("display");
    }

    // The warning about open requests follows the cluster chosen.
    function showDuplicates(p) {
      var box = document.getElementById("duplicate-warning");
      if (!box) return;
      var open = p.duplicates || [];
      box.hidden = open.length === 0;
      if (!open.length) return;
      box.querySelector("[data-duplicates-text]").textContent = p.duplicates_text || "";
      var list = box.querySelector("[data-duplicates]");
      list.textContent = "";
      open.forEach(function (d) {
        var item = el("li");
        var link = el("a", "", d.reference);
        link.href = "/tickets/" + d.id;
        item.appendChild(link);
        item.appendChild(document.createTextNode(": restore into "));
        item.appendChild(el("span", "mono", d.new_cluster_name));
        item.appendChild(document.createTextNode(" \u00b7 " + d.state));
        list.appendChild(item);
      });
    }

    function render(p) {
      moveMarker(p);
      showDuplicates(p);
      panel.textContent = "";
      panel.setAttribute("data-state", p.ok ? "ok" : "bad");
      if (p.utc_text) {
        var line = el("p", "utc-line", "In UTC: ");
        var strong = el("strong", "", p.utc_text);
        strong.setAttribute("data-utc", "");
        line.appendChild(strong);
        panel.appendChild(line);
      }
      if (p.local_text) panel.appendChild(el("p", "small muted", p.local_text));
      if (p.window_text) panel.appendChild(el("p", "small", p.window_text));
      if (p.ok) {
        panel.appendChild(el("p", "good", "\u2713 " + (p.plan_text || "This moment can be restored.")));
        if (p.deadline_text) panel.appendChild(el("p", "small muted", p.deadline_text));
      } else if (p.errors && p.errors.length) {
        var list = el("ul", "bad-list");
        p.errors.forEach(function (e) { list.appendChild(el("li", "", e.message)); });
        panel.appendChild(list);
      } else {
        panel.appendChild(el("p", "muted", "Choose a cluster and a moment to check it."));
      }
      showOffsets(p.fold_offsets || []);
    }

    function check() {
      var mine = ++seq;
      fetch(url + "?" + params(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (p && mine === seq) {
            render(p);
            showHappened(p.utc, mine);
          }
        })
        .catch(function () { /* the submit still checks */ });
    }

    var happened = createHappened({
      list: document.getElementById("happened-list"),
      link: document.getElementById("happened-link"),
      cluster: function () { var c = form.querySelector("#cluster_id"); return c ? c.value : ""; },
      date: form.querySelector("#date"),
      time: form.querySelector("#time"),
      zone: form.querySelector("#time_zone"),
      transaction: form.querySelector("#transaction"),
      position: form.querySelector("#position"),
      choice: document.getElementById("transaction-choice"),
      changed: function () { later(); }
    });

    function showHappened(utc, mine) {
      if (utc) happened.show("around=" + encodeURIComponent(utc), function () { return mine === seq; });
    }

    function later() {
      clearServerErrors();
      clearTimeout(timer);
      timer = setTimeout(check, 300);
    }

    form.addEventListener("input", later);
    form.addEventListener("change", later);
    var date = form.querySelector("#date");
    var time = form.querySelector("#time");
    if (date && date.value && time && time.value) check();
  }

  // ------------------------------------------------------------ what happened

  // Microseconds since the epoch, from an RFC 3339 time.
  function micros(text) {
    var fraction = /\.(\d+)/.exec(text);
    var whole = Date.parse(text.replace(/\.\d+/, ""));
    var digits = fraction ? (fraction[1] + "000000").slice(0, 6) : "000000";
    return whole * 1000 + parseInt(digits, 10);
  }

  // The date and time (to the second) of a moment in a zone.
  function fieldsAt(seconds, zoneName) {
    var parts = {};
    new Intl.DateTimeFormat("en-CA", {
      timeZone: zoneName, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23"
    }).formatToParts(new Date(seconds * 1000)).forEach(function (p) { parts[p.type] = p.value; });
    return { date: parts.year + "-" + parts.month + "-" + parts.day,
             time: parts.hour + ":" + parts.minute + ":" + parts.second };
  }

  function summary(t) {
    var parts = [];
    (t.ddl || []).forEach(function (d) {
      var names = d.relations.map(function (r) { return r.name; }).join(", ");
      parts.push(d.kind + (names ? " " + names : ""));
    });
    (t.relations || []).forEach(function (r) {
      var counts = [];
      if (r.inserted) counts.push("+" + r.inserted);
      if (r.updated) counts.push("~" + r.updated);
      if (r.deleted) counts.push("\u2212" + r.deleted);
      parts.push(r.name.replace(/^public\./, "") + " " + counts.join(" "));
    });
    return parts.join(" \u00b7 ");
  }

  // What happened around a form's moment: the transactions nearest it, a
  // DROP, TRUNCATE or large delete marked; "Just before" or "Just after"
  // sets the form's target to that transaction (its time fields follow, to
  // the second). Typing another moment drops the transaction chosen.
  function createHappened(o) {
    function zoneName() { return (o.zone && o.zone.value) || "UTC"; }

    function choose(xid, position) {
      if (!o.transaction || !o.position || !o.choice) return;
      o.transaction.value = xid || "";
      o.position.value = position || "";
      o.choice.hidden = !xid;
      var text = o.choice.querySelector("[data-transaction-text]");
      if (text && xid) text.textContent = "Restoring to just " + position + " transaction " + xid;
    }

    function pick(seconds, xid, position) {
      var at = fieldsAt(seconds, zoneName());
      o.date.value = at.date;
      o.time.value = at.time;
      choose(xid, position);
      if (o.changed) o.changed();
    }

    [o.date, o.time, o.zone].forEach(function (field) {
      if (field) field.addEventListener("input", function (e) { if (e.isTrusted) choose(null); });
    });
    var clear = o.choice && o.choice.querySelector("[data-transaction-clear]");
    if (clear) clear.addEventListener("click", function () { choose(null); if (o.changed) o.changed(); });

    function show(query, current) {
      var cluster = o.cluster();
      if (!o.list || !cluster) return;
      var base = "/clusters/" + encodeURIComponent(cluster) + "/transactions";
      if (o.link && o.link.tagName === "A") o.link.href = base + "?" + query;
      fetch(base + "?" + query + "&before=6&after=6",
            { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (page) {
          if (!page || (current && !current())) return;
          var list = o.list;
          list.textContent = "";
          if (page.zones_offline) {
            list.appendChild(el("p", "small muted", "No zone that holds the log is online right now."));
            return;
          }
          if (!page.transactions.length) {
            list.appendChild(el("p", "small muted", "No transaction committed near this moment."));
            return;
          }
          var clock = new Intl.DateTimeFormat("en-GB", { timeZone: zoneName(), hour: "2-digit",
            minute: "2-digit", second: "2-digit", hourCycle: "h23" });
          var items = el("ol", "happened-list");
          var target = micros(page.around);
          var marked = false;
          page.transactions.forEach(function (t) {
            var at = micros(t.committed_at);
            if (!marked && at >= target) {
              items.appendChild(el("li", "tx-moment", "\u2193 your moment"));
              marked = true;
            }
            var item = el("li", "tx" + (t.destructive ? " tx-destructive" : ""));
            item.setAttribute("data-xid", t.xid);
            var ms = ("00" + Math.floor((at % 1000000) / 1000)).slice(-3);
            item.appendChild(el("span", "mono small", clock.format(new Date(Math.floor(at / 1000))) + "." + ms + " "));
            item.appendChild(el("span", "small", summary(t) + " "));
            var before = el("button", "small tx-before", "Just before");
            before.type = "button";
            before.setAttribute("aria-label", "Restore to just before transaction " + t.xid);
            before.addEventListener("click", function () { pick(Math.floor((at - 1) / 1000000), t.xid, "before"); });
            var after = el("button", "small tx-after", "Just after");
            after.type = "button";
            after.setAttribute("aria-label", "Restore to just after transaction " + t.xid);
            after.addEventListener("click", function () { pick(Math.floor(at / 1000000), t.xid, "after"); });
            item.appendChild(before);
            item.appendChild(after);
            items.appendChild(item);
          });
          if (!marked) items.appendChild(el("li", "tx-moment", "\u2191 your moment"));
          list.appendChild(el("p", "small muted", "Times in " + zoneName() + "."));
          list.appendChild(items);
          // Open at the moment, not at the oldest transaction.
          var moment = items.querySelector(".tx-moment");
          if (moment) items.scrollTop = Math.max(0, moment.offsetTop - items.offsetTop - items.clientHeight / 2);
        })
        .catch(function () { /* the page with links still works */ });
    }

    return { show: show };
  }

  // The form that moves a ticket's target shows what happened around the
  // moment typed, read in the zone chosen.
  function setupTargetForm(form) {
    var timer = null;
    var happened = createHappened({
      list: form.querySelector("[data-happened-list]"),
      link: form.querySelector("[data-happened-link]"),
      cluster: function () { return form.getAttribute("data-cluster") || ""; },
      date: form.querySelector("[name=date]"),
      time: form.querySelector("[name=time]"),
      zone: form.querySelector("[name=time_zone]"),
      transaction: form.querySelector("[name=transaction]"),
      position: form.querySelector("[name=position]"),
      choice: form.querySelector("[data-transaction-choice]"),
      changed: null
    });
    // A slower answer for an earlier moment must not replace a newer one.
    var asked = 0;
    function refresh() {
      var date = form.querySelector("[name=date]").value;
      var time = form.querySelector("[name=time]").value;
      var zone = form.querySelector("[name=time_zone]").value;
      if (!date || !time) return;
      var mine = ++asked;
      happened.show("local_time=" + encodeURIComponent(date + "T" + time) +
                    "&time_zone=" + encodeURIComponent(zone), function () { return mine === asked; });
    }
    form.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(refresh, 300); });
    var details = form.closest("details");
    if (details) details.addEventListener("toggle", function () { if (details.open) refresh(); });
    else refresh();
  }

  // ------------------------------------------------------------ live progress

  function setupProgress(box) {
    var url = box.getAttribute("data-live-progress");
    var shownState = box.getAttribute("data-ticket-state");
    var bar = box.querySelector("[data-bar]");
    var percent = box.querySelector("[data-percent]");
    var step = box.querySelector("[data-step]");
    var detail = box.querySelector("[data-detail]");

    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (p) {
          if (!p) return setTimeout(tick, 5000);
          var expectsBar = !box.hasAttribute("data-no-bar");
          if (p.state !== shownState || (p.job && !bar && expectsBar)) {
            // A new state brings new content (connection details, actions);
            // an ending shows no bar, and reloads only when its state moves.
            window.location.reload();
            return;
          }
          if (p.job && bar) {
            bar.value = p.job.progress;
            bar.textContent = p.job.progress + "%";
            if (percent) percent.textContent = p.job.progress + "%";
            if (step) step.textContent = p.job.step;
            if (detail) detail.textContent = p.job.detail;
            var replayed = box.querySelector("[data-replayed]");
            if (replayed) {
              replayed.hidden = !p.job.replayed;
              replayed.textContent = p.job.replayed || "";
            }
          }
          if (!p.terminal) setTimeout(tick, p.job ? 1500 : 4000);
        })
        .catch(function () { setTimeout(tick, 5000); });
    }
    setTimeout(tick, 1000);
  }

  // ------------------------------------------------------------ countdowns

  function words(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
    var plural = function (n, w) { return n + " " + w + (n === 1 ? "" : "s"); };
    var text = d > 0 ? plural(d, "day") + " " + plural(h, "hour") : h > 0 ? plural(h, "hour") : plural(m, "minute");
    return ms < 0 ? "overdue by " + text : text + " left";
  }

  function refreshCountdowns() {
    document.querySelectorAll("[data-deadline]").forEach(function (node) {
      // From the seconds left when the page was made, by the page's own
      // monotonic clock: a device's wall clock may be off by hours.
      var left = parseInt(node.getAttribute("data-left"), 10) * 1000 - performance.now();
      if (isNaN(left)) left = Date.parse(node.getAttribute("data-deadline")) - Date.now();
      if (isNaN(left)) return;
      var soon = (parseInt(node.getAttribute("data-soon"), 10) || 86400) * 1000;
      node.textContent = words(left);
      node.classList.toggle("overdue", left < 0);
      node.classList.toggle("urgent", left >= 0 && left < soon);
    });
  }

  // ------------------------------------------------------------ drafts

  var DRAFT = "restore-desk:draft:";

  function drafts() {
    try { return window.localStorage || null; } catch (e) { return null; }
  }

  // A reload — a live update when the ticket changes state, a refresh —
  // must not lose a half-written reply: it is kept per page and box until
  // the form is sent.
  function setupDraft(area) {
    var store = drafts();
    if (!store) return;
    var key = DRAFT + location.pathname + ":" + area.id;
    var saved = store.getItem(key);
    if (saved && !area.value) {
      area.value = saved;
      area.insertAdjacentElement("afterend",
        el("p", "muted small draft-note", "Your unsent text is back: it was kept in this browser."));
    }
    area.addEventListener("input", function () {
      if (area.value) store.setItem(key, area.value);
      else store.removeItem(key);
    });
    if (area.form) area.form.addEventListener("submit", function () { store.removeItem(key); });
  }

  // Signing out forgets every draft: the next person at this browser
  // must not read them.
  function forgetDraftsOnSignOut(form) {
    form.addEventListener("submit", function () {
      var store = drafts();
      if (!store) return;
      for (var i = store.length - 1; i >= 0; i--) {
        var key = store.key(i);
        if (key && key.indexOf(DRAFT) === 0) store.removeItem(key);
      }
    });
  }

  // ------------------------------------------------------------ UTC on tap

  // Times read in one zone; a tap (or Enter) shows the same moment in UTC
  // and back, since a phone has no hover for the title.
  function setupUtcToggle(node) {
    var utc = node.getAttribute("title");
    if (!utc || node.closest("a, button, label")) return;
    var local = node.textContent;
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.setAttribute("aria-pressed", "false");
    node.classList.add("utc-toggle");
    function flip(event) {
      if (event) event.preventDefault();
      var showingUtc = node.getAttribute("aria-pressed") === "true";
      node.textContent = showingUtc ? local : utc;
      node.setAttribute("aria-pressed", showingUtc ? "false" : "true");
    }
    node.addEventListener("click", flip);
    node.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") flip(e);
    });
  }

  // A timeline too wide for the screen opens at its recent end: the moment
  // to restore to is usually the latest hours, not five weeks ago.
  function scrollTimelinesToNow() {
    document.querySelectorAll(".tl-scroll").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth) box.scrollLeft = box.scrollWidth;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    scrollTimelinesToNow();
    document.querySelectorAll("time[title]").forEach(setupUtcToggle);
    document.querySelectorAll("textarea[data-draft]").forEach(setupDraft);
    document.querySelectorAll("form[action='/logout']").forEach(forgetDraftsOnSignOut);
    var form = document.getElementById("request-form");
    if (form) setupRequestForm(form);
    var retarget = document.getElementById("target-form");
    if (retarget) setupTargetForm(retarget);
    document.querySelectorAll("[data-live-progress]").forEach(function (box) {
      var state = box.getAttribute("data-ticket-state");
      if (["completed", "rejected", "cancelled"].indexOf(state) === -1) setupProgress(box);
    });
    if (document.querySelector("[data-deadline]")) {
      refreshCountdowns();
      setInterval(refreshCountdowns, 30000);
    }
  });
})();
