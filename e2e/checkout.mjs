// A shopper signs up, buys a product, then a card-testing burst from the same device
// (a new card each time) meets the challenge page. Screenshots of the main pages go
// to $OUT_DIR. Run by scripts/e2e.sh, which starts the sidecar and the shop.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';

const base = process.env.SHOP_URL ?? 'http://localhost:8080';
const out = process.env.OUT_DIR ?? 'target/e2e';
mkdirSync(out, { recursive: true });

// Luhn-valid test numbers 4242 42xx xxxx xxxx, distinct per n.
function card(n) {
  const body = '424242' + String(100000000 + n).slice(-9);
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) { d *= 2; if (d > 9) d -= 9; }
    sum += d;
  }
  return body + String((10 - (sum % 10)) % 10);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-quic'],
});
const steps = [];
const shot = async (page, name) => {
  await page.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  steps.push(name);
};

try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } }); // a phone
  const page = await context.newPage();

  await page.goto(base + '/');
  await shot(page, '01-catalogue');
  await page.getByRole('link', { name: 'Sign up' }).click();
  // Base 36, not the 13 decimal digits of Date.now(): about one in ten of those passes
  // the Luhn check, and the sidecar rightly refuses it as a card number (the order was
  // then held for review: an intermittent e2e failure).
  const email = `e2e-${Date.now().toString(36)}@example.com`;
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await shot(page, '02-sign-up');
  await page.locator('#submit').click();
  await page.waitForURL(base + '/');

  await page.getByRole('searchbox', { name: 'Search products' }).fill('rust');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('link', { name: 'The Rust Programming Language' }).click();
  await shot(page, '03-product');
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.waitForURL(base + '/cart');
  await shot(page, '04-cart');
  await page.locator('#to-checkout').click();
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByLabel('Month').fill('12');
  await page.getByLabel('Year').fill('2030');
  await page.getByLabel('CVC').fill('123');
  await shot(page, '05-checkout');
  await page.locator('#pay').click();
  await page.waitForSelector('#outcome');
  await shot(page, '06-order');
  assert.match(await page.locator('#outcome').innerText(), /Thank you/, 'the first purchase is paid');

  // Card testing: cheap items, a new card each time, one device (this browser's cookie).
  let challenged = false;
  for (let i = 1; i <= 10 && !challenged; i++) {
    await page.goto(base + '/products/GR-5004');
    await page.getByRole('button', { name: 'Add to cart' }).click();
    await page.goto(base + '/checkout');
    await page.getByLabel('Card number').fill(card(i));
    await page.getByLabel('Month').fill('11');
    await page.getByLabel('Year').fill('2031');
    await page.getByLabel('CVC').fill(String(100 + i));
    await page.locator('#pay').click();
    await page.waitForLoadState('load');
    challenged = (await page.locator('#challenge').count()) > 0;
    console.log(`card ${i + 1} from this device: ${challenged ? 'challenged' : await page.locator('#outcome').innerText()}`);
  }
  assert.ok(challenged, 'a card-testing burst from one device meets the challenge page');
  await shot(page, '07-challenge');

  const verifyUrl = page.url();
  const mailbox = await context.newPage();
  await mailbox.goto(base + '/dev/mailbox');
  await shot(mailbox, '08-mailbox');
  const mail = await mailbox.locator('.mail-body').first().innerText();
  const code = mail.match(/\b\d{6}\b/)[0];
  await page.goto(verifyUrl);
  await page.getByLabel('Code').fill(code);
  await page.locator('#verify').click();
  await page.waitForSelector('#outcome');
  await shot(page, '09-verified');
  assert.match(await page.locator('#outcome').innerText(), /Thank you/);

  await page.goto(base + '/orders');
  await shot(page, '10-my-orders');
  console.log(`e2e passed; screenshots in ${out}: ${steps.join(', ')}`);
} finally {
  await browser.close();
}
