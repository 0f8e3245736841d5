#!/usr/bin/env node
// The /docs page in a real browser: Debian's Chromium, driven by Playwright
// (playwright-core, which brings no browser of its own).
//
// Usage: node docs_page.mjs CHROMIUM BASE_URL IMAGE_ID SCREENSHOT_PATH
//
// Opens BASE_URL/docs, waits for the services, opens the compute Get, types
// the image id, sends it and waits for the answer on the page; saves a
// screenshot. Prints one JSON object: the services listed, the status and
// text shown, and every URL the page requested (all must be BASE_URL's).

import { chromium } from 'playwright-core';

const [executablePath, base, imageId, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
  const requested = [];
  page.on('request', (request) => requested.push(request.url()));
  const consoleErrors = [];
  page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
  await page.goto(`${base}/docs`);
  await page.waitForSelector('section[data-service]');
  const services = await page.$$eval('section[data-service]', (all) => all.map((s) => s.dataset.service));
  const get = page.locator('[id="yandex.cloud.compute.v1.ImageService.Get"]');
  await get.locator('summary').click();
  await get.locator('input[name="image_id"]').fill(imageId);
  await get.getByRole('button', { name: 'Send' }).click();
  const status = get.locator('.answer .status[data-status]');
  await status.waitFor();
  const shown = await get.locator('.answer pre').innerText();
  await get.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify({
    services,
    status: await status.getAttribute('data-status'),
    shown,
    requested,
    consoleErrors,
  }));
} finally {
  await browser.close();
}
