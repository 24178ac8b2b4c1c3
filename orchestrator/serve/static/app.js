// The dashboard page: one EventSource on api/live. A "state" message is the whole picture
// (the same data as `orchestrator status --json`, and the run, the pause, recent events); an
// "events" message is the new lines of state/events.jsonl, applied at once so a task turns
// running or completed without waiting for the next state. Everything shown goes through
// textContent: nothing a task printed can become markup. Clocks (the elapsed time, a running
// task's duration) tick every second from the start times the page has, on the server's clock.
// Cancel, Retry, Approve and Reject post to api/task/ID/cancel|retry|approve|reject with the token
// `serve` printed in the URL; Reject asks why first, and sends the reason. A task whose agent asks
// a person (the state's "asks") shows what it asks, by its id (Q2), and Allow and Deny
// (api/task/ID/allow|deny, with the question's id: a button answers the question it shows).
"use strict";

const ICONS = {
  pending: "🟡", waiting: "⏸️", running: "🔵", retrying: "🔄",
  completed: "✅", failed: "❌", skipped: "⏭️", interrupted: "⏹️", cancelled: "⏹️", blocked: "🚧",
  awaiting_approval: "✋", rejected: "🚫", bypassed: "↪️",
};
const EVENT_STATE = {
  task_started: "running", task_retrying: "retrying", task_completed: "completed",
  task_failed: "failed", task_skipped: "skipped", task_interrupted: "interrupted",
  task_cancelled: "cancelled", task_blocked: "blocked", task_released: "waiting",
  approval_requested: "awaiting_approval", task_rejected: "rejected", task_bypassed: "bypassed",
};
const LIFECYCLE = new Set(["run_started", "run_finished", "run_estimate", ...Object.keys(EVENT_STATE)]);
// Which buttons a task's row has, by its state: each posts to the server's route of its name,
// which does what the CLI command of that name does (serve/app.py's ACTIONS).
const ACTIONS = {
  cancel: { label: "Cancel", states: new Set(["pending", "waiting", "running", "retrying"]) },
  retry: { label: "Retry", states: new Set(["failed", "cancelled", "skipped", "interrupted", "rejected"]) },
  approve: { label: "Approve", states: new Set(["awaiting_approval"]) },
  reject: { label: "Reject", states: new Set(["awaiting_approval"]) },
  allow: { label: "Allow", states: new Set(), asks: true },  // (shown while its agent asks: `answer T-03 Q2 allow`)
  deny: { label: "Deny", states: new Set(), asks: true },
};

function asked(task) {
  return (model?.asks || []).find((question) => question.task === task.id);
}
const WHY_STATES = new Set(["failed", "skipped", "cancelled", "interrupted", "blocked", "awaiting_approval",
  "rejected", "bypassed"]);
const TEXT_KEYS = ["message", "text", "summary", "title", "note", "content", "finding", "reason", "path", "file"];
const FEED_SIZE = 100;
const NOTABLE_SIZE = 200;

let model = null;          // the latest state, with events applied since
let clockOffset = 0;       // server clock minus this browser's, in ms
let planVersion = -1;
let selected = null;       // a task id
let tab = null;            // "log" | "result" | "brief"
let detail = null;         // the selected task's files, as api/task returned them
let detailTimer = null;
let source = null;
const token = keepToken();  // what actions need: from the URL `serve` printed, kept for this tab

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// One moment for everything a pass draws: the run's elapsed time and each running task's are read
// off the same clock reading, so the run never shows less time than a task begun after it (under
// load the table was drawn a tick's worth after the totals).
let moment = null;
function now() { return (moment ?? Date.now()) + clockOffset; }
function atOneMoment(draw) {
  const outer = moment === null;
  if (outer) moment = Date.now();
  try { draw(); } finally { if (outer) moment = null; }
}


function keepToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem("orchestrator-token", given);
    url.searchParams.delete("token");  // out of the address bar (and of screenshots): the tab keeps it
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return given || sessionStorage.getItem("orchestrator-token");
}

function seconds(value) {  // plan/settings.format_duration: the CLI's rule, kept the same
  if (value === null || value === undefined) return "–";
  if (value <= 0) return "0s";
  if (value < 0.005) return "<0.01s";
  if (value < 0.995) return `${value.toFixed(2)}s`;
  if (value < 59.95) return `${value.toFixed(1)}s`;
  const total = Math.round(value), m = Math.floor(total / 60), s = String(total % 60).padStart(2, "0");
  if (m < 60) return `${m}m${s}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m${s}s`;
}

function money(value) { return value === null || value === undefined ? "–" : `$${Number(value).toFixed(4)}`; }
function count(value) { return value === null || value === undefined ? "–" : Number(value).toLocaleString("en"); }
function clock(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  return isNaN(t) ? String(iso) : t.toLocaleTimeString("en-GB", { hour12: false });
}

function duration(task) {
  if ((task.status === "running" || task.status === "retrying") && task.started) {
    const started = Date.parse(task.started);
    if (!isNaN(started)) return Math.max(0, (now() - started) / 1000);
  }
  return task.duration;
}

// --- the stream -------------------------------------------------------------------------------

function connect() {
  source = new EventSource("api/live");
  source.addEventListener("clock", (e) => { clockOffset = Date.parse(JSON.parse(e.data).now) - Date.now() || 0; });
  source.addEventListener("state", (e) => applyState(JSON.parse(e.data)));
  source.addEventListener("events", (e) => applyEvents(JSON.parse(e.data)));
  source.onopen = () => setConnection(true);
  source.onerror = () => {
    setConnection(false);
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);  // refused: try again later
  };
}

function setConnection(live) {
  const pill = $("connection");
  pill.textContent = live ? "live" : "reconnecting…";
  pill.className = `pill ${live ? "on" : "off"}`;
}

function applyState(data) {
  model = data;  // (its `now` is when it was built, maybe long ago: the clock event set the offset)
  if (data.plan_version !== planVersion) loadGraph(data.plan_version);
  render();
  if (selected) loadDetail();
}

function applyEvents(events) {
  if (!model) return;
  if (events.length && events.every((event) => event.event === "run_estimate")) {  // the expected end alone: its figures, not the table
    model.eta = events[events.length - 1];
    renderTotals();
    return;
  }
  const byId = new Map(model.tasks.map((t) => [t.id, t]));
  let touched = false;
  for (const event of events) {
    model.feed.push(event);
    if (!LIFECYCLE.has(event.event)) model.notable.push(event);
    const task = event.task ? byId.get(event.task) : undefined;
    const state = EVENT_STATE[event.event];
    if (task && state) {
      task.status = state;
      if (event.event === "task_started") {
        task.started = event.time;
        task.attempts = event.attempt ?? task.attempts;
        task.run_attempts = event.in_run ?? task.run_attempts;
      }
      if (event.duration !== undefined) task.duration = event.duration;
      if (event.attempts !== undefined) task.attempts = event.attempts;
      if (event.reused) task.run_attempts = 0;  // from the cache: no attempt made, as `status` counts
      if (event.cost_usd !== undefined && event.cost_usd !== null) task.cost_usd = event.cost_usd;
      if (event.reason) task.reason = event.reason;
      if (event.reason) task.cause = event.cause ?? null;  // (why, as data: what the reason was rendered from)
      if (event.task === selected) touched = true;
    }
    if (event.event === "run_estimate") model.eta = event;  // the run's expected end, as it goes
    if (event.event === "budget_reached" && model.budget) Object.assign(model.budget, { reached: true, spent: event.spent, limit: event.limit, waiting: event.tasks });
    if (event.event === "budget_raised" && model.budget) Object.assign(model.budget, { reached: false, spent: event.spent, limit: event.limit, waiting: [] });
    if (event.event === "run_started") {
      model.run = { name: event.run, started: event.time, pid: event.pid, to_run: event.to_run, finished: null, alive: true };
    } else if (event.event === "run_finished" && model.run && event.run === model.run.name) {
      Object.assign(model.run, { finished: event.time, exit_code: event.exit_code, wall_seconds: event.wall_seconds });
    }
  }
  model.feed = model.feed.slice(-FEED_SIZE);
  model.notable = model.notable.slice(-NOTABLE_SIZE);
  model.counts = {};
  for (const t of model.tasks) model.counts[t.status] = (model.counts[t.status] || 0) + 1;
  render();
  if (touched) loadDetail();
}

// --- drawing ----------------------------------------------------------------------------------

function render() { atOneMoment(drawAll); }

function drawAll() {
  $("name").textContent = model.name || "";
  document.title = `${model.name} · orchestrator`;
  $("request").textContent = model.request || "";
  const params = Object.entries(model.params || {});  // the values the plan is read with (run --param)
  $("params").hidden = !params.length;
  $("params").textContent = params.length ? "Parameters: " + params.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ") : "";
  renderRunState();
  renderBanners();
  renderTotals();
  renderTable();
  colourGraph();
  renderEvents($("notable"), model.notable.slice().reverse(), true);
  renderEvents($("feed"), model.feed.slice(-40).reverse(), false);
  renderContext();
}

// A run that ended with exit 4 (ExitCode.HELD) failed nothing: what it left waits for a person
// (a task blocked, or at its Approval gate, and what needs it). The tasks that still do, by id.
const HELD_EXIT = 4;
const HELD_STATES = new Set(["blocked", "awaiting_approval"]);

function heldFor() {
  const run = model.run || {};
  if (!run.finished || run.exit_code !== HELD_EXIT) return [];
  return model.tasks.filter((t) => HELD_STATES.has(t.status)).map((t) => t.id);
}

function renderRunState() {
  const run = model.run || {};
  const pill = $("run-state");
  pill.title = "";
  if (!run.name) { pill.textContent = "no run yet"; pill.className = "pill"; return; }
  const held = heldFor();
  if (held.length) {
    pill.textContent = `✋ waiting for a person since ${clock(run.finished)}`;
    pill.className = "pill held";
    pill.title = `the run ended (exit ${HELD_EXIT}) with nothing failed: ${held.join(", ")} ` +
      `${held.length === 1 ? "waits" : "wait"} for a person's word (Approve or Reject, or a blocked task released); ` +
      "then `orchestrator run` goes on";
  } else if (run.finished) {
    const decided = run.exit_code === HELD_EXIT;  // (held, and decided since: the next run goes on)
    pill.textContent = `run finished ${clock(run.finished)}` +
      (decided ? ": `orchestrator run` goes on" : run.exit_code ? ` (exit ${run.exit_code})` : "");
    pill.className = `pill ${decided ? "" : run.exit_code ? "off" : "on"}`;
  } else if (run.alive === false) {
    pill.textContent = "runner gone"; pill.className = "pill off";
  } else {
    pill.textContent = `running since ${clock(run.started)}`; pill.className = "pill live";
  }
}

function renderBanners() {
  const pause = model.pause;
  const banner = $("pause-banner");
  if (pause && pause.until * 1000 > now()) {
    const left = Math.max(0, pause.until - now() / 1000);
    banner.textContent = `⏸️ Paused until ${clock(pause.until_iso)} (in ${seconds(left)}): ${pause.reason || "usage limit"}` +
      (pause.backend ? ` — backend ${pause.backend}` : "");
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
  const error = $("plan-error");
  error.textContent = model.plan_error ? `master_plan.md does not parse (showing the last plan that did): ${model.plan_error}` : "";
  error.hidden = !model.plan_error;
  // The workspace's schedule (`orchestrator schedule add`): the same line `status` prints.
  const schedule = $("schedule-line");
  const note = model.schedule && (model.notes || []).find((line) => line.startsWith("📅"));
  schedule.textContent = note || "";
  schedule.hidden = !note;
  // The last run a webhook, the API or an MCP tool started: the same line `status` prints.
  const launched = $("launched-line");
  const fired = model.launched && (model.notes || []).find((line) => line.startsWith("🪝"));
  launched.textContent = fired || "";
  launched.hidden = !fired;
  // A checkpoint restored since the last run started (`orchestrator checkpoint restore`): as `status` says it.
  const restored = $("restored-line");
  const back = model.restored && (model.notes || []).find((line) => line.startsWith("⏪"));
  restored.textContent = back || "";
  restored.hidden = !back;
  // What runs delivered (a push, the pull request, a comment), each as `status` says it, with its link.
  const effects = $("effects");
  effects.replaceChildren(...(model.effects || []).map((effect) => {
    const line = el("div", "effect");
    if (effect.url && /^https?:\/\//.test(effect.url)) {
      const link = el("a", "", effect.said);
      link.href = effect.url;
      link.rel = "noopener noreferrer";
      line.append(link);
    } else {
      line.textContent = effect.said;
    }
    return line;
  }));
  effects.hidden = !(model.effects || []).length;
}

function renderTotals() {
  const box = $("totals");
  box.replaceChildren();
  const stat = (value, label, className) => {
    const node = el("span", `stat ${className || ""}`);
    node.append(el("b", "", value), document.createTextNode(label));
    box.append(node);
  };
  stat(model.total, model.total === 1 ? "task" : "tasks");
  for (const [state, n] of Object.entries(model.counts || {})) {
    if (n) stat(n, ` ${state}`, `state state-${state}`);
  }
  stat(money(model.cost_usd), " cost");
  const tokens = model.tasks.reduce((sum, t) => sum + (t.tokens || 0), 0);
  stat(tokens ? count(tokens) : "–", " tokens");
  const run = model.run || {};
  if (run.started) {
    const end = run.finished ? Date.parse(run.finished) : now();
    stat(seconds(Math.max(0, (end - Date.parse(run.started)) / 1000)), run.finished ? " run took" : " elapsed");
  }
  // As status --json gives it (null while nothing is learned), or the run's last run_estimate;
  // none while the work left waits for a person (at a gate, or for a higher budget): when it
  // ends is theirs to say.
  const eta = heldFor().length || (model.budget && model.budget.reached) ? null : model.eta;
  if (eta) {
    stat(seconds(eta.seconds_left), ` left (ends about ${String(eta.expected_end).slice(11, 16)})`);
    if (eta.expected_cost !== null && eta.expected_cost !== undefined) stat(money(eta.expected_cost), " expected cost");
  }
  renderBudget(box, stat);
}

// The budget of the run going on (`orchestrator budget`): what it has spent of it and, once it is
// reached, a button that raises it by as much again, as `orchestrator budget +USD` does.
function renderBudget(box, stat) {
  const budget = model.budget;
  if (!budget || !budget.run || budget.limit === null || budget.limit === undefined) return;
  stat(`${money(budget.spent || 0)} of ${money(budget.limit)}`, budget.reached ? " budget reached" : " budget", budget.reached ? "state state-blocked" : "");
  if (!budget.reached) return;
  const button = el("button", "action", `Raise budget by ${money(budget.limit)}`);
  button.id = "raise-budget";
  button.addEventListener("click", () => raiseBudget(button, budget.limit));
  box.append(button);
}

function raiseBudget(button, amount) {
  button.disabled = true;
  showAction(`Raising the budget by ${money(amount)}…`, "");
  fetch("api/budget", {
    method: "POST", credentials: "same-origin",
    headers: { "X-Orchestrator-Token": token || "", "Content-Type": "application/json" },
    body: JSON.stringify({ amount: `+${amount}` }),
  })
    .then((r) => r.json().catch(() => ({ ok: false, error: `HTTP ${r.status}` })))
    .then((answer) => showAction(answer.ok ? `the run's budget is ${money(answer.limit)} now` : answer.error, answer.ok ? "done" : "refused"))
    .catch((error) => showAction(`budget: the server did not answer (${error.message})`, "refused"))
    .finally(() => { button.disabled = false; });
}

// The rows on the page, by task id. A render changes only the cells whose text changed: a button
// is never replaced under the pointer that is about to click it (a click pressed on one button and
// released on its replacement is no click), and a row's selection and hover stay where they are.
let shownRows = new Map();

function renderTable() {
  const body = $("tasks").tBodies[0];
  const rows = model.tasks.map((task) => {
    const fresh = taskRow(task);
    const old = shownRows.get(task.id);
    return old ? patched(old, fresh) : fresh;
  });
  shownRows = new Map(rows.map((row) => [row.dataset.task, row]));
  const same = rows.length === body.rows.length && rows.every((row, i) => body.rows[i] === row);
  if (!same) body.replaceChildren(...rows);
}

function patched(old, fresh) {
  old.className = fresh.className;
  old.dataset.state = fresh.dataset.state;
  const cells = Array.from(fresh.cells);  // (a live list: each cell moved into ``old`` leaves it)
  if (old.cells.length !== cells.length) return fresh;
  cells.forEach((cell, i) => {
    if (old.cells[i].outerHTML !== cell.outerHTML) old.cells[i].replaceWith(cell);
  });
  return old;
}

function taskRow(task) {
  const row = el("tr", task.id === selected ? "selected" : "");
  row.dataset.task = task.id;
  row.dataset.state = task.status;
  row.append(el("td", "", task.id), el("td", "", task.agent));
  const name = el("td", "name", task.name);
  if (task.type) name.append(" ", el("span", "type", task.type));  // its task type, as status --json gives it
  if (task.reason && task.status !== "completed") name.title = task.reason;
  row.append(name);
  const state = el("td");
  // A completed task `run` would do again (the plan changed since): said as `status` says it.
  const stale = task.status === "completed" && task.out_of_date;
  const label = el("span", `state state-${task.status}${stale ? " stale" : ""}`, stale ? "completed · out of date" : task.status);
  if (stale) label.title = task.out_of_date;
  state.append(label);
  if (task.worker) state.append(" ", el("span", "worker", `on ${task.worker}`));  // on a cluster, as status says it
  // Waiting for its Not before, or approved at its gate before it starts: said, from its cause.
  const said = ["not_before", "approved"].includes(task.cause?.kind);
  if (task.reason && (WHY_STATES.has(task.status) || said)) state.append(el("div", "why", task.reason));  // as `status` says it
  if (task.reused) {  // from the cache: no process started. Said as `status` says it; the exact moment on hover
    const why = el("div", "why reused", `♻️ reused: ${task.reused_said || task.reused}`);
    why.title = task.reused;
    state.append(why);
  }
  if (task.raced) state.append(el("div", "why raced", `🏁 ${task.raced}`));  // a hedge or best of N, as `status` says it
  if (task.items) state.append(el("div", "why items", task.items.said));  // a row run per item: its counts, as `status` says them
  const question = asked(task);
  if (question) state.append(el("div", "why asks", `✋ asks ${question.id}: ${question.said}`));  // as `status` says it
  row.append(state);
  row.append(
    // The attempts of the run of it that made its state, as `status` and `report` count them.
    el("td", "num", task.attempts ? String(task.run_attempts ?? task.attempts) : "–"),
    el("td", "num duration", seconds(duration(task))),
    el("td", "num", money(task.cost_usd)),
    el("td", "num", count(task.tokens)),
    actionCell(task),
  );
  row.addEventListener("click", () => select(task.id));
  return row;
}

function actionCell(task) {
  const cell = el("td", "actions");
  for (const [kind, action] of Object.entries(ACTIONS)) {
    if (action.asks ? !asked(task) : !action.states.has(task.status)) continue;
    const button = el("button", `action ${kind}`, action.label);
    button.type = "button";
    button.dataset.action = kind;
    button.disabled = !token || pending.has(`${kind} ${task.id}`);
    const named = action.asks ? `answer ${task.id} ${asked(task).id} ${kind}` : `${kind} ${task.id}`;  // (as the CLI says it)
    button.title = token ? `orchestrator ${named}` : "open the URL `orchestrator serve` printed (with its token) to act";
    button.addEventListener("click", (e) => {
      e.stopPropagation();
      if (kind === "reject") askWhy(task.id, button);
      else if (action.asks) act(kind, task.id, button, undefined, asked(task).id);  // bound to the question shown
      else act(kind, task.id, button);
    });
    cell.append(button);
  }
  return cell;
}

// The actions posted and not answered yet ("kind id"): their buttons stay disabled, whatever is
// redrawn meanwhile (a second click would post the same request twice).
const pending = new Set();

// Reject asks why first, in a dialog (reject-dialog in index.html): the reason goes with it, as
// `orchestrator reject --reason` sends it; closed without Reject (Escape, Keep it waiting), nothing is sent.
let rejecting = null;  // { id, button } while the dialog is open

function askWhy(id, button) {
  const dialog = $("reject-dialog");
  rejecting = { id, button };
  $("reject-title").textContent = `Reject ${id}?`;
  $("reject-confirm").textContent = `Reject ${id}`;
  $("reject-reason").value = "";
  dialog.returnValue = "";
  dialog.showModal();
  $("reject-reason").focus();
}

function answered() {
  const asked = rejecting;
  rejecting = null;
  if (asked && $("reject-dialog").returnValue === "reject") act("reject", asked.id, asked.button, $("reject-reason").value);
}

function act(kind, id, button, reason, question) {
  pending.add(`${kind} ${id}`);
  button.disabled = true;
  showAction(`${ACTIONS[kind].label} ${id}${question ? " " + question : ""}…`, "");
  const headers = { "X-Orchestrator-Token": token || "" };
  const said = { ...(reason === undefined ? {} : { reason }), ...(question ? { question } : {}) };
  if (Object.keys(said).length) headers["Content-Type"] = "application/json";
  fetch(`api/task/${encodeURIComponent(id)}/${kind}`, {
    method: "POST", headers, credentials: "same-origin",
    body: Object.keys(said).length ? JSON.stringify(said) : undefined,
  })
    .then((r) => r.json().catch(() => ({ ok: false, error: `HTTP ${r.status}` })))
    .then((answer) => showAction(answer.ok ? answer.said : answer.error, answer.ok ? "done" : "refused"))
    .catch((error) => showAction(`${kind} ${id}: the server did not answer (${error.message})`, "refused"))
    .finally(() => { pending.delete(`${kind} ${id}`); button.disabled = false; atOneMoment(() => { renderTotals(); renderTable(); }); });
}

function showAction(text, outcome) {
  const line = $("action-result");
  line.textContent = text;
  line.className = `banner action-result ${outcome}`;
  line.hidden = !text;
}

function colourGraph() {
  const states = new Map(model.tasks.map((t) => [t.id, t.status]));
  for (const node of document.querySelectorAll("#graph g.node")) {
    const state = states.get(node.dataset.task) || "pending";
    node.setAttribute("class", `node state-${state}${node.dataset.task === selected ? " selected" : ""}`);
  }
}

function loadGraph(version) {
  fetch("api/graph.svg").then((r) => r.text()).then((svg) => {
    const box = $("graph");
    // The server drew it from the plan and escaped every name in it (orchestrator/serve/picture.py).
    box.innerHTML = svg;
    planVersion = version;
    for (const node of box.querySelectorAll("g.node")) {
      node.addEventListener("click", () => select(node.dataset.task));
      node.addEventListener("keydown", (e) => { if (e.key === "Enter") select(node.dataset.task); });
    }
    if (model) colourGraph();
  });
}

function describe(event) {  // the CLI's line when it has one (`said`, from the server), else the event's words
  if (event.said) return event.said;
  for (const key of TEXT_KEYS) {
    if (typeof event[key] === "string" && event[key]) return event[key];
  }
  return Object.entries(event)
    .filter(([k]) => !["event", "run", "time", "task", "agent", "said"].includes(k))
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v !== null && typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" · ");
}

function renderEvents(list, events, full) {
  const items = events.map((event) => {
    const item = el("li");
    item.append(el("span", "time", clock(event.time)), el("span", `kind ${event.event}`, event.event));
    if (event.task) item.append(el("b", "", `${event.task} `));
    const text = full || !LIFECYCLE.has(event.event) ? describe(event) : (event.name || "");
    item.append(el("span", "detail", text));
    return item;
  });
  if (!items.length) items.push(el("li", "muted", full ? "none yet" : "nothing yet"));
  list.replaceChildren(...items);
}

function renderContext() {
  const list = $("context");
  const items = (model.context || []).map((file) => {
    const item = el("li", "", `${file.name}`);
    item.append(el("span", "muted", `  ${count(file.bytes)} bytes · ${clock(file.modified)}`));
    item.addEventListener("click", () => showContext(file.name));
    return item;
  });
  if (!items.length) items.push(el("li", "muted", "no files under context/ yet"));
  list.replaceChildren(...items);
}

// --- the selected task --------------------------------------------------------------------------

function select(id) {
  selected = id;
  detail = null;
  tab = null;
  render();
  loadDetail();
}

function loadDetail() {
  const id = selected;
  if (!id) return;
  fetch(`api/task/${encodeURIComponent(id)}`).then((r) => (r.ok ? r.json() : null)).then((found) => {
    if (id !== selected) return;
    detail = found;
    renderDetail();
  });
  clearTimeout(detailTimer);
  const task = model && model.tasks.find((t) => t.id === id);
  if (task && (task.status === "running" || task.status === "retrying")) {
    detailTimer = setTimeout(loadDetail, 2000);  // a running task's log grows between events
  }
}

function renderDetail() {
  const task = model.tasks.find((t) => t.id === selected);
  $("detail-title").textContent = task ? `${task.id} [${task.agent}] ${task.name}${task.type ? ` (${task.type})` : ""}` : selected;
  const tabs = $("detail-tabs");
  tabs.hidden = false;
  if (!tab) tab = task && task.status === "completed" && detail && detail.result ? "result" : "log";
  for (const button of tabs.querySelectorAll("button")) {
    button.classList.toggle("active", button.dataset.tab === tab);
  }
  const meta = $("detail-meta");
  const text = $("detail-text");
  text.hidden = false;
  if (!detail) { meta.textContent = "no such task in the plan"; text.hidden = true; return; }
  let shown = null;
  if (tab === "log") {
    const parts = [];
    if (detail.stdout) parts.push(detail.stdout.text);
    if (detail.stderr && detail.stderr.text) parts.push(`--- stderr ---\n${detail.stderr.text}`);
    const cut = (detail.stdout && detail.stdout.truncated) || (detail.stderr && detail.stderr.truncated);
    meta.textContent = detail.attempt
      ? `attempt ${detail.attempt}: ${cut ? "the last 16 KiB of " : ""}its log` +
        (detail.stdout ? ` (${detail.stdout.path})` : "")
      : "no log yet: it has not run";
    text.textContent = parts.join("\n") || (detail.attempt ? "(nothing printed yet)" : "");
    text.hidden = !detail.attempt;
    text.scrollTop = text.scrollHeight;
    return;
  }
  shown = tab === "result" ? detail.result : detail.brief;
  if (!shown) { meta.textContent = tab === "result" ? "no result yet" : "no brief rendered yet"; text.hidden = true; return; }
  meta.textContent = shown.path + (shown.truncated ? ` (the first ${count(shown.text.length)} characters)` : "");
  text.textContent = shown.text;
}

function showContext(name) {
  fetch(`api/context/${name.split("/").map(encodeURIComponent).join("/")}`)
    .then((r) => (r.ok ? r.json() : null)).then((found) => {
      selected = null; detail = null;
      clearTimeout(detailTimer);
      render();
      $("detail-title").textContent = `context/${name}`;
      $("detail-tabs").hidden = true;
      $("detail-meta").textContent = found ? found.path : "not readable";
      $("detail-text").hidden = !found;
      $("detail-text").textContent = found ? found.text : "";
    });
}

function tick() {
  if (model) atOneMoment(ticked);
}

function ticked() {
  const byId = new Map(model.tasks.map((t) => [t.id, t]));
  for (const row of document.querySelectorAll("#tasks tbody tr")) {
    const task = byId.get(row.dataset.task);
    if (task && (task.status === "running" || task.status === "retrying")) {
      row.querySelector(".duration").textContent = seconds(duration(task));
    }
  }
  renderTotals();
  renderBanners();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("#detail-tabs button")) {
    button.addEventListener("click", () => { tab = button.dataset.tab; renderDetail(); });
  }
  $("reject-dialog").addEventListener("close", answered);
  connect();
  setInterval(tick, 1000);
});
