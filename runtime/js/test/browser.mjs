// Drives a page of `specc export --web` in headless Chromium, as a person would: reads a plan
// (JSON on stdin: {url, steps: [...]}) and prints what the page answered (JSON on stdout).
// tests/test_js_runtime.py writes the plans and compares the answers with the Python runtime.
//
// Steps: {wait: "ready"} | {fill, value} | {select, value} | {upload, file} | {click} |
// {press, key} | {range, value} | {draw, strokes} | {result: true} (the next answer's JSON) | {current: true} (the
// answer shown now) | {screenshot: path}.
// The browser: $SPECC_CHROMIUM, else /usr/bin/chromium (Debian's package).

import { chromium } from 'playwright-core';

const plan = JSON.parse(
  await new Promise((resolve) => {
    let text = '';
    process.stdin.on('data', (d) => (text += d));
    process.stdin.on('end', () => resolve(text));
  }),
);

const browser = await chromium.launch({
  executablePath: process.env.SPECC_CHROMIUM || '/usr/bin/chromium',
  // offline and quiet: no first-run, sync, component or background traffic
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-dev-shm-usage',
  ],
});
const problems = [];
const answers = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.setDefaultTimeout(plan.timeout ?? 60000);
  await page.goto(plan.url);
  let seen = 0;
  const state = () => page.locator('#status').getAttribute('data-state');
  for (const step of plan.steps) {
    if (step.wait) {
      await page.waitForFunction(() =>
        ['ready', 'done', 'error'].includes(document.querySelector('#status')?.dataset.state),
      );
      if ((await state()) === 'error') throw new Error(await page.locator('#status').textContent());
      seen = Number((await page.locator('#result').getAttribute('data-run')) ?? 0);
    } else if (step.fill) await page.fill(step.fill, String(step.value));
    else if (step.select) await page.selectOption(step.select, String(step.value));
    else if (step.upload) await page.setInputFiles(step.upload, step.file);
    else if (step.click) await page.click(step.click);
    else if (step.press) await page.press(step.press, step.key);
    else if (step.range) {
      await page.locator(step.range).evaluate((el, v) => {
        el.value = v;
        el.dispatchEvent(new Event('input', { bubbles: true }));
      }, String(step.value));
    } else if (step.result) {
      await page.waitForFunction(
        (n) =>
          Number(document.querySelector('#result')?.dataset.run) > n ||
          document.querySelector('#status')?.dataset.state === 'error',
        seen,
      );
      if ((await state()) === 'error') throw new Error(await page.locator('#status').textContent());
      seen = Number(await page.locator('#result').getAttribute('data-run'));
      answers.push(JSON.parse(await page.locator('#result').getAttribute('data-json')));
    } else if (step.draw) {
      // strokes in the canvas's own 0..1 coordinates, drawn with the mouse
      const box = await page.locator(step.draw).boundingBox();
      for (const stroke of step.strokes) {
        const at = ([x, y]) => [box.x + x * box.width, box.y + y * box.height];
        await page.mouse.move(...at(stroke[0]));
        await page.mouse.down();
        for (const point of stroke.slice(1)) await page.mouse.move(...at(point), { steps: 4 });
        await page.mouse.up();
      }
    } else if (step.current) {
      // the answer the page already shows (one it computed while loading, such as samples)
      answers.push(JSON.parse(await page.locator('#result').getAttribute('data-json')));
    } else if (step.screenshot) await page.screenshot({ path: step.screenshot, fullPage: true });
    else throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
} catch (e) {
  problems.push(`failed: ${e.message}`);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ answers, problems }) + '\n');
process.exitCode = problems.some((p) => p.startsWith('failed') || p.startsWith('page error'))
  ? 1
  : 0;
