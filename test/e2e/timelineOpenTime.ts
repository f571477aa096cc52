/**
 * The open time of a coverage timeline, from the command to the drawn page, split into its parts. Every part is a
 * time of the clock (ms since 1970) taken where it happens: the test (the Enter that runs the command, the drawn
 * page seen), the extension (panel.ts: the command run, the panel created, the model built and sent), VS Code's
 * webview frame and the page (media/timeline.js: its start, its script run, the model received and drawn). The
 * processes share the machine's clock (Date.now(); a page's start is Date.now() - performance.now(), as
 * `performance.timeOrigin` can be off from it). Figures, not a threshold: the machine is shared.
 */
import type { FrameLocator } from 'playwright-core';
import type { Workbench } from './workbench.js';

/** The page of the newest timeline webview (VS Code nests it in two iframes: its own frame, then the page). */
export function timelineFrame(wb: Workbench): FrameLocator {
  return wb.page.frameLocator('iframe.webview.ready').last().frameLocator('#active-frame');
}

export interface OpenTime {
  /** Enter to every cell drawn on the screen, by the page's clock. */
  total: number;
  /** The parts, in order, each in ms; their sum is `total`, and then how long until the test saw it (its polling). */
  parts: Array<[string, number]>;
  /** Elements drawn for the cells (a run of cells narrower than a pixel is one). */
  drawn: number;
  /** The cells they show (a run counts its cells), and the cells the page's summary says there are. */
  shown: number;
  cells: number;
  /** The page's resources as it loaded them: name, and when each ended from the page's start. */
  resources: string;
}

/** Runs "Show Coverage Timeline" for `dataSource` from the command palette and measures it until the page shows `segments`. */
export async function openTimelineTimed(wb: Workbench, dataSource: string, segments: number): Promise<OpenTime> {
  const page = wb.page;
  const pick = page.locator('.quick-input-widget .quick-input-box input[placeholder="The coverage timeline of which data source?"]');
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    await page.keyboard.type('Druid Backup: Show Coverage Timeline');
    await page.keyboard.press('Enter');
    try {
      await pick.waitFor({ state: 'visible', timeout: 10_000 });
      await pick.fill(dataSource, { timeout: 10_000 });
      await page.locator('.quick-input-widget .monaco-list-row.focused', { hasText: dataSource }).waitFor({ timeout: 10_000 });
      break;
    } catch (err) {
      // The pick was in the page but hidden for 30 s in one CI run: VS Code hides a quick pick that loses the focus,
      // which a live view refreshing beside it can take. Asked again, as a user would; the time is measured after.
      if (attempt >= 4) throw err;
      await page.keyboard.press('Escape');
    }
  }
  const t0 = Date.now();
  await pick.press('Enter');
  const frame = timelineFrame(wb);
  // The page marks its first model's times once it is on the screen (the summary tells this page from the
  // timeline open before it, until the new one is there).
  const body = frame.locator('body[data-timing]').filter({ has: frame.locator('#summary', { hasText: `${segments.toLocaleString('en-US')} segments` }) });
  await body.waitFor({ timeout: 120_000 });
  const seen = Date.now();
  const drawn = await frame.locator('.cell').count();
  const shown = await frame
    .locator('.cell:not(.in-run)')
    .evaluateAll((es) => es.reduce((n, e) => n + (e.hasAttribute('data-run') ? Number(e.getAttribute('data-cells')) : 1), 0));
  const cells = Number((await frame.locator('#summary').textContent())!.match(/ in ([\d,]+) cells/)![1]!.replace(/,/g, ''));
  const [origin, script, ready, received, done] = (await body.getAttribute('data-timing'))!.split(' ').map(Number) as [number, number, number, number, number];
  const [opened, created, built, build, sent] = (await body.getAttribute('data-host-timing'))!.split(' ').map(Number) as [number, number, number, number, number];
  // VS Code's own frame (pre/index.html): it starts, then writes the page into the inner frame.
  const outer = await wb.page
    .frameLocator('iframe.webview.ready')
    .last()
    .locator('body')
    .evaluate(() => Math.round(Date.now() - performance.now()));
  // Typed here as Node knows the Performance API (the callback runs in the page).
  type Timing = {
    name: string;
    entryType: string;
    startTime: number;
    workerStart: number;
    fetchStart: number;
    responseStart: number;
    responseEnd: number;
    domContentLoadedEventStart?: number;
  };
  const resources = await body.evaluate(() =>
    (performance.getEntries() as unknown as Timing[])
      .filter((e) => e.entryType === 'navigation' || e.entryType === 'resource')
      .map((e) => {
        // A navigation through the service worker of VS Code's webviews: when the worker started and the fetch began.
        const dcl =
          e.entryType === 'navigation'
            ? ` (service worker at ${Math.round(e.workerStart)}, fetch at ${Math.round(e.fetchStart)}) DOMContentLoaded ${Math.round(e.domContentLoadedEventStart!)}`
            : '';
        return `${e.name.split('/').pop()!.split('?')[0]} ${Math.round(e.startTime)}-${Math.round(e.responseStart)}-${Math.round(e.responseEnd)}${dcl}`;
      })
      .join(', '),
  );

  const parts: Array<[string, number]> = [
    ['Enter to the command run', opened - t0],
    ['to createWebviewPanel returned', created - opened],
    ["to VS Code's webview frame started", outer - created],
    ['to the page started', origin - outer],
    ["to the page's script run", script - origin],
    ['to the model asked for', ready - script],
    [`to the model received (built ${built - opened} ms after the command, in ${build} ms; sent at ${sent - opened} ms)`, received - ready],
    ['to drawn on the screen', done - received],
    ['(then seen by the test', seen - done],
  ];
  return { total: done - t0, parts, drawn, shown, cells, resources };
}

export function describeOpenTime(segments: number, t: OpenTime): string {
  return (
    `timeline of ${segments.toLocaleString('en-US')} segments (${t.cells} cells, ${t.drawn} elements drawn for them): open to drawn in ${t.total} ms: ` +
    t.parts.map(([what, ms]) => `${what} ${ms} ms`).join(', ') +
    `); the page's loads (start-first byte-end, ms from its start): ${t.resources}`
  );
}
