import { chromium } from "playwright-core";
const base = Deno.args[0];
const out = Deno.args[1];
const routes = Deno.args.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors: string[] = [];
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") errors.push(`${m.type()}: ${m.text()}`); });
page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
for (const [i, r] of routes.entries()) {
  await page.goto(base + r);
  await page.waitForTimeout(2500);
  await page.screenshot({ path: `${out}/${i}-${r.replace(/[^a-z0-9]+/gi, "_")}.png`, fullPage: true });
}
console.log(errors.join("\n"));
await browser.close();
