// tipoff dashboard: draws the matrix the server sends over server-sent events, opens
// drill-downs and the backfill dialog. Hand-written, no framework (docs/dashboard.md).
"use strict";

const STATES = {
  Pending:   { sym: "…", label: "Pending: waiting for an earlier phase" },
  Running:   { sym: "▶", label: "Running" },
  Succeeded: { sym: "✓", label: "Succeeded" },
  Failed:    { sym: "✗", label: "Failed" },
  Blocked:   { sym: "■", label: "Blocked: needs a change or an override" },
  Skipped:   { sym: "–", label: "Skipped: not part of the run" },
  Drifted:   { sym: "≠", label: "Drifted: the wrong code ran" },
  Late:      { sym: "!", label: "Late: not finished by the expected time" },
  NoRun:     { sym: "∅", label: "No run: a game day without a PipelineRun" },
  NoGames:   { sym: "·", label: "No games that day" },
  Unlisted:  { sym: "?", label: "Not in a game-day list" },
};
const FLAGS = {
  retried: { sym: "↻", label: "took more than one attempt (mixed)" },
  late:    { sym: "◔", label: "finished late, or blocked past the expected time" },
  drift:   { sym: "≠", label: "drift found" },
};

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const state = { scrolled: false, data: null, view: "season", page: null, focus: null, anchor: null, selection: null };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function legend() {
  const parts = Object.entries(STATES).map(([k, v]) =>
    `<span class="item"><span class="swatch" data-state="${k}" style="background:var(--${k.toLowerCase()})">${v.sym}</span>${esc(v.label)}</span>`);
  parts.push(...Object.values(FLAGS).map((f) => `<span class="item"><span class="swatch">${f.sym}</span>${esc(f.label)}</span>`));
  parts.push(`<span class="item"><span class="swatch" style="color:#6a1b9a">B</span>run created by a backfill</span>`);
  $("legend").innerHTML = parts.join("");
}

function months(dates) {
  return [...new Set(dates.map((d) => d.date.slice(0, 7)))];
}

function visibleDates() {
  const all = state.data ? state.data.matrix.dates : [];
  if (state.view !== "month") return all;
  const ms = months(all);
  if (!ms.length) return [];
  if (state.page === null || !ms.includes(state.page)) state.page = ms[ms.length - 1];
  return all.filter((d) => d.date.startsWith(state.page));
}

function inSelection(date) {
  const s = state.selection;
  return s && date >= s.from && date <= s.to;
}

function render() {
  const t0 = performance.now();
  const m = state.data.matrix;
  $("namespace").textContent = `namespace ${m.namespace}`;
  $("errors").textContent = state.data.errors.join("\n");
  const dates = visibleDates();
  const rows = [{ key: 0, name: "Run" }, ...m.phases.map((p) => ({ key: p.number, name: `${p.number} ${p.name}` }))];
  const head = dates.map((d, i) => {
    const day = d.date.slice(8);
    const showMonth = i === 0 || day === "01";
    const bf = d.run && d.run.backfill ? `<span class="bf" aria-label="created by a backfill">B</span>` : "";
    return `<th class="date${inSelection(d.date) ? " selected" : ""}" scope="col" data-date="${d.date}">` +
      `<button type="button" data-date="${d.date}" aria-label="${d.date}${d.run ? ", run " + esc(d.run.name) : ""}${bf ? ", backfill" : ""}">` +
      `${showMonth ? `<span class="month">${MONTHS[Number(d.date.slice(5, 7)) - 1]}</span>` : ""}${day}${bf}</button></th>`;
  }).join("");
  const body = rows.map((r) => {
    const cells = dates.map((d, ci) => {
      const c = d.cells[r.key];
      const st = STATES[c.state] || { sym: "?", label: c.state };
      const flags = (c.flags || []).map((f) => FLAGS[f] ? FLAGS[f].sym : f).join("");
      const flagLabel = (c.flags || []).map((f) => FLAGS[f] ? FLAGS[f].label : f).join(", ");
      const label = `${c.note}. ${st.label}${flagLabel ? "; " + flagLabel : ""}`;
      return `<td role="gridcell" tabindex="-1" data-date="${d.date}" data-row="${r.key}" data-col="${ci}" data-state="${c.state}"` +
        ` data-flags="${(c.flags || []).join(" ")}" title="${esc(label)}" aria-label="${esc(label)}">` +
        `<span class="sym" aria-hidden="true">${st.sym}</span>${flags ? `<span class="flags" aria-hidden="true">${flags}</span>` : ""}</td>`;
    }).join("");
    return `<tr><th class="row" scope="row">${esc(r.name)}</th>${cells}</tr>`;
  }).join("");
  $("matrix").innerHTML = `<thead><tr><th class="row" scope="col">Date</th>${head}</tr></thead><tbody>${body}</tbody>`;
  const gd = m.gameDays;
  $("gamedays-note").textContent = gd.listed ? `Game days listed through ${gd.through}.` : (gd.message || "");
  const ms = months(m.dates);
  $("page-label").textContent = state.view === "month" ? (state.page || "") : (m.dates.length ? `${m.dates[0].date} – ${m.dates[m.dates.length - 1].date}` : "no dates yet");
  $("prev").disabled = state.view !== "month" || ms.indexOf(state.page) <= 0;
  $("next").disabled = state.view !== "month" || ms.indexOf(state.page) >= ms.length - 1;
  // Roving tabindex: one cell in the tab order, the focused one (or the first).
  const f = state.focus && $("matrix").querySelector(`td[data-date="${state.focus.date}"][data-row="${state.focus.row}"]`);
  const target = f || $("matrix").querySelector("td");
  if (target) {
    target.tabIndex = 0;
    if (f && document.activeElement === document.body && state.hadFocus) target.focus();
  }
  // The newest dates are what on-call looks at first.
  if (!state.scrolled && dates.length) {
    $("scroll").scrollLeft = $("scroll").scrollWidth;
    state.scrolled = true;
  }
  const ms2 = performance.now() - t0;
  window.tipoffRender = { ms: ms2, dates: dates.length, cells: dates.length * rows.length };
  $("render-ms").textContent = `${dates.length} dates rendered in ${ms2.toFixed(1)} ms`;
}

function moveFocus(td, dr, dc, toEdge) {
  const rows = [...$("matrix").querySelectorAll("tbody tr")];
  const r = Number(td.dataset.row), c = Number(td.dataset.col);
  const ncols = rows[0].querySelectorAll("td").length;
  let nr = Math.min(Math.max(r + dr, 0), rows.length - 1);
  let nc = toEdge === "start" ? 0 : toEdge === "end" ? ncols - 1 : Math.min(Math.max(c + dc, 0), ncols - 1);
  const next = rows[nr].querySelectorAll("td")[nc];
  if (!next) return;
  td.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
  state.focus = { date: next.dataset.date, row: next.dataset.row };
}

function column(date) {
  return state.data.matrix.dates.find((d) => d.date === date);
}

function showDetail(html) {
  $("detail-body").innerHTML = html;
  $("detail").hidden = false;
  $("detail").scrollIntoView({ block: "nearest" });
}

async function openCell(td) {
  const d = column(td.dataset.date);
  const row = Number(td.dataset.row);
  state.focus = { date: d.date, row: String(row) };
  if (!d.run) {
    const what = STATES[d.cells[0].state].label;
    showDetail(`<h2 id="detail-title">${d.date}</h2><p class="state">${esc(what)}</p>` +
      (d.day === "game" ? `<p>Start it: <code>tipoff run ${d.date} --release FILE</code>, or select the dates and create a backfill.</p>` : ""));
    return;
  }
  showDetail(`<h2 id="detail-title">${esc(d.run.name)}</h2><p>Loading…</p>`);
  const res = await fetch(`/api/run/${encodeURIComponent(d.run.name)}`);
  const body = await res.json();
  if (!res.ok) {
    showDetail(`<h2 id="detail-title">${esc(d.run.name)}</h2><p class="error">${esc(body.error)}</p>`);
    return;
  }
  const cmds = body.commands.filter((c) => row === 0 || c.phase === row);
  const phase = row === 0 ? "the run" : `phase ${row}`;
  const events = body.events.map((e) => `<tr><td>${esc(e.time)}</td><td>${esc(e.type)}</td><td>${esc(e.reason)}</td><td>${esc(e.object)}</td><td>${esc(e.message)}</td></tr>`).join("");
  showDetail(`<h2 id="detail-title">${esc(d.run.name)} · ${esc(phase)}</h2>` +
    `<p class="state">${esc(d.cells[row].note)}</p>` +
    (body.createdBy ? `<p>Created by ${esc(body.createdBy)}</p>` : "") +
    `<h3>As <code>tipoff status ${d.date}</code> shows it</h3><pre id="detail-tree">${esc(body.tree)}</pre>` +
    `<h3>Commands (${esc(phase)})</h3><ul id="detail-commands">` +
    cmds.map((c) => `<li><code>${esc(c.logs)}</code><br><code>${esc(c.rerun)}</code></li>`).join("") + `</ul>` +
    `<h3>Last Events</h3>` + (events ? `<table id="detail-events"><tr><th>Time</th><th>Type</th><th>Reason</th><th>Object</th><th>Message</th></tr>${events}</table>` : "<p>No Events.</p>"));
}

function showDate(date) {
  const d = column(date);
  let html = `<h2 id="detail-title">${d.date}</h2>`;
  if (!d.run) {
    html += `<p class="state">${esc(STATES[d.cells[0].state].label)}</p>`;
  } else {
    const r = d.run;
    const rows = Object.entries(r.rowsWritten || {});
    html += `<p class="state">Run ${esc(r.name)} (${esc(r.mode)}): ${esc(r.state)}, ${esc(r.progress)} processors succeeded` +
      `${r.createdBy ? ", created by " + esc(r.createdBy) : ""}${r.retries ? `, ${r.retries} retries` : ""}.</p>` +
      (r.message ? `<p id="date-message">${esc(r.message)}</p>` : "") +
      `<h3>Rows written</h3>` + (rows.length ? `<table id="date-rows">${rows.map(([t, n]) => `<tr><td>${esc(t)}</td><td>${n}</td></tr>`).join("")}</table>` : "<p>None reported yet.</p>") +
      (d.otherRuns && d.otherRuns.length ? `<p>Other runs of the date: ${d.otherRuns.map(esc).join(", ")}</p>` : "");
  }
  showDetail(html);
}

function clickDate(date, extend) {
  if (extend && state.anchor) {
    const [a, b] = [state.anchor, date].sort();
    state.selection = { from: a, to: b };
  } else {
    state.anchor = date;
    state.selection = { from: date, to: date };
  }
  render();
  showDate(date);
}

async function preview() {
  const req = { from: $("bf-from").value.trim(), to: $("bf-to").value.trim(), reprocess: $("bf-reprocess").value };
  $("bf-result").textContent = "";
  $("bf-result").className = "";
  const res = await fetch("/api/backfill/preview", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(req) });
  const body = await res.json();
  if (res.ok) {
    $("bf-yaml").textContent = body.yaml;
    $("bf-confirm").disabled = false;
  } else {
    $("bf-yaml").textContent = "";
    $("bf-confirm").disabled = true;
    $("bf-result").textContent = body.error;
    $("bf-result").className = "error";
  }
}

async function confirmBackfill() {
  const req = { from: $("bf-from").value.trim(), to: $("bf-to").value.trim(), reprocess: $("bf-reprocess").value, confirmed: true };
  $("bf-confirm").disabled = true;
  const res = await fetch("/api/backfill", { method: "POST", headers: { "content-type": "application/json", "x-tipoff-dashboard": "1" }, body: JSON.stringify(req) });
  const body = await res.json();
  $("bf-result").textContent = res.ok ? body.message : body.error;
  $("bf-result").className = res.ok ? "ok" : "error";
  $("bf-confirm").disabled = false;
}

function openBackfill() {
  const s = state.selection;
  $("bf-from").value = s ? s.from : "";
  $("bf-to").value = s ? s.to : "";
  $("bf-result").textContent = "";
  $("bf-yaml").textContent = "";
  $("backfill").showModal();
  if (s) preview();
}

function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("matrix", (ev) => {
    state.hadFocus = document.activeElement && document.activeElement.matches && document.activeElement.matches("#matrix td");
    state.data = JSON.parse(ev.data);
    render();
    $("live").textContent = "live";
    $("live").className = "on";
  });
  es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = ""; };
}

function init() {
  legend();
  $("matrix").addEventListener("click", (ev) => {
    const th = ev.target.closest("button[data-date]");
    if (th) { clickDate(th.dataset.date, ev.shiftKey); return; }
    const td = ev.target.closest("td[data-date]");
    if (td) openCell(td);
  });
  $("matrix").addEventListener("focusin", (ev) => {
    const td = ev.target.closest("td[data-date]");
    if (td) state.focus = { date: td.dataset.date, row: td.dataset.row };
  });
  $("matrix").addEventListener("keydown", (ev) => {
    const td = ev.target.closest("td[data-date]");
    if (!td) return;
    const moves = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] };
    if (moves[ev.key]) { moveFocus(td, ...moves[ev.key]); ev.preventDefault(); }
    else if (ev.key === "Home") { moveFocus(td, 0, 0, "start"); ev.preventDefault(); }
    else if (ev.key === "End") { moveFocus(td, 0, 0, "end"); ev.preventDefault(); }
    else if (ev.key === "Enter" || ev.key === " ") { openCell(td); ev.preventDefault(); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("detail").hidden) {
      $("detail").hidden = true;
      const f = state.focus && $("matrix").querySelector(`td[data-date="${state.focus.date}"][data-row="${state.focus.row}"]`);
      if (f) f.focus();
    }
  });
  $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
  $("view").addEventListener("change", () => { state.view = $("view").value; state.page = null; if (state.data) render(); });
  const page = (delta) => {
    const ms = months(state.data.matrix.dates);
    const i = ms.indexOf(state.page) + delta;
    if (i >= 0 && i < ms.length) { state.page = ms[i]; render(); }
  };
  $("prev").addEventListener("click", () => page(-1));
  $("next").addEventListener("click", () => page(1));
  $("backfill-open").addEventListener("click", openBackfill);
  for (const id of ["bf-from", "bf-to", "bf-reprocess"]) $(id).addEventListener("change", preview);
  $("bf-confirm").addEventListener("click", confirmBackfill);
  $("bf-cancel").addEventListener("click", () => $("backfill").close());
  connect();
}

init();
