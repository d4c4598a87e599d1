// Browser test of the shop page: headless Chromium driven by playwright-core
// (the copy installed for internal/play/e2e). Run by TestShopPageInBrowser:
//
//   PLAYWRIGHT_CORE=/abs/path/playwright-core/index.mjs CHROMIUM=/usr/bin/chromium node shop.test.mjs URL
//
// It shops the way a person would, by accessible names and the keyboard:
// search, add, change a quantity, remove, page, check out, and it checks that
// the page shows which replica served the responses and logs no errors.
import assert from "node:assert/strict";

const base = process.argv[2];
const { chromium } = await import(process.env.PLAYWRIGHT_CORE);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(e.message));
  page.setDefaultTimeout(15000);
  await page.goto(base);

  await page.getByText("Page 1 of 60 (1200 products)").waitFor();
  await page.getByRole("button", { name: "Next page" }).click();
  await page.getByText("Page 2 of 60").waitFor();
  await page.getByRole("button", { name: "Previous page" }).click();
  await page.getByText("Page 1 of 60").waitFor();

  await page.getByRole("button", { name: "Add Classic Oak Lamp to cart" }).click();
  await page.getByText("Added Classic Oak Lamp.").waitFor();
  await page.getByRole("button", { name: "Add Classic Oak Lamp to cart" }).click();
  await page.getByRole("button", { name: "Add Classic Oak Mug to cart" }).click();
  await page.getByText("Added Classic Oak Mug.").waitFor();
  assert.equal(await page.getByLabel("Quantity of Classic Oak Lamp").inputValue(), "2");

  // Search with the keyboard only.
  await page.getByLabel("Search products").focus();
  await page.keyboard.type("walnut vase");
  await page.keyboard.press("Enter");
  await page.getByText("Page 1 of 1 (12 products)").waitFor();
  await page.getByRole("button", { name: "Add Classic Walnut Vase to cart" }).press("Enter");
  await page.getByText("Added Classic Walnut Vase.").waitFor();

  const qty = page.getByLabel("Quantity of Classic Oak Lamp");
  await qty.fill("5");
  await qty.press("Tab");
  await page.getByText("Classic Oak Lamp: quantity 5.").waitFor();
  await page.getByRole("button", { name: "Remove Classic Oak Mug from cart" }).click();
  await page.getByText("Removed Classic Oak Mug.").waitFor();
  assert.equal(await page.locator("#cart-lines tr").count(), 2);

  // A bad quantity is refused in the page, the cart unchanged.
  await qty.fill("120");
  await qty.press("Tab");
  await page.getByText("Quantity must be a whole number from 0 to 99.").waitFor();

  await page.getByRole("button", { name: "Check out" }).click();
  await page.getByText(/Order ord_\w+ placed/).waitFor();
  await page.getByText("Your cart is empty.").waitFor();
  assert.ok(await page.getByRole("button", { name: "Check out" }).isDisabled());

  assert.equal(await page.locator("#served-by").textContent(), "shop-r1");
  assert.match(await page.locator("#log li").first().textContent(), /by shop-r1$/);
  assert.deepEqual(errors, []);
  console.log("shop.test.mjs: ok");
} finally {
  await browser.close();
}
