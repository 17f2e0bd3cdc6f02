// The console in a real browser: Playwright driving Debian's Chromium
// against a server the Rust test started (port 0, fresh database, held
// comments). Usage: node console.test.mjs (env BASE_URL, MODERATOR_KEY,
// EXPECTED, ARTIFACTS). Exits non-zero on the first failed check.

import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const base = process.env.BASE_URL;
const key = process.env.MODERATOR_KEY;
// What the Rust side held: [{ text, marks: [highlighted substrings] }]
const expected = JSON.parse(process.env.EXPECTED);
const artifacts = process.env.ARTIFACTS;
mkdirSync(artifacts, { recursive: true });
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
const step = (name) => console.log(`- ${name}`);
try {
  const a = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await a.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Refused calls (the stale decision's 409) are logged by Chromium as
  // failed loads; they are expected and checked where they happen.
  const expectedFailure = (text) =>
    text.includes("status of 409") || text.includes("net::ERR_FAILED");
  page.on("console", (m) => {
    if (m.type() === "error" && !expectedFailure(m.text())) errors.push(m.text());
  });

  step("French by default, sign in");
  await page.goto(`${base}/console`);
  assert.equal(await page.locator("#signin-title").textContent(), "Connexion");
  await page.screenshot({ path: `${artifacts}/signin.png` });
  await page.fill("#key", key);
  await page.fill("#moderator", "awa");
  await page.press("#key", "Enter");
  await page.waitForSelector("#work:not([hidden])");
  await page.waitForFunction((n) => document.querySelectorAll("#pending li").length === n, expected.length);
  assert.equal(await page.locator("#pending-count").textContent(), String(expected.length));

  step("claim by keyboard; every matched span highlighted, by bytes");
  await page.keyboard.press("n");
  await page.waitForFunction((n) => document.querySelectorAll("#cards .card").length === n, expected.length);
  const cards = await page.$$eval("#cards .card", (els) =>
    els.map((el) => ({
      text: el.querySelector(".body").textContent,
      marks: [...el.querySelectorAll("mark")].map((m) => m.textContent),
    })),
  );
  for (const want of expected) {
    const card = cards.find((c) => c.text === want.text);
    assert.ok(card, `a card shows ${JSON.stringify(want.text)}`);
    for (const mark of want.marks) {
      assert.ok(card.marks.includes(mark), `${JSON.stringify(mark)} is highlighted in ${JSON.stringify(card)}`);
    }
  }
  // Each card carries its author's counts (each reader here wrote one comment).
  await page.waitForFunction(() => [...document.querySelectorAll("#cards .author-summary")]
    .every((el) => el.textContent.includes("1 en attente")));
  await page.screenshot({ path: `${artifacts}/queue.png`, fullPage: true });
  await page.screenshot({ path: `${artifacts}/console.png` });

  step("the author (counts, standing set with who and why) and the comment's trail");
  const first = page.locator("#cards .card").first();
  await first.getByRole("button", { name: "Auteur" }).click();
  await page.waitForSelector("#panel[open]");
  assert.match(await page.locator("#panel-body").textContent(), /1 en attente/);
  await page.selectOption("#standing-value", "premoderated");
  await page.fill("#standing-reason", "relecture des commentaires");
  await page.click('#panel-body button:has-text("Enregistrer")');
  await page.waitForFunction(() => document.querySelector("#panel-body").textContent.includes("Fixé par awa"));
  assert.match(await page.locator("#panel-body .standing").textContent(), /premoderated/);
  await page.screenshot({ path: `${artifacts}/author.png` });
  // Keys do nothing behind an open dialog.
  const cardsBefore = await page.$$eval("#cards .card", (els) => els.length);
  await page.keyboard.press("a");
  await page.waitForTimeout(500); // long enough for a decision's round trip here
  assert.equal(await page.$$eval("#cards .card", (els) => els.length), cardsBefore);
  await page.click('#panel form[method="dialog"] button');
  await first.getByRole("button", { name: "Historique" }).click();
  await page.waitForFunction(() => document.querySelector("#panel-body").textContent.includes("review.claimed"));
  assert.match(await page.locator("#panel-body").textContent(), /comment\.created/);
  await page.click('#panel form[method="dialog"] button');
  await page.locator("#cards .card").first().focus();

  step("approve with a, reject with r");
  const count = () => page.$$eval("#cards .card", (els) => els.length);
  let before = await count();
  await page.keyboard.press("a");
  await page.waitForFunction((n) => document.querySelectorAll("#cards .card").length === n - 1, before);
  assert.equal(await page.locator("#status").textContent(), "Approuvé.");
  before = await count();
  await page.keyboard.press("r");
  await page.waitForFunction((n) => document.querySelectorAll("#cards .card").length === n - 1, before);
  assert.equal(await page.locator("#status").textContent(), "Rejeté.");

  step("select two and reject them in bulk (x, j, x, Shift+R)");
  before = await count();
  assert.ok(before >= 4, "enough cards left for a bulk decision and two decided elsewhere");
  await page.keyboard.press("x");
  await page.keyboard.press("j");
  await page.keyboard.press("x");
  await page.keyboard.press("Shift+R");
  await page.waitForFunction((n) => document.querySelectorAll("#cards .card").length === n - 2, before);
  assert.match(await page.locator("#status").textContent(), /^2 décision/);

  step("a second context decides an item: it leaves the first one's lists live, and the first one says so");
  const b = await browser.newContext();
  const other = await b.newPage();
  await other.goto(`${base}/console`);
  await other.fill("#key", key);
  await other.fill("#moderator", "awa");
  await other.press("#key", "Enter");
  await other.waitForSelector("#work:not([hidden])");
  const decideElsewhere = (reviewId) =>
    other.evaluate(async ({ reviewId, key }) => {
      const r = await fetch("/console/api/decisions", {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify({ review_id: reviewId, decision: "approve", moderator_id: "awa" }),
      });
      return r.status;
    }, { reviewId, key });
  const current = () => page.$eval('#cards .card[aria-current="true"]', (el) => el.dataset.reviewId);
  let target = await current();
  before = await count();
  assert.equal(await decideElsewhere(target), 200);
  // From the queue's event stream, without a reload or a poll.
  await page.waitForFunction(
    (id) => ![...document.querySelectorAll("#pending li, #cards .card")].some((el) => el.dataset.reviewId === id),
    target,
    { timeout: 5000 },
  );
  assert.equal(await count(), before - 1);
  assert.match(await page.locator("#status").textContent(), /déjà décidé/);

  step("a decision made on a card someone else decided first is refused and reported");
  // Without the stream, the card stays until the moderator acts on it.
  await page.route("**/console/api/queue/events*", (route) => route.abort());
  await page.reload();
  await page.waitForSelector("#work:not([hidden])");
  // The item still claimed comes back as a card after the reload.
  await page.waitForSelector("#cards .card");
  target = await current();
  assert.equal(await decideElsewhere(target), 200);
  before = await count();
  await page.keyboard.press("a");
  await page.waitForFunction((n) => document.querySelectorAll("#cards .card").length === n - 1, before);
  assert.match(await page.locator("#status").textContent(), /déjà décidé/);
  await page.screenshot({ path: `${artifacts}/stale.png` });
  await page.unroute("**/console/api/queue/events*");

  step("English, remembered across a reload");
  await page.selectOption("#lang", "en");
  assert.equal(await page.locator("#work-title").textContent(), "Review queue");
  await page.reload();
  await page.waitForSelector("#work:not([hidden])");
  assert.equal(await page.locator("#work-title").textContent(), "Review queue");
  assert.equal(await page.locator("html").getAttribute("lang"), "en");

  step("the key is in session storage only, never a cookie");
  assert.deepEqual(await a.cookies(), []);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("moderato.key")), key);

  step("accessibility (axe-core): no serious or critical violation");
  const require = createRequire(import.meta.url);
  const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  assert.deepEqual(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.length})`), []);

  step("an admin tries a text against the rules (spans highlighted) and changes the settings");
  const adminContext = await browser.newContext();
  const adminPage = await adminContext.newPage();
  adminPage.on("pageerror", (e) => errors.push(String(e)));
  await adminPage.goto(`${base}/console`);
  await adminPage.fill("#key", process.env.ADMIN_KEY);
  await adminPage.press("#key", "Enter");
  await adminPage.waitForSelector("#admin:not([hidden])");
  await adminPage.waitForSelector("#rules li");
  await adminPage.fill("#test-text", "😡 Quel con ce type");
  await adminPage.click("#test-form button");
  await adminPage.waitForSelector("#test-result mark");
  const testMarks = await adminPage.$$eval("#test-result mark", (els) => els.map((m) => m.textContent));
  assert.ok(testMarks.includes("con"), JSON.stringify(testMarks));
  await adminPage.selectOption("#mode", "pre");
  await adminPage.fill("#threshold-threat-review", "0.35");
  assert.equal(await adminPage.locator("#retain-rejected").inputValue(), "0", "keep by default");
  await adminPage.fill("#per-author", "7");
  await adminPage.fill("#retain-rejected", "30");
  await adminPage.click("#settings-form button");
  await adminPage.waitForFunction(() => document.querySelector("#status").textContent !== "");
  assert.equal(await adminPage.locator("#mode").inputValue(), "pre");
  await adminPage.waitForFunction(() => document.querySelector("#threshold-threat-review").value === "0.35");
  // Read back from the server after the save, not just what was typed.
  await adminPage.reload();
  await adminPage.waitForSelector("#rules li");
  await adminPage.waitForFunction(() => document.querySelector("#per-author").value === "7");
  assert.equal(await adminPage.locator("#retain-rejected").inputValue(), "30");
  assert.equal(await adminPage.locator("#per-ip").inputValue(), "0");
  await adminPage.screenshot({ path: `${artifacts}/admin.png`, fullPage: true });

  step("phone width");
  await page.setViewportSize({ width: 390, height: 800 });
  await page.screenshot({ path: `${artifacts}/phone.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, "no horizontal scrolling at phone width");

  assert.deepEqual(errors, [], "no script error and no failed load in the page");
  console.log("ok");
} finally {
  await browser.close();
}
