/**
 * Driving VS Code's workbench in Chromium (playwright-core with Debian's Chromium): the activity bar, view
 * panes and their tree rows, the quick input, context menus, modal dialogs and notifications. Selectors are
 * those of VS Code 1.100 (code-server 4.100.x, pinned by scripts/install-code-server.sh).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { ROOT } from './codeServer.js';

export const SCREENSHOTS = path.join(ROOT, 'test-results/e2e');

export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

export class Workbench {
  constructor(readonly page: Page) {}

  async open(url: string, folder: string): Promise<void> {
    await this.page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  }

  async openContainer(title: string): Promise<void> {
    await this.page.locator(`.activitybar a.action-label[aria-label="${title}"]`).click();
  }

  /** A view pane of the side bar by its title ("Nodes", "Backups", "Jobs"). */
  pane(title: string): Locator {
    return this.page.locator('.pane').filter({ has: this.page.locator('.pane-header h3.title', { hasText: new RegExp(`^${title}$`, 'i') }) });
  }

  /** A tree row of a view whose text (label and description) contains `text`. */
  row(view: string, text: string | RegExp): Locator {
    return this.pane(view).locator('.monaco-list-row', { hasText: text });
  }

  /** A tree row of a view whose label is exactly `label`. */
  labelled(view: string, label: string): Locator {
    return this.pane(view)
      .locator('.monaco-list-row')
      .filter({ has: this.page.locator('.label-name').getByText(label, { exact: true }) });
  }

  /** Expands a collapsed tree row (a click would collapse an expanded one). */
  async expand(row: Locator): Promise<void> {
    await row.waitFor();
    if ((await row.getAttribute('aria-expanded')) === 'false') await row.click();
    await row.and(this.page.locator('[aria-expanded="true"]')).waitFor();
  }

  /**
   * Clicks a row whose command asks a question, and clicks again while the quick input titled `title` has not
   * shown: a live tree may render the row again between the click's mouse down and up, and the click is lost.
   */
  async clickAsking(row: Locator, title: string): Promise<void> {
    const widget = this.page.locator('.quick-input-widget').filter({ has: this.page.locator('.quick-input-title', { hasText: title }) });
    for (let attempt = 1; ; attempt++) {
      await row.click();
      try {
        await widget.locator('.quick-input-box input').waitFor({ timeout: 5_000 });
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }

  /** Waits for the quick input titled `title` (an input box of a command), types `text` and accepts. */
  async answer(title: string, text: string): Promise<void> {
    const widget = this.page.locator('.quick-input-widget').filter({ has: this.page.locator('.quick-input-title', { hasText: title }) });
    const input = widget.locator('.quick-input-box input');
    await input.waitFor();
    await input.fill(text);
    await input.press('Enter');
    await widget.waitFor({ state: 'hidden' });
  }

  /** Opens a row's context menu and runs one of its items (with the keyboard, as VS Code ignores a too-quick click). */
  async contextMenu(row: Locator, item: string): Promise<void> {
    await row.click({ button: 'right' });
    const entry = this.page.locator('.monaco-menu .action-item', { hasText: item }).first();
    await entry.hover();
    await this.page.keyboard.press('Enter');
    await entry.waitFor({ state: 'detached' });
  }

  /** Drags the side bar's edge so rows show their descriptions in the screenshots. */
  async widenSideBar(width: number): Promise<void> {
    const box = await this.page.locator('.part.sidebar').boundingBox();
    if (!box) return;
    const x = box.x + box.width;
    const y = box.y + box.height / 2;
    await this.page.mouse.move(x - 1, y);
    await this.page.mouse.down();
    await this.page.mouse.move(box.x + width, y, { steps: 5 });
    await this.page.mouse.up();
  }

  dialog(): Locator {
    return this.page.locator('.monaco-dialog-box');
  }

  notification(text: string | RegExp): Locator {
    return this.page.locator('.notification-toast', { hasText: text });
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }
}
