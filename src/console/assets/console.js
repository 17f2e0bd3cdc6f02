// The moderator console. Plain module, no build step: it talks to the
// service's JSON adapter (/console/api/…) with the key from the tab's
// session storage in an Authorization header. Text from comments only ever
// reaches the page through textContent.

const TEXT = {
  fr: {
    language: "Langue",
    "help.open": "Raccourcis (?)",
    signout: "Se déconnecter",
    "signin.title": "Connexion",
    "signin.key": "Clé API (modérateur ou administrateur)",
    "signin.moderator": "Votre nom, signé sur vos décisions (facultatif)",
    "signin.submit": "Se connecter",
    "queue.title": "File de modération",
    "filter.order": "Ordre",
    "order.priority": "Priorité",
    "order.oldest": "Plus anciens",
    "order.newest": "Plus récents",
    "filter.article": "Article",
    "filter.reason": "Code de raison",
    "filter.min_score": "Score de spam minimal",
    "filter.reported": "Signalés seulement",
    "queue.refresh": "Actualiser",
    "queue.claim": "Prendre le lot suivant",
    "claimed.title": "Mes commentaires",
    "claimed.empty": "Aucun commentaire pris. « Prendre le lot suivant » (ou n) réserve les prochains.",
    "pending.title": "En attente",
    "pending.more": "Afficher la suite",
    "help.title": "Raccourcis clavier",
    "help.jk": "commentaire suivant / précédent",
    "help.a": "approuver",
    "help.r": "rejeter (avec le code de raison choisi)",
    "help.x": "sélectionner / désélectionner",
    "help.bulk_a": "approuver la sélection",
    "help.bulk_r": "rejeter la sélection",
    "help.n": "prendre le lot suivant",
    "help.help": "afficher cette aide",
    "help.close": "Fermer",
    approve: "Approuver (a)",
    reject: "Rejeter (r)",
    select: "Sélectionner (x)",
    "reject.reason": "Code de raison du rejet",
    "reason.none": "(aucun)",
    note: "Note",
    author: "Auteur",
    article: "Article",
    standing: "Statut de l'auteur",
    spam: "spam",
    toxicity: "toxicité",
    priority: "priorité",
    "signed.in": "Connecté : {role}, locataire {tenant}",
    "claimed.n": "{n} commentaire(s) pris.",
    "claimed.none": "Rien à prendre pour ces filtres.",
    "decided.approve": "Approuvé.",
    "decided.reject": "Rejeté.",
    "decided.bulk": "{n} décision(s) enregistrée(s).",
    "stale": "Un autre modérateur a déjà décidé ce commentaire ; la carte est retirée.",
    "not_claimed": "Ce commentaire n'est plus réservé à votre nom (bail expiré ?) ; reprenez un lot.",
    "error": "Erreur : {message}",
    "claimed_by": "pris par {who}",
    "author.open": "Auteur",
    "trail.open": "Historique",
    "author.title": "Auteur {id}",
    "author.counts": "{approved} approuvé(s), {pending} en attente, {rejected} rejeté(s)",
    "author.in_force": "Statut en vigueur : {standing}{until}",
    "author.until": " jusqu'au {until}",
    "author.last_set": "Fixé par {who} le {when} : {reason}",
    "author.recent": "Derniers commentaires",
    "author.set": "Changer le statut",
    "author.standing": "Statut",
    "author.until_label": "Jusqu'au (facultatif)",
    "author.reason": "Motif",
    "author.save": "Enregistrer",
    "author.saved": "Statut enregistré.",
    "trail.title": "Historique du commentaire",
    "spam_label": "Apprentissage spam",
    "label.": "(selon la décision)",
    "label.spam": "spam",
    "label.ham": "pas du spam",
    "label.skip": "ne rien apprendre",
    "admin.title": "Règles et réglages",
    "rules.test_label": "Essayer un texte contre les règles",
    "rules.test": "Tester",
    "rules.title": "Règles",
    "rules.result": "Décision : {status} · spam {spam} · toxicité {toxicity}",
    "settings.title": "Réglages",
    "settings.mode": "Mode",
    "settings.post": "publier puis modérer",
    "settings.pre": "modérer avant publication",
    "settings.review": "Seuil de relecture (spam)",
    "settings.reject": "Seuil de rejet (spam)",
    "settings.save": "Enregistrer les réglages",
    "settings.saved": "Réglages enregistrés.",
    "settings.per_author": "Commentaires par auteur et par minute (0 = sans limite)",
    "settings.per_ip": "Commentaires par adresse IP et par minute (0 = sans limite)",
    "settings.retain_rejected": "Garder le texte des commentaires rejetés (jours, 0 = toujours)",
    "settings.retain_all": "Garder le texte de tous les commentaires (jours, 0 = toujours)",
    "rule.disabled": "désactivée",
    "author.latest": "Ses derniers commentaires",
    "settings.toxicity": "Seuils de toxicité par catégorie (relecture / rejet)",
    "threshold.review": "{category} : relecture",
    "threshold.reject": "{category} : rejet",
    "reopen": "Rouvrir",
    "reopened": "Commentaire remis dans la file.",
  },
  en: {
    language: "Language",
    "help.open": "Shortcuts (?)",
    signout: "Sign out",
    "signin.title": "Sign in",
    "signin.key": "API key (moderator or admin)",
    "signin.moderator": "Your name, signed on your decisions (optional)",
    "signin.submit": "Sign in",
    "queue.title": "Review queue",
    "filter.order": "Order",
    "order.priority": "Priority",
    "order.oldest": "Oldest first",
    "order.newest": "Newest first",
    "filter.article": "Article",
    "filter.reason": "Reason code",
    "filter.min_score": "Minimum spam score",
    "filter.reported": "Reported only",
    "queue.refresh": "Refresh",
    "queue.claim": "Claim next batch",
    "claimed.title": "My comments",
    "claimed.empty": "Nothing claimed. \"Claim next batch\" (or n) reserves the next ones.",
    "pending.title": "Pending",
    "pending.more": "Show more",
    "help.title": "Keyboard shortcuts",
    "help.jk": "next / previous comment",
    "help.a": "approve",
    "help.r": "reject (with the chosen reason code)",
    "help.x": "select / unselect",
    "help.bulk_a": "approve the selection",
    "help.bulk_r": "reject the selection",
    "help.n": "claim the next batch",
    "help.help": "show this help",
    "help.close": "Close",
    approve: "Approve (a)",
    reject: "Reject (r)",
    select: "Select (x)",
    "reject.reason": "Rejection reason code",
    "reason.none": "(none)",
    note: "Note",
    author: "Author",
    article: "Article",
    standing: "Author standing",
    spam: "spam",
    toxicity: "toxicity",
    priority: "priority",
    "signed.in": "Signed in: {role}, tenant {tenant}",
    "claimed.n": "{n} comment(s) claimed.",
    "claimed.none": "Nothing to claim for these filters.",
    "decided.approve": "Approved.",
    "decided.reject": "Rejected.",
    "decided.bulk": "{n} decision(s) recorded.",
    "stale": "Another moderator already decided this comment; the card is removed.",
    "not_claimed": "This comment is no longer claimed by you (lease expired?); claim a batch again.",
    "error": "Error: {message}",
    "claimed_by": "claimed by {who}",
    "author.open": "Author",
    "trail.open": "Trail",
    "author.title": "Author {id}",
    "author.counts": "{approved} approved, {pending} pending, {rejected} rejected",
    "author.in_force": "Standing in force: {standing}{until}",
    "author.until": " until {until}",
    "author.last_set": "Set by {who} on {when}: {reason}",
    "author.recent": "Latest comments",
    "author.set": "Change the standing",
    "author.standing": "Standing",
    "author.until_label": "Until (optional)",
    "author.reason": "Reason",
    "author.save": "Save",
    "author.saved": "Standing saved.",
    "trail.title": "Comment trail",
    "spam_label": "Spam learning",
    "label.": "(from the decision)",
    "label.spam": "spam",
    "label.ham": "not spam",
    "label.skip": "learn nothing",
    "admin.title": "Rules and settings",
    "rules.test_label": "Try a text against the rules",
    "rules.test": "Test",
    "rules.title": "Rules",
    "rules.result": "Decision: {status} · spam {spam} · toxicity {toxicity}",
    "settings.title": "Settings",
    "settings.mode": "Mode",
    "settings.post": "publish, then moderate",
    "settings.pre": "moderate before publishing",
    "settings.review": "Review threshold (spam)",
    "settings.reject": "Reject threshold (spam)",
    "settings.save": "Save the settings",
    "settings.saved": "Settings saved.",
    "settings.per_author": "Comments per author per minute (0 = no limit)",
    "settings.per_ip": "Comments per IP address per minute (0 = no limit)",
    "settings.retain_rejected": "Keep the text of rejected comments (days, 0 = forever)",
    "settings.retain_all": "Keep the text of all comments (days, 0 = forever)",
    "rule.disabled": "disabled",
    "author.latest": "Their latest comments",
    "settings.toxicity": "Toxicity thresholds per category (review / reject)",
    "threshold.review": "{category}: review",
    "threshold.reject": "{category}: reject",
    "reopen": "Reopen",
    "reopened": "Comment sent back to the queue.",
  },
};

// Reason codes a rejection can carry: the toxicity categories teach the
// toxicity model, `spam` teaches the spam model.
const REJECT_CODES = [
  "", "spam", "toxicity.insult", "toxicity.identity_attack", "toxicity.threat",
  "toxicity.obscene", "toxicity.sexual_harassment", "off_topic",
];

const $ = (id) => document.getElementById(id);
const state = {
  lang: localStorage.getItem("moderato.lang") || "fr",
  key: sessionStorage.getItem("moderato.key") || "",
  moderator: sessionStorage.getItem("moderato.moderator") || "",
  session: null,
  claimed: [], // items claimed by this tab, in order
  current: 0,
  selected: new Set(),
  pendingToken: "",
};

function t(key, params = {}) {
  const text = (TEXT[state.lang] && TEXT[state.lang][key]) || TEXT.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n);
  }
  renderCards();
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    method: options.method || "GET",
    headers: {
      Authorization: `Bearer ${state.key}`,
      ...(options.body ? { "Content-Type": "application/json" } : {}),
    },
    body: options.body ? JSON.stringify(options.body) : undefined,
    credentials: "omit",
    cache: "no-store",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((data.error && data.error.message) || response.statusText);
    error.code = (data.error && data.error.code) || String(response.status);
    error.status = response.status;
    throw error;
  }
  return data;
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// Spans are UTF-8 byte offsets into the text; the page works in UTF-16.
// Slicing the encoded bytes and decoding each slice keeps accents and
// emoji whole.
function highlighted(text, reasons) {
  const bytes = new TextEncoder().encode(text);
  const decoder = new TextDecoder();
  const spans = reasons
    .flatMap((r) => [r.span, r.target].filter(Boolean).map((s) => ({ ...s, reason: r })))
    .filter((s) => s.start < s.end && s.end <= bytes.length)
    .sort((a, b) => a.start - b.start || b.end - a.end);
  const out = document.createElement("p");
  out.className = "body";
  let at = 0;
  for (const span of spans) {
    if (span.start < at) continue; // overlapping: the first one wins
    out.append(decoder.decode(bytes.slice(at, span.start)));
    const mark = document.createElement("mark");
    mark.textContent = decoder.decode(bytes.slice(span.start, span.end));
    mark.title = `${span.reason.code}: ${span.reason.message}`;
    mark.dataset.code = span.reason.code;
    out.append(mark);
    at = span.end;
  }
  out.append(decoder.decode(bytes.slice(at)));
  return out;
}

function reasonList(reasons) {
  const list = document.createElement("ul");
  list.className = "reasons";
  for (const r of reasons) {
    const li = document.createElement("li");
    const name = r.rule_name ? `${r.rule_name} — ` : "";
    const score = r.score != null ? ` (${r.score.toFixed(2)})` : "";
    li.textContent = `${r.code}${score}: ${name}${r.message}`;
    list.append(li);
  }
  return list;
}

function cardFor(item, index) {
  const c = item.comment;
  const li = document.createElement("li");
  li.className = "card";
  li.tabIndex = -1;
  li.dataset.reviewId = item.review_id;
  li.setAttribute("aria-current", index === state.current ? "true" : "false");
  li.classList.toggle("selected", state.selected.has(item.review_id));

  const header = document.createElement("header");
  for (const text of [
    `${t("author")}: ${c.author_display_name || c.author_id} (${c.author_id})`,
    `${t("standing")}: ${item.author_standing}`,
    `${t("article")}: ${c.article_id}`,
    `${t("spam")} ${c.spam_score.toFixed(2)} · ${t("toxicity")} ${c.toxicity_score.toFixed(2)}`,
    `${t("priority")} ${item.priority}`,
  ]) {
    const span = document.createElement("span");
    span.textContent = text;
    header.append(span);
  }
  const tools = document.createElement("div");
  tools.className = "actions";
  const authorButton = document.createElement("button");
  authorButton.type = "button";
  authorButton.textContent = t("author.open");
  authorButton.addEventListener("click", () => showAuthor(c.author_id).catch(showError));
  const trailButton = document.createElement("button");
  trailButton.type = "button";
  trailButton.textContent = t("trail.open");
  trailButton.addEventListener("click", () => showTrail(c.comment_id).catch(showError));
  tools.append(authorButton, trailButton);
  li.append(header, highlighted(c.text, c.reasons), reasonList(c.reasons), authorSummary(c), tools);

  const actions = document.createElement("div");
  actions.className = "actions";
  const approve = document.createElement("button");
  approve.type = "button";
  approve.className = "approve";
  approve.textContent = t("approve");
  approve.addEventListener("click", () => decideItems([item], "approve"));
  const reasonId = `reason-${item.review_id}`;
  const reasonLabel = document.createElement("label");
  reasonLabel.htmlFor = reasonId;
  reasonLabel.textContent = t("reject.reason");
  const reason = document.createElement("select");
  reason.id = reasonId;
  for (const code of REJECT_CODES) {
    const option = document.createElement("option");
    option.value = code;
    option.textContent = code || t("reason.none");
    reason.append(option);
  }
  reason.value = item.rejectCode || "";
  reason.addEventListener("change", () => { item.rejectCode = reason.value; });
  const noteId = `note-${item.review_id}`;
  const noteLabel = document.createElement("label");
  noteLabel.htmlFor = noteId;
  noteLabel.textContent = t("note");
  const note = document.createElement("input");
  note.id = noteId;
  note.value = item.note || "";
  note.addEventListener("input", () => { item.note = note.value; });
  const reject = document.createElement("button");
  reject.type = "button";
  reject.className = "reject";
  reject.textContent = t("reject");
  reject.addEventListener("click", () => decideItems([item], "reject"));
  const select = document.createElement("button");
  select.type = "button";
  select.textContent = t("select");
  select.setAttribute("aria-pressed", state.selected.has(item.review_id) ? "true" : "false");
  select.addEventListener("click", () => toggleSelected(item));
  const labelId = `label-${item.review_id}`;
  const labelLabel = document.createElement("label");
  labelLabel.htmlFor = labelId;
  labelLabel.textContent = t("spam_label");
  const label = document.createElement("select");
  label.id = labelId;
  for (const value of ["", "spam", "ham", "skip"]) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = t(`label.${value}`);
    label.append(option);
  }
  label.value = item.spamLabel || "";
  label.addEventListener("change", () => { item.spamLabel = label.value; });
  actions.append(approve, reasonLabel, reason, noteLabel, note, reject, labelLabel, label, select);
  li.append(actions);
  return li;
}

// The author's counts and latest comments on each card, read once per
// author and page (the author panel reads them fresh).
const authors = new Map();

function authorSummary(c) {
  const box = element("div", null, "author-summary");
  const known = authors.get(c.author_id);
  if (!known) {
    authors.set(c.author_id, "loading");
    api(`/console/api/authors/${encodeURIComponent(c.author_id)}`)
      .then((author) => { authors.set(c.author_id, author); renderCards(); })
      .catch(() => authors.delete(c.author_id));
    return box;
  }
  if (known === "loading") return box;
  box.append(element("div", t("author.counts", {
    approved: known.approved, pending: known.pending_review, rejected: known.rejected,
  }), "meta"));
  const others = known.recent.filter((r) => r.comment_id !== c.comment_id).slice(0, 3);
  if (others.length) {
    box.append(element("div", t("author.latest"), "meta"));
    const list = element("ul", null, "reasons");
    for (const r of others) list.append(element("li", `${r.status}: ${r.text}`));
    box.append(list);
  }
  return box;
}

function renderCards() {
  const list = $("cards");
  if (!list) return;
  list.replaceChildren(...state.claimed.map(cardFor));
  $("cards-empty").hidden = state.claimed.length > 0;
}

function focusCurrent() {
  state.current = Math.max(0, Math.min(state.current, state.claimed.length - 1));
  renderCards();
  const card = $("cards").children[state.current];
  if (card) card.focus();
}

function toggleSelected(item) {
  if (state.selected.has(item.review_id)) state.selected.delete(item.review_id);
  else state.selected.add(item.review_id);
  renderCards();
}

function filters() {
  return {
    order: $("order").value,
    article_id: $("article").value.trim(),
    reason_code: $("reason").value.trim(),
    min_spam_score: Number($("min-score").value) || 0,
    reported_only: $("reported").checked,
  };
}

async function loadPending(append = false) {
  const f = filters();
  const query = new URLSearchParams({
    order: f.order,
    article_id: f.article_id,
    reason_code: f.reason_code,
    min_spam_score: String(f.min_spam_score),
    reported_only: String(f.reported_only),
    page_size: "50",
    page_token: append ? state.pendingToken : "",
  });
  const page = await api(`/console/api/queue?${query}`);
  state.pendingToken = page.next_page_token;
  // Items this moderator holds (claimed before a reload) are worked again.
  const me = state.moderator || (state.session && state.session.actor);
  const known = new Set(state.claimed.map((i) => i.review_id));
  const mine = page.items.filter((i) => i.claimed_by === me && !known.has(i.review_id));
  if (mine.length) {
    state.claimed.push(...mine);
    renderCards();
  }
  const list = $("pending");
  if (!append) list.replaceChildren();
  for (const item of page.items) {
    const li = document.createElement("li");
    li.dataset.reviewId = item.review_id;
    li.dataset.commentId = item.comment.comment_id;
    const text = document.createElement("div");
    text.textContent = item.comment.text;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = [
      item.comment.author_id,
      item.comment.article_id,
      `${t("spam")} ${item.comment.spam_score.toFixed(2)}`,
      item.claimed_by ? t("claimed_by", { who: item.claimed_by }) : "",
    ].filter(Boolean).join(" · ");
    li.append(text, meta);
    list.append(li);
  }
  state.total = page.total_capped ? `${page.total}+` : String(page.total);
  $("pending-count").textContent = state.total;
  $("more").hidden = !state.pendingToken;
}

async function claimNext() {
  const f = filters();
  const claimed = await api("/console/api/claims", {
    method: "POST",
    body: { max_items: 10, moderator_id: state.moderator, ...f },
  });
  const known = new Set(state.claimed.map((i) => i.review_id));
  for (const item of claimed.items) if (!known.has(item.review_id)) state.claimed.push(item);
  say(claimed.items.length ? t("claimed.n", { n: claimed.items.length }) : t("claimed.none"));
  focusCurrent();
  await loadPending();
}

function removeClaimed(reviewId) {
  state.claimed = state.claimed.filter((i) => i.review_id !== reviewId);
  state.selected.delete(reviewId);
}

// Decides each item with the version its card shows, so a decision made
// meanwhile by someone else is refused (stale) instead of overwritten.
async function decideItems(items, decision) {
  let done = 0;
  for (const item of items) {
    item.deciding = true;
    try {
      await api("/console/api/decisions", {
        method: "POST",
        body: {
          review_id: item.review_id,
          decision,
          reason_code: decision === "reject" ? item.rejectCode || "" : "",
          spam_label: item.spamLabel || "",
          note: item.note || "",
          expected_version: item.comment.version,
          moderator_id: state.moderator,
        },
      });
      done += 1;
      removeClaimed(item.review_id);
    } catch (error) {
      item.deciding = false;
      if (error.code === "stale" || error.code === "already_decided" || error.code === "not_found") {
        removeClaimed(item.review_id);
        say(t("stale"), true);
      } else if (error.code === "not_claimed") {
        removeClaimed(item.review_id);
        say(t("not_claimed"), true);
      } else {
        say(t("error", { message: error.message }), true);
      }
      focusCurrent();
      await loadPending().catch(() => {});
      return;
    }
  }
  say(items.length > 1 ? t("decided.bulk", { n: done }) : t(`decided.${decision}`));
  focusCurrent();
  await loadPending().catch(() => {});
}

function onKey(event) {
  if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
  if ($("work").hidden) return;
  // Nothing behind an open dialog (help, author, trail) is decided.
  if (document.querySelector("dialog[open]")) return;
  const item = state.claimed[state.current];
  const selection = () => state.claimed.filter((i) => state.selected.has(i.review_id));
  switch (event.key) {
    case "j": state.current += 1; focusCurrent(); break;
    case "k": state.current -= 1; focusCurrent(); break;
    case "a": if (item) decideItems([item], "approve"); break;
    case "r": if (item) decideItems([item], "reject"); break;
    case "x": if (item) toggleSelected(item); break;
    case "A": if (state.selected.size) decideItems(selection(), "approve"); break;
    case "R": if (state.selected.size) decideItems(selection(), "reject"); break;
    case "n": claimNext().catch((e) => say(t("error", { message: e.message }), true)); break;
    case "?": $("help").showModal(); break;
    default: return;
  }
  event.preventDefault();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const showError = (error) => say(t("error", { message: error.message }), true);
const when = (time) => new Date(time).toLocaleString(state.lang);

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text != null) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function openPanel(title, ...children) {
  $("panel-title").textContent = title;
  $("panel-body").replaceChildren(...children);
  if (!$("panel").open) $("panel").showModal();
}

async function showAuthor(authorId) {
  const author = await api(`/console/api/authors/${encodeURIComponent(authorId)}`);
  const term = author.in_force;
  const parts = [
    element("p", t("author.counts", { approved: author.approved, pending: author.pending_review, rejected: author.rejected })),
    element("p", t("author.in_force", {
      standing: term.standing,
      until: term.until ? t("author.until", { until: when(term.until) }) : "",
    }), "standing"),
  ];
  if (author.last_set) {
    parts.push(element("p", t("author.last_set", {
      who: author.last_set.set_by, when: when(author.last_set.update_time), reason: author.last_set.reason,
    })));
  }
  const form = document.createElement("form");
  form.className = "filters";
  form.append(element("h3", t("author.set")));
  const field = (id, labelKey, input) => {
    const label = element("label", t(labelKey));
    label.htmlFor = id;
    input.id = id;
    form.append(label, input);
    return input;
  };
  const standing = field("standing-value", "author.standing", document.createElement("select"));
  for (const value of ["trusted", "normal", "premoderated", "suspended", "banned"]) {
    standing.append(element("option", value));
  }
  standing.value = term.standing;
  const until = field("standing-until", "author.until_label", document.createElement("input"));
  until.type = "datetime-local";
  const reason = field("standing-reason", "author.reason", document.createElement("input"));
  reason.required = true;
  form.append(element("button", t("author.save")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    api(`/console/api/authors/${encodeURIComponent(authorId)}/standing`, {
      method: "POST",
      body: {
        standing: standing.value,
        until: until.value ? new Date(until.value).toISOString() : "",
        reason: reason.value,
        moderator_id: state.moderator,
      },
    })
      .then(() => { authors.delete(authorId); return showAuthor(authorId); })
      .then(() => say(t("author.saved")))
      .catch(showError);
  });
  const recent = element("ol", null, "pending");
  for (const c of author.recent) {
    const li = element("li");
    li.append(element("div", c.text), element("div", `${c.status} · ${c.article_id} · ${when(c.create_time)}`, "meta"));
    if (c.status !== "pending_review") {
      const reopen = element("button", t("reopen"));
      reopen.type = "button";
      reopen.addEventListener("click", () => {
        api(`/console/api/comments/${encodeURIComponent(c.comment_id)}/reopen`, {
          method: "POST",
          body: { expected_version: c.version, moderator_id: state.moderator },
        })
          .then(() => say(t("reopened")))
          .then(() => showAuthor(authorId))
          .catch(showError);
      });
      li.append(reopen);
    }
    recent.append(li);
  }
  openPanel(t("author.title", { id: authorId }), ...parts, form, element("h3", t("author.recent")), recent);
}

async function showTrail(commentId) {
  const trail = await api(`/console/api/comments/${encodeURIComponent(commentId)}/trail`);
  const list = element("ol", null, "pending");
  for (const e of trail.events) {
    const states = e.from_state || e.to_state ? ` · ${e.from_state || "∅"} → ${e.to_state || "∅"}` : "";
    const li = element("li");
    li.append(element("div", `${e.action}${states}`), element("div", `${e.actor} · ${when(e.create_time)}`, "meta"));
    list.append(li);
  }
  openPanel(t("trail.title"), list);
}
let reloadSoon = null;

// A move of the queue, from the server's stream: an item that left (decided
// here or by anyone else) leaves the lists at once; one that entered is
// picked up by a reload of the pending list, at most every 300 ms.
function onMove(move) {
  if (move.move === "left") {
    for (const li of document.querySelectorAll("#pending li")) {
      if (li.dataset.commentId === move.comment_id) li.remove();
    }
    // An item this page is deciding moved because of that decision.
    const stale = state.claimed.find((i) => i.comment.comment_id === move.comment_id && !i.deciding);
    if (stale && stale.comment.version < move.version) {
      removeClaimed(stale.review_id);
      say(t("stale"), true);
      focusCurrent();
    }
    if (!reloadSoon) {
      // The count comes from the server with the next reload.
      reloadSoon = setTimeout(() => {
        reloadSoon = null;
        loadPending().catch(() => {});
      }, 300);
    }
  } else if (!reloadSoon) {
    reloadSoon = setTimeout(() => {
      reloadSoon = null;
      loadPending().catch(() => {});
    }, 300);
  }
}

// Follows /console/api/queue/events (server-sent events, read with fetch:
// an EventSource cannot send the key) for as long as the page is open,
// reconnecting after the last sequence seen; after a reconnect the pending
// list is read again, so nothing missed in between stays on screen.
async function follow() {
  let after = null;
  for (;;) {
    if (!state.session) {
      await sleep(500);
      continue;
    }
    try {
      const query = after == null ? "" : `?after_sequence=${after}`;
      const response = await fetch(`/console/api/queue/events${query}`, {
        headers: { Authorization: `Bearer ${state.key}` },
        credentials: "omit",
        cache: "no-store",
      });
      if (!response.ok) throw new Error(response.statusText);
      if (after != null) await loadPending().catch(() => {});
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const lines = buffer.slice(0, cut).split("\n");
          buffer = buffer.slice(cut + 2);
          if (lines.includes("event: error")) throw new Error("stream ended");
          const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
          if (!data) continue; // a keep-alive
          const move = JSON.parse(data);
          after = move.sequence;
          onMove(move);
        }
      }
    } catch (error) {
      // Reconnect below.
    }
    await sleep(2000);
  }
}

async function loadAdmin() {
  const [rules, settings] = await Promise.all([api("/console/api/rules"), api("/console/api/settings")]);
  const list = $("rules");
  list.replaceChildren();
  for (const { rule, revision } of rules.rules) {
    const li = element("li");
    const what = [rule.kind, rule.action, `rev. ${revision}`, rule.enabled === false ? t("rule.disabled") : ""];
    li.append(element("div", `${rule.name} (${rule.id})`), element("div", what.filter(Boolean).join(" · "), "meta"));
    list.append(li);
  }
  const fieldset = $("toxicity-thresholds");
  fieldset.replaceChildren(fieldset.querySelector("legend"));
  for (const c of settings.toxicity) {
    for (const which of ["review", "reject"]) {
      const id = `threshold-${c.category}-${which}`;
      const label = element("label", t(`threshold.${which}`, { category: c.category }));
      label.htmlFor = id;
      const input = document.createElement("input");
      Object.assign(input, { id, type: "number", min: "0", max: "1", step: "0.01", value: String(c[which]) });
      input.dataset.category = c.category;
      input.dataset.which = which;
      fieldset.append(label, input);
    }
  }
  $("mode").value = settings.moderation_mode;
  $("review-threshold").value = String(settings.review_threshold);
  $("reject-threshold").value = String(settings.reject_threshold);
  for (const [id, field] of LIMIT_FIELDS) $(id).value = String(settings[field]);
}

/// The whole-number settings: the input and the settings field it edits.
const LIMIT_FIELDS = [
  ["per-author", "max_comments_per_author_per_minute"],
  ["per-ip", "max_comments_per_ip_per_minute"],
  ["retain-rejected", "retain_rejected_bodies_days"],
  ["retain-all", "retain_bodies_days"],
];

async function testText(text) {
  const result = await api("/console/api/rules/test", { method: "POST", body: { body: text } });
  $("test-result").replaceChildren(
    element("p", t("rules.result", {
      status: result.status, spam: result.spam_score.toFixed(2), toxicity: result.toxicity_score.toFixed(2),
    })),
    highlighted(result.text, result.reasons),
    reasonList(result.reasons),
  );
}

async function signIn(key, moderator) {
  state.key = key;
  state.moderator = moderator;
  state.session = await api("/console/api/session");
  sessionStorage.setItem("moderato.key", key);
  sessionStorage.setItem("moderato.moderator", moderator);
  $("signin").hidden = true;
  $("work").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = t("signed.in", { role: state.session.role, tenant: state.session.tenant_id });
  await loadPending();
  if (state.session.role === "admin") {
    $("admin").hidden = false;
    await loadAdmin();
  }
}

function signOut() {
  sessionStorage.removeItem("moderato.key");
  sessionStorage.removeItem("moderato.moderator");
  location.reload();
}

function start() {
  $("lang").addEventListener("change", () => {
    state.lang = $("lang").value;
    localStorage.setItem("moderato.lang", state.lang);
    applyLanguage();
  });
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    signIn($("key").value.trim(), $("moderator").value.trim()).catch((error) => {
      $("signin-error").textContent = t("error", { message: error.message });
    });
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadPending().catch((e) => say(t("error", { message: e.message }), true));
  });
  $("claim").addEventListener("click", () => claimNext().catch((e) => say(t("error", { message: e.message }), true)));
  $("more").addEventListener("click", () => loadPending(true).catch((e) => say(t("error", { message: e.message }), true)));
  $("signout").addEventListener("click", signOut);
  $("test-form").addEventListener("submit", (event) => {
    event.preventDefault();
    testText($("test-text").value).catch(showError);
  });
  $("settings-form").addEventListener("submit", (event) => {
    event.preventDefault();
    api("/console/api/settings", {
      method: "POST",
      body: {
        moderation_mode: $("mode").value,
        review_threshold: Number($("review-threshold").value),
        reject_threshold: Number($("reject-threshold").value),
        ...Object.fromEntries(LIMIT_FIELDS.map(([id, field]) => [field, Number($(id).value)])),
        toxicity: [...new Set([...document.querySelectorAll("#toxicity-thresholds input")].map((i) => i.dataset.category))]
          .map((category) => ({
            category,
            review: Number($(`threshold-${category}-review`).value),
            reject: Number($(`threshold-${category}-reject`).value),
          })),
      },
    })
      .then(() => say(t("settings.saved")))
      .then(loadAdmin)
      .catch(showError);
  });
  $("help-open").addEventListener("click", () => $("help").showModal());
  document.addEventListener("keydown", onKey);
  applyLanguage();
  if (state.key) {
    signIn(state.key, state.moderator).catch(() => sessionStorage.removeItem("moderato.key"));
  }
  follow();
}

start();
